"""What a tenant should look like on a Kubernetes cluster, as plain manifests.

Pure functions: plain dataclasses in (built by `provisioning.selectors`), dicts out. No ORM, no
I/O, no settings, so the same input always renders the same objects and tests can check them
without a database or a cluster.

Per tenant and cluster where it has an allocation:
- Namespace (name stored when first assigned, see `namespace_name`), labelled with the tenant's path,
  level and parent and `app.kubernetes.io/managed-by: canopy`;
- a ServiceAccount for everyone who acts there: members, viewers and admins of the tenant, and
  admins of its ancestors (their rights reach every namespace of their subtree);
- Roles `canopy-admin`, `canopy-member`, `canopy-viewer` and a RoleBinding per role in use (on a
  cluster that authenticates people with OIDC, the bindings also name the users and groups holding
  memberships, as the API server sees them: with its username and groups prefixes);
- a ResourceQuota from the allocation (an unlimited resource has no key), and a LimitRange whose
  defaults let a pod that names no resources be admitted inside the quota;
- a PersistentVolume + PersistentVolumeClaim per NFS volume attached to the tenant (server and path
  from the volume's NFS share: its server, its base path / the volume's sub-path);
- optionally a NetworkPolicy that refuses traffic from other tenants' namespaces.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from tenants import paths
from tenants.cluster_names import is_cluster_name, name_problem
from tenants.quantities import format_cpu, format_memory

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "canopy"
LABEL_PREFIX = "canopy.io/"
TENANT_ID_LABEL = f"{LABEL_PREFIX}tenant-id"
TENANT_LABEL = f"{LABEL_PREFIX}tenant"
LEVEL_LABEL = f"{LABEL_PREFIX}tenant-level"
PARENT_LABEL = f"{LABEL_PREFIX}parent"
PATH_ANNOTATION = f"{LABEL_PREFIX}tenant-path"
ROLE_ANNOTATION = f"{LABEL_PREFIX}role"

QUOTA_NAME = "canopy-quota"
LIMITS_NAME = "canopy-defaults"
NETWORK_POLICY_NAME = "canopy-tenant-isolation"
ROLES = ("admin", "member", "viewer")

DNS_LABEL_MAX = 63
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
# The Kueue engine's top Cohort, above every level-1 tenant's queue or cohort (provisioning.desired.kueue):
# tenants' cohorts are named as their namespaces, so no namespace may take its name.
ROOT_COHORT = "canopy-root"
# Names a tenant must not take over: the cluster's own namespaces, the root cohort's name, and the
# ServiceAccount every pod runs as when it names none (binding a person's role to it would hand that
# role to every pod).
_RESERVED_NAMESPACES = {"default", ROOT_COHORT}
_RESERVED_SERVICE_ACCOUNTS = {"default"}

ALL_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
READ_VERBS = ["get", "list", "watch"]

# The kinds Canopy writes, in the order they are applied (deleted in reverse).
KIND_ORDER = (
    "Namespace",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ResourceQuota",
    "LimitRange",
    "NetworkPolicy",
    "PersistentVolume",
    "PersistentVolumeClaim",
)


# ---------------------------------------------------------------------------------------------
# Names


def _digest(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def fit_name(name: str, key: str, limit: int = DNS_LABEL_MAX) -> str:
    """`name` if it fits, else a prefix of it with a hash of `key`, so long names stay unique."""
    if len(name) <= limit:
        return name
    suffix = f"-{_digest(key)}"
    return name[: limit - len(suffix)].rstrip("-.") + suffix


def namespace_name(path: str) -> str:
    """The namespace a tenant gets: its path with '/' as '-' ("department1/dev1" -> "department1-dev1").

    Tenant names are DNS labels, so the result is one too once it fits 63 characters (a longer
    path keeps a prefix and a hash of the whole path). The cluster's `default` and `kube-*`
    namespaces, and the name of the Kueue engine's root cohort, are never taken: such a tenant gets
    a `canopy-` prefix.
    """
    name = path.strip("/").replace("/", "-")
    if name in _RESERVED_NAMESPACES or name.startswith("kube-"):
        name = f"canopy-{name}"
    return fit_name(name, path)


def service_account_name(username: str) -> str:
    """A person's ServiceAccount: the username itself when it is a DNS label ("bob", "tom"),
    else a cleaned-up form with a hash of the username so two people never share one."""
    if _DNS_LABEL.fullmatch(username) and username not in _RESERVED_SERVICE_ACCOUNTS:
        return username
    slug = re.sub(r"[^a-z0-9]+", "-", username.lower()).strip("-")[:40].strip("-") or "user"
    return f"{slug}-{_digest(username)}"


def persistent_volume_name(namespace: str, claim_name: str) -> str:
    """PersistentVolumes are cluster-wide, so their names carry the namespace."""
    return fit_name(f"canopy-{namespace}-{claim_name}", f"{namespace}/{claim_name}", 253)


def label_value(text: str) -> str:
    """A tenant path as a label value: '/' becomes '.', which tenant names never contain."""
    value = text.replace("/", ".")
    if _LABEL_VALUE.fullmatch(value):
        return value
    return fit_name(value, text).rstrip("-._")


# ---------------------------------------------------------------------------------------------
# Input


@dataclass(frozen=True)
class Quota:
    """What the tenant may use on one cluster (None: unlimited)."""

    gpu: int | None = None
    cpu_millicores: int | None = None
    memory_bytes: int | None = None


@dataclass(frozen=True)
class Subject:
    """Someone who acts in the namespace: a member, viewer or admin of the tenant, or an admin of an
    ancestor (`inherited_from` names the ancestor's path)."""

    username: str
    role: str
    inherited_from: str | None = None

    @property
    def service_account(self) -> str:
        return service_account_name(self.username)


@dataclass(frozen=True)
class Principal:
    """A membership's own subject, as an OIDC cluster names it: a user or a group (`kind` "User" or
    "Group", `name` without the cluster's prefix), with its strongest role in the namespace."""

    kind: str
    name: str
    role: str
    inherited_from: str | None = None


@dataclass(frozen=True)
class VolumeClaim:
    """A tenant's claim on a volume: a directory (`sub_path`, "" for the base itself) of an NFS share
    a platform admin registered (`share`, `server`, `base_path`)."""

    claim_name: str
    volume_name: str
    share: str
    server: str
    base_path: str
    sub_path: str
    capacity_bytes: int
    access_mode: str
    shared: bool

    @property
    def nfs_path(self) -> str:
        return paths.below(self.base_path, self.sub_path)


@dataclass(frozen=True)
class PoolShare:
    """What a tenant has in one pool of a cluster whose quota engine is Kueue (None: unlimited).

    `own`: what its own namespace is guaranteed, its allocation minus what its sub-tenants hold;
    `extra`: how much more it may use by borrowing idle quota, its burst minus its allocation
    (0: no burst, the guaranteed amount is also the most)."""

    pool: str
    own: Quota = field(default_factory=Quota)
    extra: Quota = field(default_factory=lambda: Quota(0, 0, 0))


@dataclass(frozen=True)
class TenantState:
    tenant_id: int
    path: str
    level: int
    namespace: str
    quota: Quota = field(default_factory=Quota)
    suspended: bool = False
    subjects: tuple[Subject, ...] = ()
    claims: tuple[VolumeClaim, ...] = ()
    principals: tuple[Principal, ...] = ()
    # The Kueue engine only: the tenant's pools, its parent's namespace (its parent's cohort) and
    # whether it has sub-tenants on the cluster (then it is a cohort of its own).
    pools: tuple[PoolShare, ...] = ()
    parent_namespace: str | None = None
    has_subtenants: bool = False

    @property
    def parent_path(self) -> str | None:
        return self.path.rpartition("/")[0] or None


@dataclass(frozen=True)
class ContainerDefaults:
    """Default requests and limits for containers that name none (LimitRange)."""

    request_cpu_millicores: int = 100
    request_memory_bytes: int = 256 * 2**20
    limit_cpu_millicores: int = 1000
    limit_memory_bytes: int = 2**30


RESOURCE_QUOTA_ENGINE = "resourcequota"
KUEUE_ENGINE = "kueue"


@dataclass(frozen=True)
class Pool:
    """A resource pool of a cluster whose quota engine is Kueue: its node selector as entered
    (`gpu=t4`; checked where it is rendered) and its capacity (0: not recorded)."""

    name: str
    node_selector: str = ""
    capacity: Quota = field(default_factory=lambda: Quota(0, 0, 0))


@dataclass(frozen=True)
class ClusterSettings:
    name: str
    gpu_resource: str = "nvidia.com/gpu"
    network_policy: bool = False
    defaults: ContainerDefaults = field(default_factory=ContainerDefaults)
    oidc: OidcNames | None = None
    quota_engine: str = RESOURCE_QUOTA_ENGINE
    pools: tuple[Pool, ...] = ()  # the Kueue engine only


@dataclass(frozen=True)
class OidcNames:
    """How the cluster's API server names people who sign in with OIDC: its --oidc-username-prefix
    and --oidc-groups-prefix."""

    username_prefix: str = ""
    groups_prefix: str = "oidc:"


# ---------------------------------------------------------------------------------------------
# Objects


def ownership_labels(tenant_id: int) -> dict[str, str]:
    """The labels that make an object Canopy's and say whose it is: how the backends find what to
    delete."""
    return {MANAGED_BY_LABEL: MANAGED_BY, TENANT_ID_LABEL: str(tenant_id)}


def _metadata(tenant: TenantState, name: str, *, namespaced: bool = True) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "labels": {**ownership_labels(tenant.tenant_id), TENANT_LABEL: label_value(tenant.path)},
    }
    if namespaced:
        metadata["namespace"] = tenant.namespace
    return metadata


def _namespace(tenant: TenantState) -> dict[str, Any]:
    metadata = _metadata(tenant, tenant.namespace, namespaced=False)
    metadata["labels"][LEVEL_LABEL] = str(tenant.level)
    if tenant.parent_path:
        metadata["labels"][PARENT_LABEL] = label_value(tenant.parent_path)
    metadata["annotations"] = {PATH_ANNOTATION: tenant.path}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


WORKLOADS = {
    "": ["pods", "services", "configmaps", "secrets", "persistentvolumeclaims"],
    "apps": ["deployments"],
    "batch": ["jobs"],
    "kubeflow.org": ["tfjobs", "pytorchjobs", "mpijobs"],
}
OBSERVED = ["events", "resourcequotas", "limitranges"]


def role_rules(role: str) -> list[dict[str, Any]]:
    """member: manage workloads (and exec into pods); viewer: read them (not secrets);
    admin: member plus RoleBindings, so tenant admins can share access inside their namespaces."""
    if role == "viewer":
        core = [r for r in WORKLOADS[""] if r != "secrets"]
        rules = [_rule([""], [*core, "pods/log"], READ_VERBS)]
        rules += [_rule([group], resources, READ_VERBS) for group, resources in WORKLOADS.items() if group]
        return [*rules, _rule([""], OBSERVED, READ_VERBS)]
    rules = [_rule([group], resources, ALL_VERBS) for group, resources in WORKLOADS.items()]
    rules += [
        _rule([""], ["pods/log"], READ_VERBS),
        _rule([""], ["pods/exec"], ["create", "get"]),
        _rule([""], OBSERVED, READ_VERBS),
    ]
    if role == "admin":
        rules.append(_rule(["rbac.authorization.k8s.io"], ["rolebindings"], ALL_VERBS))
    return rules


def _roles(tenant: TenantState) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _metadata(tenant, f"canopy-{role}"),
            "rules": role_rules(role),
        }
        for role in ROLES
    ]


def _service_accounts(tenant: TenantState) -> list[dict[str, Any]]:
    objects = []
    for subject in sorted(tenant.subjects, key=lambda s: s.service_account):
        metadata = _metadata(tenant, subject.service_account)
        metadata["annotations"] = {f"{LABEL_PREFIX}username": subject.username}
        objects.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata})
    return objects


def _oidc_subjects(tenant: TenantState, cluster: ClusterSettings, role: str) -> list[dict[str, Any]]:
    """The users and groups holding `role`, named as the OIDC cluster's API server names them. A
    name outside tenants.cluster_names' rule is left out (only a row older than the rule can hold
    one; `names_left_out` says which): with an empty prefix, "system:authenticated" would be
    everyone signed in to the cluster."""
    if cluster.oidc is None:
        return []
    found = []
    for principal in tenant.principals:
        if principal.role != role or not is_cluster_name(principal.name):
            continue
        if principal.kind == "Group":
            found.append(("Group", f"{cluster.oidc.groups_prefix}{principal.name}"))
        else:
            found.append(("User", f"{cluster.oidc.username_prefix}{principal.name}"))
    return [
        {"kind": kind, "apiGroup": "rbac.authorization.k8s.io", "name": name}
        for kind, name in sorted(set(found))
    ]


def names_left_out(tenant: TenantState, cluster: ClusterSettings) -> list[str]:
    """Why users or groups holding a role are not named in the tenant's role bindings (see
    `_oidc_subjects`). People always get their ServiceAccount: its name is made safe from theirs."""
    if cluster.oidc is None:
        return []
    return [
        f"A {principal.kind.lower()} of {tenant.path} is left out of its role bindings. {problem}"
        for principal in sorted(tenant.principals, key=lambda p: (p.kind, p.name))
        if (problem := name_problem(principal.name))
    ]


def _role_bindings(tenant: TenantState, cluster: ClusterSettings) -> list[dict[str, Any]]:
    objects = []
    for role in ROLES:
        holders = sorted(s.service_account for s in tenant.subjects if s.role == role)
        named = _oidc_subjects(tenant, cluster, role)
        if not holders and not named:
            continue
        objects.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": _metadata(tenant, f"canopy-{role}"),
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": f"canopy-{role}",
                },
                "subjects": [
                    *(
                        {"kind": "ServiceAccount", "name": name, "namespace": tenant.namespace}
                        for name in holders
                    ),
                    *named,
                ],
            }
        )
    return objects


def quota_hard(tenant: TenantState, cluster: ClusterSettings) -> dict[str, str]:
    """ResourceQuota keys for the limited resources. Extended resources (GPUs) can only be quota'd
    on requests; CPU and memory get both requests and limits. A suspended tenant admits no pods."""
    quota = tenant.quota
    hard: dict[str, str] = {}
    if quota.gpu is not None:
        hard[f"requests.{cluster.gpu_resource}"] = str(quota.gpu)
    cpu, memory = format_cpu(quota.cpu_millicores), format_memory(quota.memory_bytes)
    if cpu is not None:
        hard["requests.cpu"] = hard["limits.cpu"] = cpu
    if memory is not None:
        hard["requests.memory"] = hard["limits.memory"] = memory
    if tenant.suspended:
        hard["pods"] = "0"
    return hard


def _quota(tenant: TenantState, cluster: ClusterSettings) -> list[dict[str, Any]]:
    hard = quota_hard(tenant, cluster)
    if not hard:
        return []
    return [
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": _metadata(tenant, QUOTA_NAME),
            "spec": {"hard": hard},
        }
    ]


def _limit_range(tenant: TenantState, cluster: ClusterSettings) -> list[dict[str, Any]]:
    """Defaults only for what the quota limits (a quota on CPU or memory refuses pods that do not
    name them); each default is kept inside the quota. GPUs get no default: a container that
    names none should not get one."""
    defaults, quota = cluster.defaults, tenant.quota
    default: dict[str, str] = {}
    request: dict[str, str] = {}
    if quota.cpu_millicores:
        limit = min(defaults.limit_cpu_millicores, quota.cpu_millicores)
        default["cpu"] = format_cpu(limit) or ""
        request["cpu"] = format_cpu(min(defaults.request_cpu_millicores, limit)) or ""
    if quota.memory_bytes:
        limit = min(defaults.limit_memory_bytes, quota.memory_bytes)
        default["memory"] = format_memory(limit) or ""
        request["memory"] = format_memory(min(defaults.request_memory_bytes, limit)) or ""
    if not default:
        return []
    return [
        {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": _metadata(tenant, LIMITS_NAME),
            "spec": {"limits": [{"type": "Container", "default": default, "defaultRequest": request}]},
        }
    ]


def _network_policy(tenant: TenantState, cluster: ClusterSettings) -> list[dict[str, Any]]:
    """Ingress only from the namespace itself and from namespaces that are not tenants' (system
    components, ingress controllers): tenants cannot reach each other."""
    if not cluster.network_policy:
        return []
    not_a_tenant = {
        "matchExpressions": [{"key": MANAGED_BY_LABEL, "operator": "NotIn", "values": [MANAGED_BY]}]
    }
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _metadata(tenant, NETWORK_POLICY_NAME),
            "spec": {
                "podSelector": {},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"podSelector": {}}, {"namespaceSelector": not_a_tenant}]}],
            },
        }
    ]


def _volumes(tenant: TenantState) -> list[dict[str, Any]]:
    """A PV per claim, pre-bound to its claim, so a shared directory appears in each sharing tenant
    and nowhere else; Retain, so deleting a claim never touches the data."""
    volumes, claims = [], []
    for claim in sorted(tenant.claims, key=lambda c: c.claim_name):
        pv_name = persistent_volume_name(tenant.namespace, claim.claim_name)
        storage = format_memory(claim.capacity_bytes)
        pv_metadata = _metadata(tenant, pv_name, namespaced=False)
        pv_metadata["annotations"] = {
            f"{LABEL_PREFIX}volume": claim.volume_name,
            f"{LABEL_PREFIX}nfs-share": claim.share,
        }
        volumes.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": pv_metadata,
                "spec": {
                    "capacity": {"storage": storage},
                    "accessModes": [claim.access_mode],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "nfs": {"server": claim.server, "path": claim.nfs_path},
                    "claimRef": {"namespace": tenant.namespace, "name": claim.claim_name},
                },
            }
        )
        claim_metadata = _metadata(tenant, claim.claim_name)
        claim_metadata["annotations"] = {f"{LABEL_PREFIX}volume": claim.volume_name}
        claims.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": claim_metadata,
                "spec": {
                    "accessModes": [claim.access_mode],
                    "storageClassName": "",
                    "volumeName": pv_name,
                    "resources": {"requests": {"storage": storage}},
                },
            }
        )
    return [*volumes, *claims]


def tenant_objects(cluster: ClusterSettings, tenant: TenantState) -> list[dict[str, Any]]:
    """Every object the tenant should have on the cluster, in the order they are applied."""
    objects = [
        _namespace(tenant),
        *_service_accounts(tenant),
        *_roles(tenant),
        *_role_bindings(tenant, cluster),
        *_quota(tenant, cluster),
        *_limit_range(tenant, cluster),
        *_network_policy(tenant, cluster),
        *_volumes(tenant),
    ]
    return sorted(objects, key=lambda obj: KIND_ORDER.index(obj["kind"]))
