"""What a tenant, and the cluster itself, should have on a Kubernetes cluster whose quota engine is
Kueue (kueue.x-k8s.io/v1beta2), as plain manifests.

Pure, like `provisioning.desired.kubernetes`, whose objects every tenant still gets. The tenant tree
becomes Kueue's hierarchical cohorts (docs/provisioning.md has the picture):

- The cluster's own objects (owner id 0, see `CLUSTER_OWNER_ID`): a ResourceFlavor per pool
  (`canopy-<pool>`, `nodeLabels` = the pool's node selector, so Kueue pins admitted pods to the
  pool's nodes); the root Cohort `canopy-root`; and a ValidatingAdmissionPolicy with its binding
  that refuses any pod of a tenant namespace not pinned (`spec.nodeSelector`) to one of the
  tenant's pools, and any pod naming its node itself.
- A tenant with sub-tenants on the cluster: a Cohort named as its namespace, `parentName` its
  parent's cohort (`canopy-root` at level 1), nominal 0 and `borrowingLimit` = its burst minus its
  allocation per pool: its whole subtree never uses more than its burst (without one, its
  allocation), so a child never exceeds its parent.
- Every tenant: a ClusterQueue named as its namespace, only for that namespace
  (`namespaceSelector` on `kubernetes.io/metadata.name`), in its own cohort when it has
  sub-tenants and else in its parent's; one resource group (CPU, memory, GPUs: Kueue lets a
  resource belong to one group only) with a flavor per pool: `nominalQuota` = what it is
  guaranteed there (its allocation minus what its sub-tenants hold), `borrowingLimit` = burst minus
  allocation, no `lendingLimit` (idle quota is lent, and `reclaimWithinCohort: Any` preempts
  borrowers when the lender needs it back, so the guarantee holds); `stopPolicy: Hold` while
  suspended. A LocalQueue `default` in its namespace (Kueue's LocalQueueDefaulting gives Jobs
  without a `kueue.x-k8s.io/queue-name` label this queue).
- The namespace's ResourceQuota stays as the hard ceiling: guaranteed + burst summed over the
  pools, so pods that bypass Kueue still cannot exceed what Kueue could admit. The namespace carries
  the label the admission policy's binding selects and its pools' node selectors; the tenant's
  Roles may read LocalQueues and Workloads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from provisioning.desired import kubernetes
from provisioning.desired.kubernetes import (
    KIND_ORDER,
    KUEUE_ENGINE,
    LABEL_PREFIX,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    READ_VERBS,
    ROOT_COHORT,
    TENANT_LABEL,
    ClusterSettings,
    Pool,
    Quota,
    TenantState,
    fit_name,
    label_value,
    ownership_labels,
)
from provisioning.desired.yarn import RuleViolation
from tenants.labels import node_selector_errors, node_selector_labels
from tenants.quantities import format_cpu, format_memory

KUEUE_GROUP = "kueue.x-k8s.io"
KUEUE_API_VERSION = f"{KUEUE_GROUP}/v1beta2"
ADMISSION_API_VERSION = "admissionregistration.k8s.io/v1"

# The cluster's own objects carry this owner id: tenant ids start at 1, so the backends find and
# prune them by label like any tenant's.
CLUSTER_OWNER_ID = 0
LOCAL_QUEUE = "default"  # the name Kueue's LocalQueueDefaulting looks for
FLAVOR_PREFIX = "canopy-"
POOL_ANNOTATION = f"{LABEL_PREFIX}pool"
# On a tenant namespace: what the admission policy's binding selects, and the node selectors of the
# tenant's pools (`k=v,k=v` each, `;` between pools, `*` for a pool without a selector).
QUOTA_ENGINE_LABEL = f"{LABEL_PREFIX}quota-engine"
NODE_POOLS_ANNOTATION = f"{LABEL_PREFIX}node-pools"
ANY_NODE = "*"
POOL_POLICY = "canopy-tenant-node-pools"
FLAVOR_LABELS_MAX = 8  # a ResourceFlavor's nodeLabels hold at most 8 labels

ADMISSION_KINDS = ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
KUEUE_KINDS = ("ResourceFlavor", "Cohort", "ClusterQueue", "LocalQueue")
# Every kind Canopy writes, numbered for the export backend's file names (the first kinds keep the
# numbers they had before Kueue).
ALL_KINDS = (*KIND_ORDER, *ADMISSION_KINDS, *KUEUE_KINDS)
# The order of applying (deleting: the reverse): the admission policy before any namespace it
# guards, flavors and cohorts before the queues that name them.
APPLY_ORDER = (*ADMISSION_KINDS, "ResourceFlavor", "Cohort", *KIND_ORDER, "ClusterQueue", "LocalQueue")
# What a plan covers: a tenant on a Kueue cluster, and the cluster's own objects.
TENANT_KINDS = (*KIND_ORDER, "Cohort", "ClusterQueue", "LocalQueue")
CLUSTER_KINDS = (*ADMISSION_KINDS, "ResourceFlavor", "Cohort")
# A tenant's cluster-wide queue and cohort are named as its namespace (fixed for life): a push reads
# them by name, one small call each, rather than listing every tenant's by label.
NAMED_KINDS = ("Cohort", "ClusterQueue")

# What an unlimited amount stands for when the pool's capacity is not recorded: Kueue needs a
# number for every resource a job asks for (one its queue does not list makes the job inadmissible).
UNBOUNDED = Quota(gpu=1_000_000, cpu_millicores=1_000_000_000, memory_bytes=2**50)


# ---------------------------------------------------------------------------------------------
# Names and helpers


def flavor_name(pool: str) -> str:
    """The ResourceFlavor of a pool: `canopy-<pool>` (a prefix keeps clear of flavors not Canopy's)."""
    return fit_name(f"{FLAVOR_PREFIX}{pool}", pool, 253)


def parent_cohort(tenant: TenantState) -> str:
    return tenant.parent_namespace or ROOT_COHORT


def node_labels(pool: Pool) -> dict[str, str]:
    """The pool's node selector as the map a ResourceFlavor and a pod's nodeSelector hold; a
    selector that has no such form (one saved before `tenants.labels`' rule) is refused before
    anything is sent."""
    problems = node_selector_errors(pool.node_selector)
    if problems:
        raise RuleViolation(
            [f"Pool {pool.name}'s node selector {pool.node_selector!r}: {p}" for p in problems]
        )
    labels = node_selector_labels(pool.node_selector)
    if len(labels) > FLAVOR_LABELS_MAX:
        raise RuleViolation(
            [
                f"Pool {pool.name}'s node selector has {len(labels)} labels; a Kueue ResourceFlavor "
                f"holds at most {FLAVOR_LABELS_MAX}."
            ]
        )
    return labels


def _node_pools(tenant: TenantState, pools: dict[str, Pool]) -> str:
    """The tenant's pools as the admission policy reads them from the namespace's annotation."""
    selectors = set()
    for share in tenant.pools:
        labels = node_labels(pools[share.pool])
        selectors.add(",".join(f"{k}={v}" for k, v in sorted(labels.items())) if labels else ANY_NODE)
    return ";".join(sorted(selectors))


def _metadata(owner_id: int, name: str, *, path: str | None = None, namespace: str | None = None) -> dict:
    labels = ownership_labels(owner_id)
    if path is not None:
        labels[TENANT_LABEL] = label_value(path)
    return {"name": name, **({"namespace": namespace} if namespace else {}), "labels": labels}


def _amounts(cluster: ClusterSettings) -> list[tuple[str, str, Any]]:
    """(resource name, Quota field, formatter), in the order of the resource group's resources."""
    return [
        ("cpu", "cpu_millicores", format_cpu),
        ("memory", "memory_bytes", format_memory),
        (cluster.gpu_resource, "gpu", str),
    ]


def _nominal(amount: int | None, capacity: int, unbounded: int) -> int:
    """An unlimited amount is the whole pool (what Canopy records of it), or beyond any node."""
    if amount is not None:
        return amount
    return capacity or unbounded


def _resource_groups(cluster: ClusterSettings, tenant: TenantState, *, cohort: bool) -> list[dict[str, Any]]:
    pools = {pool.name: pool for pool in cluster.pools}
    amounts = _amounts(cluster)
    flavors = []
    for share in sorted(tenant.pools, key=lambda s: s.pool):
        pool = pools[share.pool]
        resources = []
        for name, attribute, formatted in amounts:
            own = getattr(share.own, attribute)
            nominal = (
                0
                if cohort
                else _nominal(own, getattr(pool.capacity, attribute), getattr(UNBOUNDED, attribute))
            )
            entry: dict[str, Any] = {"name": name, "nominalQuota": formatted(nominal)}
            extra = getattr(share.extra, attribute)
            if own is not None and extra is not None:  # unlimited: borrow without limit
                entry["borrowingLimit"] = formatted(extra)
            resources.append(entry)
        flavors.append({"name": flavor_name(pool.name), "resources": resources})
    if not flavors:
        return []
    return [{"coveredResources": [name for name, _, _ in amounts], "flavors": flavors}]


def ceiling(tenant: TenantState) -> Quota:
    """The namespace's hard ceiling: what the tenant's own queue may reach in all its pools,
    guaranteed plus burst (None: unlimited)."""
    totals: dict[str, int | None] = {}
    for attribute in ("gpu", "cpu_millicores", "memory_bytes"):
        total: int | None = 0
        for share in tenant.pools:
            own, extra = getattr(share.own, attribute), getattr(share.extra, attribute)
            total = None if total is None or own is None or extra is None else total + own + extra
        totals[attribute] = total
    return Quota(**totals)


# ---------------------------------------------------------------------------------------------
# The cluster's own objects


# The pools of a pod's namespace, from the annotation Canopy writes on it (members cannot edit
# their namespace); empty when it is missing, so such a namespace admits no pod at all.
_POOLS_EXPRESSION = (
    f"has(namespaceObject.metadata.annotations) && '{NODE_POOLS_ANNOTATION}' in namespaceObject.metadata.annotations"
    f" ? namespaceObject.metadata.annotations['{NODE_POOLS_ANNOTATION}'].split(';') : []"
)
# Every label of one of the pools is in the pod's nodeSelector with the same value.
_ON_A_POOL_EXPRESSION = (
    f"variables.pools.exists(pool, pool == '{ANY_NODE}' || (has(object.spec.nodeSelector) && "
    "pool.split(',').all(label, label.split('=')[0] in object.spec.nodeSelector && "
    "object.spec.nodeSelector[label.split('=')[0]] == label.split('=')[1])))"
)
_ON_A_POOL_MESSAGE = (
    "'Pods in namespace ' + namespaceObject.metadata.name + ' run only on its pools\\' nodes: '"
    " + (size(variables.pools) == 0 ? 'it has no pool.' : 'set spec.nodeSelector to ' +"
    " variables.pools.join(' or ') + ' (a Job sent to its LocalQueue gets it from Kueue).')"
)


def _admission_policy() -> list[dict[str, Any]]:
    policy = {
        "apiVersion": ADMISSION_API_VERSION,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": _metadata(CLUSTER_OWNER_ID, POOL_POLICY),
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["pods"],
                    }
                ]
            },
            "variables": [{"name": "pools", "expression": _POOLS_EXPRESSION}],
            "validations": [
                {
                    "expression": "!has(object.spec.nodeName) || object.spec.nodeName == ''",
                    "message": "Pods in a tenant's namespace are placed by the scheduler on the tenant's "
                    "pools: spec.nodeName may not be set.",
                    "reason": "Forbidden",
                },
                {
                    "expression": _ON_A_POOL_EXPRESSION,
                    "messageExpression": _ON_A_POOL_MESSAGE,
                    "reason": "Forbidden",
                },
            ],
        },
    }
    binding = {
        "apiVersion": ADMISSION_API_VERSION,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": _metadata(CLUSTER_OWNER_ID, POOL_POLICY),
        "spec": {
            "policyName": POOL_POLICY,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {
                    "matchLabels": {MANAGED_BY_LABEL: MANAGED_BY, QUOTA_ENGINE_LABEL: KUEUE_ENGINE}
                }
            },
        },
    }
    return [policy, binding]


def objects_fingerprint(objects: list[dict[str, Any]]) -> str:
    """A digest of rendered objects: when the cluster's own objects were last applied with the same
    one, a tenant's push need not read them again."""
    return hashlib.sha256(json.dumps(objects, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def cluster_objects(cluster: ClusterSettings) -> list[dict[str, Any]]:
    """The cluster's own objects: flavors, the root cohort, the admission policy and its binding."""
    flavors = []
    for pool in sorted(cluster.pools, key=lambda p: p.name):
        metadata = _metadata(CLUSTER_OWNER_ID, flavor_name(pool.name))
        metadata["annotations"] = {POOL_ANNOTATION: pool.name}
        flavors.append(
            {
                "apiVersion": KUEUE_API_VERSION,
                "kind": "ResourceFlavor",
                "metadata": metadata,
                "spec": {"nodeLabels": node_labels(pool)},
            }
        )
    root = {
        "apiVersion": KUEUE_API_VERSION,
        "kind": "Cohort",
        "metadata": _metadata(CLUSTER_OWNER_ID, ROOT_COHORT),
        "spec": {},
    }
    return sorted([*_admission_policy(), *flavors, root], key=lambda obj: APPLY_ORDER.index(obj["kind"]))


# ---------------------------------------------------------------------------------------------
# A tenant's objects


def _with_kueue(obj: dict[str, Any], tenant: TenantState, pools: dict[str, Pool]) -> dict[str, Any]:
    """The namespace marked for the admission policy with its pools; Roles that read queues."""
    if obj["kind"] == "Namespace":
        obj["metadata"]["labels"][QUOTA_ENGINE_LABEL] = KUEUE_ENGINE
        obj["metadata"].setdefault("annotations", {})[NODE_POOLS_ANNOTATION] = _node_pools(tenant, pools)
    elif obj["kind"] == "Role":
        obj["rules"].append(
            {"apiGroups": [KUEUE_GROUP], "resources": ["localqueues", "workloads"], "verbs": [*READ_VERBS]}
        )
    return obj


def tenant_objects(cluster: ClusterSettings, tenant: TenantState) -> list[dict[str, Any]]:
    """Every object the tenant should have on the cluster, in the order they are applied: the
    ResourceQuota engine's objects (the quota as the ceiling) plus its queues and cohort."""
    if tenant.namespace == ROOT_COHORT:
        raise RuleViolation(
            [f"Tenant {tenant.path}'s namespace {ROOT_COHORT} is the name of Kueue's root cohort here."]
        )
    if tenant.level > 1 and not tenant.parent_namespace:
        # Its queue would land in the root cohort, outside its parent's cap: wait for the parent.
        raise RuleViolation([f"Tenant {tenant.path}'s parent has no namespace yet; it is pushed first."])
    pools = {pool.name: pool for pool in cluster.pools}
    capped = dataclasses.replace(tenant, quota=ceiling(tenant))
    objects = [_with_kueue(obj, tenant, pools) for obj in kubernetes.tenant_objects(cluster, capped)]
    if tenant.has_subtenants:
        objects.append(
            {
                "apiVersion": KUEUE_API_VERSION,
                "kind": "Cohort",
                "metadata": _metadata(tenant.tenant_id, tenant.namespace, path=tenant.path),
                "spec": {
                    "parentName": parent_cohort(tenant),
                    "resourceGroups": _resource_groups(cluster, tenant, cohort=True),
                },
            }
        )
    objects.append(
        {
            "apiVersion": KUEUE_API_VERSION,
            "kind": "ClusterQueue",
            "metadata": _metadata(tenant.tenant_id, tenant.namespace, path=tenant.path),
            "spec": {
                "cohortName": tenant.namespace if tenant.has_subtenants else parent_cohort(tenant),
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": tenant.namespace}},
                "resourceGroups": _resource_groups(cluster, tenant, cohort=False),
                "preemption": {"reclaimWithinCohort": "Any"},
                "stopPolicy": "Hold" if tenant.suspended else "None",
            },
        }
    )
    objects.append(
        {
            "apiVersion": KUEUE_API_VERSION,
            "kind": "LocalQueue",
            "metadata": _metadata(
                tenant.tenant_id, LOCAL_QUEUE, path=tenant.path, namespace=tenant.namespace
            ),
            "spec": {"clusterQueue": tenant.namespace},
        }
    )
    return sorted(objects, key=lambda obj: APPLY_ORDER.index(obj["kind"]))


# ---------------------------------------------------------------------------------------------
# Dispatch on the cluster's quota engine


def is_kueue(cluster: ClusterSettings) -> bool:
    return cluster.quota_engine == KUEUE_ENGINE


def engine_tenant_objects(cluster: ClusterSettings, tenant: TenantState) -> list[dict[str, Any]]:
    """The tenant's objects under the cluster's quota engine."""
    if is_kueue(cluster):
        return tenant_objects(cluster, tenant)
    return kubernetes.tenant_objects(cluster, tenant)


def engine_cluster_objects(cluster: ClusterSettings) -> list[dict[str, Any]]:
    """The cluster's own objects under its quota engine (none with ResourceQuotas alone)."""
    return cluster_objects(cluster) if is_kueue(cluster) else []


def tenant_kinds(cluster: ClusterSettings) -> tuple[str, ...]:
    return TENANT_KINDS if is_kueue(cluster) else KIND_ORDER


def tenant_named_kinds(cluster: ClusterSettings) -> tuple[str, ...]:
    """The kinds of `tenant_kinds` a push reads by the tenant's namespace as name."""
    return NAMED_KINDS if is_kueue(cluster) else ()
