"""An oracle for issue 15, point 3: what Canopy would send to its clusters never gives a role to
anyone the database does not give it to.

It reads the ACLs the way the clusters do (Hadoop's `AccessControlList` for YARN queues, its
`AclEntry.parseAclSpec` for HDFS, Kubernetes RBAC subjects), not the way Canopy writes them, and
compares who they name with the memberships in the database, read directly (not through
provisioning.selectors). The export files are checked as a cluster admin would use them:
capacity-scheduler.xml parsed as XML, hdfs-setup.sh run by /bin/sh with a stand-in `hdfs` command
that records its arguments.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tempfile
import xml.etree.ElementTree as ET  # noqa: S405 # parses Canopy's own output in a test
from collections import defaultdict
from pathlib import Path
from typing import Any

from django.conf import settings

from provisioning import selectors, services
from provisioning.backends.export import hadoop_files
from provisioning.desired.yarn import DIRECTORY_KIND, QUEUE_KIND, ROOT, RuleViolation
from provisioning.models import HadoopConnection, TenantSync
from tenants.cluster_names import is_cluster_name
from tenants.models import Cluster, Membership, StorageDirectory, Tenant, TenantService
from tenants.services import service_path

ACL_KEYS = ("acl_submit_applications", "acl_administer_queue")


def yarn_acl(value: str) -> tuple[bool, set[str], set[str]]:
    """(everyone, users, groups) as Hadoop's AccessControlList reads a queue ACL: "*" alone is
    everyone; else names before the first space are users, after it groups, ',' between names."""
    if "*" in value and value.strip() == "*":
        return True, set(), set()
    users, _, groups = value.partition(" ")
    return False, {u for u in users.split(",") if u}, {g for g in groups.split(",") if g}


def hdfs_acl(spec: str) -> list[tuple[bool, str, str, str]]:
    """(default, type, name, permission) per entry, as HDFS's AclEntry.parseAclSpec splits an ACL
    spec (',' between entries, ':' between fields); an entry it would refuse is one as well."""
    entries = []
    for text in spec.split(","):
        fields = text.split(":")
        default = fields[0] == "default"
        if default:
            fields = fields[1:]
        if len(fields) != 3:
            entries.append((default, "malformed", text, ""))
            continue
        entries.append((default, *fields))
    return entries


def _granted() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Tenant path -> names of the users and of the groups holding a role on it themselves."""
    users: dict[str, set[str]] = defaultdict(set)
    groups: dict[str, set[str]] = defaultdict(set)
    for row in Membership.objects.select_related("tenant", "user", "group"):
        if row.group is not None:
            groups[row.tenant.name_path].add(row.group.name)
        elif row.user.is_active:
            users[row.tenant.name_path].add(row.user.get_username())
    return users, groups


def _check_names(
    where: str, users: set[str], groups: set[str], may_users: set[str], may_groups: set[str]
) -> list[str]:
    problems = [
        f"{where}: {kind} {name!r} is not a usable name"
        for kind, names in (("user", users), ("group", groups))
        for name in names
        if not is_cluster_name(name)
    ]
    if users - may_users:
        problems.append(f"{where}: users {sorted(users - may_users)} hold no role there")
    if groups - may_groups:
        problems.append(f"{where}: groups {sorted(groups - may_groups)} hold no role there")
    return problems


def _queue_owner(path: str, remainder: str, tenants: set[str]) -> str | None:
    """The tenant path a queue's ACLs belong to (its remainder leaf is its parent's)."""
    name_path = path.removeprefix(f"{ROOT}.").replace(".", "/")
    if name_path in tenants:
        return name_path
    parent, _, leaf = name_path.rpartition("/")
    return parent if leaf == remainder and parent in tenants else None


def yarn_widenings(objects: list[dict[str, Any]], remainder: str = "default") -> list[str]:
    """Queue and HDFS ACLs naming anyone (or everyone) the database gives no role there."""
    users, groups = _granted()
    tenants = set(Tenant.objects.values_list("name_path", flat=True))
    paths_by_id = dict(Tenant.objects.values_list("pk", "name_path"))
    namespaces = {
        paths_by_id.get(pk): ns for pk, ns in TenantSync.objects.values_list("tenant_id", "namespace")
    }
    root = settings.CANOPY_HDFS_ROOT.rstrip("/")
    owners = {
        path if path.startswith("/") else f"{root}/{path}": owner
        for path, owner in StorageDirectory.objects.values_list("path", "tenant__name_path")
    }
    # A tenant's Hive databases are its directories too (their warehouse directories).
    owners |= {
        service_path(kind, name): owner
        for kind, name, owner in TenantService.objects.values_list("kind", "name", "tenant__name_path")
    }
    problems = []
    for obj in objects:
        name, spec = obj["metadata"]["name"], obj["spec"]
        if obj["kind"] == QUEUE_KIND:
            owner = _queue_owner(name, remainder, tenants)
            for key in ACL_KEYS:
                if key not in spec:
                    continue
                everyone, named_users, named_groups = yarn_acl(spec[key])
                if everyone:
                    problems.append(f"{name} {key}={spec[key]!r} lets everyone in")
                    continue
                if owner is None:  # root and root.default are Canopy's to lock
                    if named_users or named_groups:
                        problems.append(f"{name} {key}={spec[key]!r} names someone")
                    continue
                problems += _check_names(
                    f"{name} {key}", named_users, named_groups, users[owner], groups[owner]
                )
        elif obj["kind"] == DIRECTORY_KIND:
            owner = owners.get(name)
            tenant_group = namespaces.get(owner or "", (owner or "").replace("/", "-"))
            named_users, named_groups = set(), set()
            for default, kind, who, permission in hdfs_acl(",".join(spec["acl"])):
                if kind not in ("user", "group") or not who or permission not in ("rwx", "r-x"):
                    problems.append(
                        f"{name}: ACL entry {'default:' if default else ''}{kind}:{who}:{permission}"
                    )
                (named_users if kind == "user" else named_groups).add(who)
            named_groups.discard(tenant_group)
            if owner is None:
                problems.append(f"{name}: a directory of no tenant")
                continue
            problems += _check_names(
                f"{name} ACL", named_users - {""}, named_groups - {""}, users[owner], groups[owner]
            )
    return problems


def kubernetes_widenings(
    objects: list[dict[str, Any]], tenant: Tenant, prefixes: tuple[str, str]
) -> list[str]:
    """Role binding subjects naming a user or group that holds no role on the tenant (or, for an
    admin, on an ancestor), or a name of the API server's own (system:...)."""
    users, groups = _granted()
    paths = [t.name_path for t in Tenant.objects.filter(path__in=Tenant.path_prefixes(tenant.path))]
    may_users = set().union(*(users[p] for p in paths))
    may_groups = set().union(*(groups[p] for p in paths))
    problems = []
    for obj in objects:
        if obj["kind"] != "RoleBinding":
            continue
        for subject in obj["subjects"]:
            kind, name = subject["kind"], subject["name"]
            if kind == "ServiceAccount":
                continue  # its name is made from the username (service_account_name)
            prefix = prefixes[0] if kind == "User" else prefixes[1]
            bare = name.removeprefix(prefix)
            if name.startswith("system:") or not name.startswith(prefix):
                problems.append(f"{obj['metadata']['name']}: {kind} {name!r} is the API server's own name")
            elif bare not in (may_users if kind == "User" else may_groups) or not is_cluster_name(bare):
                problems.append(f"{obj['metadata']['name']}: {kind} {name!r} holds no role there")
    return problems


# --------------------------------------------------------------------------- the export files

STUB = """#!/bin/sh
# Stands in for Hadoop's `hdfs`: records its arguments (the count, then each, NUL-terminated).
printf '%s\\000' "$#" >> "$HDFS_CALLS"
for arg in "$@"; do printf '%s\\000' "$arg" >> "$HDFS_CALLS"; done
"""


def hdfs_script_calls(script: str) -> list[list[str]]:
    """Run hdfs-setup.sh with /bin/sh and a stand-in `hdfs`; the argument lists it was called with."""
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        stub = root / "bin" / "hdfs"
        stub.parent.mkdir()
        stub.write_text(STUB)
        stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
        (root / "hdfs-setup.sh").write_text(script)
        calls = root / "calls"
        calls.write_bytes(b"")
        env = {"PATH": f"{stub.parent}{os.pathsep}/usr/bin:/bin", "HDFS_CALLS": str(calls)}
        done = subprocess.run(  # noqa: S603 # our own script file, run by /bin/sh on purpose
            ["/bin/sh", str(root / "hdfs-setup.sh")], cwd=root, env=env, capture_output=True, timeout=60
        )
        assert done.returncode == 0, done.stderr.decode()
        # Anything a value smuggled into the script would have left behind: only our two files.
        assert sorted(p.name for p in root.iterdir()) == ["bin", "calls", "hdfs-setup.sh"]
        tokens = calls.read_bytes().split(b"\0")[:-1]
    found, index = [], 0
    while index < len(tokens):
        count = int(tokens[index])
        found.append([t.decode() for t in tokens[index + 1 : index + 1 + count]])
        index += 1 + count
    return found


def export_mismatches(objects: list[dict[str, Any]]) -> list[str]:
    """Where the export files say something else than the objects: each queue ACL as XML reads it
    back, each directory's ACL spec, owner and permission as the script hands them to `hdfs`."""
    files = hadoop_files(objects)
    problems = []
    xml = ET.fromstring(files["capacity-scheduler.xml"])  # noqa: S314 # Canopy's own output
    properties = {p.findtext("name"): p.findtext("value") for p in xml.iter("property")}
    for obj in objects:
        name, spec = obj["metadata"]["name"], obj["spec"]
        if obj["kind"] == QUEUE_KIND:
            for key in ACL_KEYS:
                if key in spec and properties.get(f"yarn.scheduler.capacity.{name}.{key}") != spec[key]:
                    problems.append(f"capacity-scheduler.xml: {name}.{key} is not {spec[key]!r}")
    calls = hdfs_script_calls(files["hdfs-setup.sh"])
    for obj in objects:
        if obj["kind"] != DIRECTORY_KIND:
            continue
        name, spec = obj["metadata"]["name"], obj["spec"]
        wanted = [
            ["dfs", "-mkdir", "-p", name],
            ["dfs", "-chown", f"{spec['owner']}:{spec['group']}", name],
            ["dfs", "-chmod", str(spec["permission"]), name],
        ]
        if spec["acl"]:
            wanted.append(["dfs", "-setfacl", "-m", ",".join(spec["acl"]), name])
        for call in wanted:
            if call not in calls:
                problems.append(f"hdfs-setup.sh never runs hdfs {call}")
    for call in calls:
        if call[:1] not in (["dfs"], ["dfsadmin"]):
            problems.append(f"hdfs-setup.sh runs hdfs {call}")
    return problems


def widenings() -> list[str]:
    """Everything Canopy would send to each cluster now (each Hadoop cluster's queue tree and
    directories, and the export files; each tenant's Kubernetes objects), checked against the
    database's roles."""
    problems: list[str] = []
    for cluster in Cluster.objects.filter(kind=Cluster.Kind.YARN):
        connection = HadoopConnection.objects.filter(cluster=cluster).first()
        whole = selectors.Target(
            cluster,
            connection,
            selectors.cluster_settings(cluster, None),
            None,
            selectors.yarn_cluster(cluster),
        )
        try:
            objects = services.target_objects(whole)
        except RuleViolation:
            continue  # refused before anything is sent
        problems += yarn_widenings(objects, connection.remainder_queue if connection else "default")
        problems += export_mismatches(objects)
    tenants = Tenant.objects.in_bulk()
    kubernetes = Cluster.objects.filter(kind=Cluster.Kind.KUBERNETES).values_list("pk", flat=True)
    for sync in TenantSync.objects.filter(tenant_id__in=list(tenants)):
        for cluster_id in kubernetes:
            for target in selectors.tenant_targets(
                tenant_id=sync.tenant_id, sync=sync, cluster_id=cluster_id
            ):
                if target.state is None:
                    continue
                oidc = target.settings.oidc
                prefixes = (oidc.username_prefix, oidc.groups_prefix) if oidc else ("", "")
                objects = services.target_objects(target)
                problems += kubernetes_widenings(objects, tenants[sync.tenant_id], prefixes)
    return problems
