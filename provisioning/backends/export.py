"""The export backend: desired manifests as YAML files, a folder per tenant namespace, for GitOps
tools (Argo CD, Flux) or `kubectl apply -R -f`. The embedded default uses it, so the demo pushes
somewhere real without a cluster.

Layout under the backend's root (one root per cluster):

    <namespace>/00-namespace-<namespace>.yaml
    <namespace>/01-serviceaccount-bob.yaml
    ...
    <namespace>/07-persistentvolume-canopy-<namespace>-<claim>.yaml
    <namespace>/13-clusterqueue-<namespace>.yaml              (the Kueue engine: the tenant's
                                                               queues and cohort, cluster-wide or not)
    _cluster/11-resourceflavor-canopy-<pool>.yaml             (the Kueue engine: the cluster's own
                                                               flavors, root cohort, admission policy)

The number is the kind's (`provisioning.desired.kueue.ALL_KINDS`); `kubectl apply -R -f` the
`_cluster` folder first.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from provisioning.backends.base import Backend, BackendError, ObjectRef, Plan, Scope, owner_tenant
from provisioning.desired.kueue import ALL_KINDS, CLUSTER_OWNER_ID
from provisioning.desired.yarn import RuleViolation

HEADER = "# Rendered by Canopy from its tenant tree; changes made here are replaced on the next push.\n"
# The folder of the cluster's own objects: not a DNS label, so never a namespace's.
CLUSTER_FOLDER = "_cluster"


def folder_of(obj: dict[str, Any]) -> str:
    """The folder an object belongs in: its tenant's namespace (a PV: the namespace of its claim;
    a ClusterQueue: the namespace it serves; a tenant's Cohort is named as its namespace), or
    `_cluster` for the cluster's own objects."""
    metadata = obj["metadata"]
    if owner_tenant(obj) == str(CLUSTER_OWNER_ID):
        return CLUSTER_FOLDER
    if obj["kind"] in ("Namespace", "Cohort"):
        return metadata["name"]
    if obj["kind"] == "PersistentVolume":
        return obj["spec"]["claimRef"]["namespace"]
    if obj["kind"] == "ClusterQueue":
        return obj["spec"]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
    return metadata["namespace"]


def file_name(ref: ObjectRef) -> str:
    index = ALL_KINDS.index(ref.kind) if ref.kind in ALL_KINDS else 99
    return f"{index:02d}-{ref.kind.lower()}-{ref.name}.yaml"


def render(obj: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(obj, sort_keys=False, default_flow_style=False)


def manifest_files(objects: list[dict[str, Any]]) -> dict[str, str]:
    """Relative path -> YAML text for a list of objects (what the export API zips)."""
    return {f"{folder_of(obj)}/{file_name(ObjectRef.of(obj))}": render(obj) for obj in objects}


class ExportBackend(Backend):
    name = "export"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def describe(self) -> str:
        return f"manifests written to {self.root} (export backend: no cluster connected)"

    def _files(self, folder: str) -> list[Path]:
        directory = self.root / folder
        return sorted(directory.glob("*.yaml")) if directory.is_dir() else []

    def _load(self, path: Path) -> dict[str, Any] | None:
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            return None  # a file someone broke by hand is rewritten on the next push
        return data if isinstance(data, dict) and "kind" in data and "metadata" in data else None

    def list_owned(self, scope: Scope) -> list[dict[str, Any]]:
        objects = []
        for path in self._files(scope.namespace or CLUSTER_FOLDER):
            obj = self._load(path)
            if obj is not None and owner_tenant(obj) == str(scope.tenant_id):
                objects.append(obj)
        return objects

    def _path(self, ref: ObjectRef, folder: str) -> Path:
        return self.root / folder / file_name(ref)

    def _find(self, ref: ObjectRef) -> Path | None:
        if ref.namespace:
            candidate = self._path(ref, ref.namespace)
            return candidate if candidate.is_file() else None
        matches = sorted(self.root.glob(f"*/{file_name(ref)}")) if self.root.is_dir() else []
        return matches[0] if matches else None

    def read(self, ref: ObjectRef) -> dict[str, Any] | None:
        path = self._find(ref)
        return self._load(path) if path else None

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        path = self._path(ObjectRef.of(obj), folder_of(obj))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename, so a GitOps tool never sees half a file.
            with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
                handle.write(render(obj))
            os.replace(handle.name, path)
        except OSError as error:
            raise BackendError(f"Cannot write {path}: {error.strerror or error}") from error
        return obj

    def delete(self, ref: ObjectRef) -> None:
        if ref.kind == "Namespace":
            # As on a cluster, deleting the namespace deletes everything in it.
            shutil.rmtree(self.root / ref.name, ignore_errors=True)
            return
        path = self._find(ref)
        if path is None:
            return
        try:
            path.unlink()
            if not any(path.parent.iterdir()):
                path.parent.rmdir()
        except FileNotFoundError:
            return
        except OSError as error:
            raise BackendError(f"Cannot delete {path}: {error.strerror or error}") from error


# ---------------------------------------------------------------------------------------------
# Hadoop clusters without the scheduler-conf mutation API (or without a connection)

HADOOP_FILES = ("capacity-scheduler.xml", "hdfs-setup.sh")
# Characters XML 1.0 cannot hold, escaped or not (its Char production): escape() leaves them as they are.
_NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def capacity_scheduler_xml(objects: list[dict[str, Any]]) -> str:
    """The queue objects as capacity-scheduler.xml properties (full keys, `<queue>.queues` lists
    derived from the tree), for an admin to merge and load with `yarn rmadmin -refreshQueues`."""
    from xml.sax.saxutils import escape  # nosec B406 # escapes what we write; nothing is parsed

    queues = {obj["metadata"]["name"]: obj["spec"] for obj in objects if obj["kind"] == "YarnQueue"}
    unwritable = sorted(
        f"{path}: {key}={value!r}"
        for path, params in queues.items()
        for key, value in params.items()
        if _NOT_IN_XML.search(f"{path}{key}{value}")
    )
    if unwritable:
        raise RuleViolation(
            [f"Control characters cannot be written to capacity-scheduler.xml: {', '.join(unwritable)}."]
        )
    children: dict[str, list[str]] = {}
    for path in queues:
        parent, _, name = path.rpartition(".")
        if parent:
            children.setdefault(parent, []).append(name)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        "<!-- Rendered by Canopy from its tenant tree: merge into capacity-scheduler.xml, then run",
        "     `yarn rmadmin -refreshQueues`. Queues Canopy does not know are not listed here. -->",
        "<configuration>",
    ]
    for path in sorted(queues):
        params = dict(queues[path])
        if path in children:
            params["queues"] = ",".join(sorted(children[path]))
        for key in sorted(params):
            name = escape(f"yarn.scheduler.capacity.{path}.{key}")
            lines.append(
                f"  <property><name>{name}</name><value>{escape(str(params[key]))}</value></property>"
            )
    lines.append("</configuration>")
    return "\n".join(lines) + "\n"


def hdfs_script(objects: list[dict[str, Any]]) -> str:
    """The directory objects as an `hdfs dfs` / `hdfs dfsadmin` script, run as the HDFS superuser.
    Every value is one shell word, quoted (paths, owner and group, permission, the ACL spec) or an
    integer (quotas): nothing in a name or a setting can add a command."""
    import shlex

    lines = [
        "#!/bin/sh",
        "# Rendered by Canopy: tenant directories with owner, permission, ACL and quotas.",
        "# Run as the HDFS superuser. Safe to run again.",
        "set -eu",
    ]
    for obj in objects:
        if obj["kind"] != "HdfsDirectory":
            continue
        path, spec = shlex.quote(obj["metadata"]["name"]), obj["spec"]
        lines += [
            "",
            f"hdfs dfs -mkdir -p {path}",
            f"hdfs dfs -chown {shlex.quote(spec['owner'] + ':' + spec['group'])} {path}",
            f"hdfs dfs -chmod {shlex.quote(str(spec['permission']))} {path}",
        ]
        if spec["acl"]:
            lines.append(f"hdfs dfs -setfacl -m {shlex.quote(','.join(spec['acl']))} {path}")
        files, space = int(spec["namespaceQuota"]), int(spec["spaceQuota"])
        lines.append(
            f"hdfs dfsadmin -setQuota {files} {path}" if files >= 0 else f"hdfs dfsadmin -clrQuota {path}"
        )
        lines.append(
            f"hdfs dfsadmin -setSpaceQuota {space} {path}"
            if space >= 0
            else f"hdfs dfsadmin -clrSpaceQuota {path}"
        )
    return "\n".join(lines) + "\n"


def hadoop_files(objects: list[dict[str, Any]]) -> dict[str, str]:
    return {"capacity-scheduler.xml": capacity_scheduler_xml(objects), "hdfs-setup.sh": hdfs_script(objects)}


class HadoopExportBackend(Backend):
    """A Hadoop cluster's whole desired state as two files under `root`: capacity-scheduler.xml
    and hdfs-setup.sh. A plan changes a file when its content would differ."""

    name = "export"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def describe(self) -> str:
        return f"capacity-scheduler.xml and hdfs-setup.sh written to {self.root} (export backend: no cluster connected)"

    def _file(self, name: str) -> dict[str, Any]:
        return {"apiVersion": "canopy.io/file", "kind": "File", "metadata": {"name": name}}

    def list_owned(self, scope: Scope) -> list[dict[str, Any]]:
        return [obj for name in HADOOP_FILES if (obj := self.read(ObjectRef("File", name))) is not None]

    def read(self, ref: ObjectRef) -> dict[str, Any] | None:
        path = self.root / ref.name
        try:
            return {**self._file(ref.name), "content": path.read_text()}
        except OSError:
            return None

    def plan(self, scope: Scope, desired: list[dict[str, Any]]) -> Plan:
        files = [{**self._file(name), "content": text} for name, text in hadoop_files(desired).items()]
        return Backend.plan(self, scope, files)

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        path = self.root / obj["metadata"]["name"]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
                handle.write(obj["content"])
            os.replace(handle.name, path)
        except OSError as error:
            raise BackendError(f"Cannot write {path}: {error.strerror or error}") from error
        return obj

    def delete(self, ref: ObjectRef) -> None:
        (self.root / ref.name).unlink(missing_ok=True)
