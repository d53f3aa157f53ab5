"""The Kueue engine's pure desired state: the tenant tree as cohorts, queues and flavors, the quota
as a ceiling, the admission policy; every object valid against Kueue's CRD schemas and
Kubernetes 1.37. (Behaviour on a real Kueue: tests/provisioning/test_kueue_arena.py.)"""

from __future__ import annotations

import dataclasses

import pytest

from provisioning.backends.base import Scope
from provisioning.backends.export import CLUSTER_FOLDER, ExportBackend, folder_of
from provisioning.desired import kubernetes, kueue
from provisioning.desired.kubernetes import (
    ROOT_COHORT,
    ClusterSettings,
    Pool,
    PoolShare,
    Quota,
    Subject,
    TenantState,
    namespace_name,
)
from provisioning.desired.yarn import RuleViolation
from tenants.quantities import parse_memory_bytes
from tests.provisioning.kueue_schemas import validate

GI = parse_memory_bytes("1Gi")
WORKERS = Pool("workers", "node-role.kubernetes.io/worker=", Quota(3, 12_000, 90 * GI))
T4 = Pool("t4", "gpu=t4,canopy.test/pool=t4", Quota(4, 16_000, 64 * GI))
CLUSTER = ClusterSettings(name="gpu-cluster", quota_engine="kueue", pools=(WORKERS, T4))
NO_BURST = Quota(0, 0, 0)


def state(path: str, tenant_id: int, *shares: PoolShare, **overrides) -> TenantState:
    parent = path.rpartition("/")[0]
    values = dict(
        tenant_id=tenant_id,
        path=path,
        level=path.count("/") + 1,
        namespace=path.replace("/", "-"),
        subjects=(Subject("bob", "member"),),
        pools=shares,
        parent_namespace=parent.replace("/", "-") or None,
    )
    return TenantState(**{**values, **overrides})


# The Arena document: dev1 (1 GPU, CPU and memory unlimited) and dev2 (2 GPUs, 8 CPUs, 60 GiB).
DEV1 = state("dev1", 11, PoolShare("workers", Quota(gpu=1), Quota(gpu=0)))
DEV2 = state("dev2", 12, PoolShare("workers", Quota(2, 8000, 60 * GI), NO_BURST))


def by_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def one(objects, kind):
    [obj] = by_kind(objects, kind)
    return obj


def quotas(queue):
    """{flavor: {resource: (nominal, borrowing limit or None)}} of a queue or cohort."""
    [group] = queue["spec"]["resourceGroups"]
    return {
        flavor["name"]: {r["name"]: (r["nominalQuota"], r.get("borrowingLimit")) for r in flavor["resources"]}
        for flavor in group["flavors"]
    }


def test_the_cluster_gets_a_flavor_per_pool_the_root_cohort_and_the_pool_policy():
    objects = kueue.cluster_objects(CLUSTER)
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("ValidatingAdmissionPolicy", "canopy-tenant-node-pools"),
        ("ValidatingAdmissionPolicyBinding", "canopy-tenant-node-pools"),
        ("ResourceFlavor", "canopy-t4"),
        ("ResourceFlavor", "canopy-workers"),
        ("Cohort", ROOT_COHORT),
    ]
    flavors = {o["metadata"]["name"]: o for o in by_kind(objects, "ResourceFlavor")}
    assert flavors["canopy-workers"]["spec"] == {"nodeLabels": {"node-role.kubernetes.io/worker": ""}}
    assert flavors["canopy-t4"]["spec"] == {"nodeLabels": {"gpu": "t4", "canopy.test/pool": "t4"}}
    assert flavors["canopy-t4"]["metadata"]["annotations"] == {"canopy.io/pool": "t4"}
    # Owned by the cluster itself (owner id 0), so they are found and pruned like a tenant's.
    for obj in objects:
        assert obj["metadata"]["labels"] == {
            "app.kubernetes.io/managed-by": "canopy",
            "canopy.io/tenant-id": "0",
        }
    binding = one(objects, "ValidatingAdmissionPolicyBinding")["spec"]
    assert binding["matchResources"]["namespaceSelector"] == {
        "matchLabels": {"app.kubernetes.io/managed-by": "canopy", "canopy.io/quota-engine": "kueue"}
    }
    assert binding["validationActions"] == ["Deny"]


def test_arena_dev1_is_a_queue_in_the_root_cohort_with_its_gpu_and_the_pool_for_unlimited_cpu_and_memory():
    objects = kueue.tenant_objects(CLUSTER, DEV1)
    queue = one(objects, "ClusterQueue")
    assert queue["metadata"]["name"] == "dev1"
    assert queue["spec"]["cohortName"] == ROOT_COHORT
    assert queue["spec"]["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "dev1"}}
    assert queue["spec"]["resourceGroups"][0]["coveredResources"] == ["cpu", "memory", "nvidia.com/gpu"]
    # Unlimited CPU and memory: the whole pool, borrowing without limit; GPUs: 1, no burst.
    assert quotas(queue) == {
        "canopy-workers": {"cpu": ("12", None), "memory": ("90Gi", None), "nvidia.com/gpu": ("1", "0")}
    }
    assert queue["spec"]["preemption"] == {"reclaimWithinCohort": "Any"}
    assert queue["spec"]["stopPolicy"] == "None"
    assert "lendingLimit" not in str(queue)
    local = one(objects, "LocalQueue")
    assert (local["metadata"]["name"], local["metadata"]["namespace"]) == ("default", "dev1")
    assert local["spec"] == {"clusterQueue": "dev1"}
    assert by_kind(objects, "Cohort") == []  # no sub-tenants: a queue, not a cohort
    # The ResourceQuota engine's objects stay, the quota as the ceiling.
    assert one(objects, "ResourceQuota")["spec"]["hard"] == {"requests.nvidia.com/gpu": "1"}
    namespace = one(objects, "Namespace")["metadata"]
    assert namespace["labels"]["canopy.io/quota-engine"] == "kueue"
    assert namespace["annotations"]["canopy.io/node-pools"] == "node-role.kubernetes.io/worker="
    for role in by_kind(objects, "Role"):
        assert role["rules"][-1] == {
            "apiGroups": ["kueue.x-k8s.io"],
            "resources": ["localqueues", "workloads"],
            "verbs": ["get", "list", "watch"],
        }
    assert [o["kind"] for o in objects][-2:] == ["ClusterQueue", "LocalQueue"]


def test_a_burst_becomes_the_borrowing_limit_and_raises_the_ceiling_to_guaranteed_plus_burst():
    dev1 = dataclasses.replace(DEV1, pools=(PoolShare("workers", Quota(1, 4000, 8 * GI), Quota(1, 2000, 0)),))
    objects = kueue.tenant_objects(CLUSTER, dev1)
    assert quotas(one(objects, "ClusterQueue")) == {
        "canopy-workers": {"cpu": ("4", "2"), "memory": ("8Gi", "0"), "nvidia.com/gpu": ("1", "1")}
    }
    assert one(objects, "ResourceQuota")["spec"]["hard"] == {
        "requests.nvidia.com/gpu": "2",
        "requests.cpu": "6",
        "limits.cpu": "6",
        "requests.memory": "8Gi",
        "limits.memory": "8Gi",
    }


def test_a_three_level_tree_maps_to_cohorts_and_a_parent_caps_its_subtree():
    # department1: 3 GPUs (may burst to 4), dev1 holds 1 of them and dev2 2: its own queue gets 0.
    department = state(
        "department1",
        1,
        PoolShare("workers", Quota(0, 2000, 10 * GI), Quota(1, 0, 0)),
        has_subtenants=True,
    )
    team = state(
        "department1/dev1", 2, PoolShare("workers", Quota(1, 2000, 10 * GI), NO_BURST), has_subtenants=True
    )
    leaf = state("department1/dev1/bob-team", 3, PoolShare("workers", Quota(1, 1000, 5 * GI), NO_BURST))

    parent_objects = kueue.tenant_objects(CLUSTER, department)
    cohort = one(parent_objects, "Cohort")
    assert cohort["metadata"]["name"] == "department1"
    assert cohort["spec"]["parentName"] == ROOT_COHORT
    # Nothing of its own, and the whole subtree borrows at most its burst from outside it.
    assert quotas(cohort) == {
        "canopy-workers": {"cpu": ("0", "0"), "memory": ("0", "0"), "nvidia.com/gpu": ("0", "1")}
    }
    own_queue = one(parent_objects, "ClusterQueue")
    assert own_queue["spec"]["cohortName"] == "department1"  # its own work sits in its cohort
    assert quotas(own_queue)["canopy-workers"]["nvidia.com/gpu"] == ("0", "1")

    middle = kueue.tenant_objects(CLUSTER, team)
    assert one(middle, "Cohort")["spec"]["parentName"] == "department1"
    assert one(middle, "ClusterQueue")["spec"]["cohortName"] == "department1-dev1"
    assert quotas(one(middle, "Cohort"))["canopy-workers"]["nvidia.com/gpu"] == ("0", "0")

    bottom = kueue.tenant_objects(CLUSTER, leaf)
    assert by_kind(bottom, "Cohort") == []
    assert one(bottom, "ClusterQueue")["spec"]["cohortName"] == "department1-dev1"


def test_two_pools_are_two_flavors_of_one_resource_group_and_the_namespace_may_use_either():
    both = state(
        "dev3",
        13,
        PoolShare("workers", Quota(1, 1000, GI), NO_BURST),
        PoolShare("t4", Quota(2, 2000, 2 * GI), NO_BURST),
    )
    objects = kueue.tenant_objects(CLUSTER, both)
    queue = one(objects, "ClusterQueue")
    assert len(queue["spec"]["resourceGroups"]) == 1  # Kueue: a resource belongs to one group only
    assert list(quotas(queue)) == ["canopy-t4", "canopy-workers"]
    annotation = one(objects, "Namespace")["metadata"]["annotations"]["canopy.io/node-pools"]
    assert annotation == "canopy.test/pool=t4,gpu=t4;node-role.kubernetes.io/worker="
    assert one(objects, "ResourceQuota")["spec"]["hard"]["requests.nvidia.com/gpu"] == "3"


def test_unlimited_in_a_pool_without_a_recorded_capacity_is_beyond_any_node():
    cluster = dataclasses.replace(CLUSTER, pools=(Pool("default"),))
    tenant = state("dev4", 14, PoolShare("default", Quota(None, None, None), Quota(None, None, None)))
    objects = kueue.tenant_objects(cluster, tenant)
    assert quotas(one(objects, "ClusterQueue")) == {
        "canopy-default": {
            "cpu": ("1000000", None),
            "memory": ("1Pi", None),
            "nvidia.com/gpu": ("1000000", None),
        }
    }
    assert by_kind(objects, "ResourceQuota") == []  # unlimited: no ceiling, as with ResourceQuotas
    # A pool without a selector is every node.
    assert one(objects, "Namespace")["metadata"]["annotations"]["canopy.io/node-pools"] == "*"
    assert one(kueue.cluster_objects(cluster), "ResourceFlavor")["spec"] == {"nodeLabels": {}}


def test_a_suspended_tenant_holds_its_queue_and_admits_no_pod():
    objects = kueue.tenant_objects(CLUSTER, dataclasses.replace(DEV1, suspended=True))
    assert one(objects, "ClusterQueue")["spec"]["stopPolicy"] == "Hold"
    assert one(objects, "ResourceQuota")["spec"]["hard"]["pods"] == "0"


@pytest.mark.parametrize(
    "selector",
    ["gpu in (a100)", "gpu!=t4", "!gpu", "gpu", "gpu=t4,gpu=a100", ",".join(f"k{i}=v" for i in range(9))],
)
def test_a_pool_selector_kueue_cannot_take_is_refused_before_anything_is_rendered(selector):
    cluster = dataclasses.replace(CLUSTER, pools=(Pool("odd", selector),))
    with pytest.raises(RuleViolation) as refused:
        kueue.cluster_objects(cluster)
    assert "Pool odd's node selector" in str(refused.value)


def test_no_tenant_takes_the_root_cohorts_name():
    assert namespace_name(ROOT_COHORT) == f"canopy-{ROOT_COHORT}"
    clash = dataclasses.replace(DEV1, namespace=ROOT_COHORT)
    with pytest.raises(RuleViolation):
        kueue.tenant_objects(CLUSTER, clash)


def test_a_sub_tenant_whose_parent_has_no_namespace_yet_waits_rather_than_escape_its_cap():
    orphan = state(
        "department1/dev1", 2, PoolShare("workers", Quota(1, 0, 0), NO_BURST), parent_namespace=None
    )
    with pytest.raises(RuleViolation, match="parent has no namespace yet"):
        kueue.tenant_objects(CLUSTER, orphan)


def test_the_resourcequota_engine_renders_what_it_always_did():
    plain = ClusterSettings(name="gpu-cluster")
    tenant = dataclasses.replace(DEV1, quota=Quota(gpu=1))
    assert kueue.engine_tenant_objects(plain, tenant) == kubernetes.tenant_objects(plain, tenant)
    assert kueue.engine_cluster_objects(plain) == []
    assert kueue.tenant_kinds(plain) == kubernetes.KIND_ORDER


@pytest.mark.parametrize(
    "tenant",
    [
        DEV1,
        DEV2,
        dataclasses.replace(
            DEV1, suspended=True, pools=(PoolShare("t4", Quota(1, None, GI), Quota(1, None, GI)),)
        ),
        state("department1", 1, PoolShare("workers", Quota(0, 0, 0), Quota(1, 0, 0)), has_subtenants=True),
    ],
)
def test_every_rendered_object_passes_kueues_crd_schemas_and_kubernetes_1_37(tenant):
    objects = [*kueue.cluster_objects(CLUSTER), *kueue.tenant_objects(CLUSTER, tenant)]
    assert {o["apiVersion"] for o in objects} >= {"kueue.x-k8s.io/v1beta2", "admissionregistration.k8s.io/v1"}
    for obj in objects:
        validate(obj)


def test_the_schemas_are_strict():
    queue = one(kueue.tenant_objects(CLUSTER, DEV1), "ClusterQueue")
    queue["spec"]["cohort"] = ROOT_COHORT  # v1beta1's name: v1beta2 would drop it silently
    with pytest.raises(Exception, match="cohort"):
        validate(queue)


def test_export_writes_the_clusters_own_objects_apart_and_each_tenants_queues_in_its_folder(tmp_path):
    backend = ExportBackend(tmp_path)
    cluster_scope = Scope(kueue.CLUSTER_OWNER_ID, "", kueue.CLUSTER_KINDS)
    backend.sync(cluster_scope, kueue.cluster_objects(CLUSTER))
    backend.sync(Scope(11, "dev1", kueue.TENANT_KINDS), kueue.tenant_objects(CLUSTER, DEV1))
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.yaml"))
    assert f"{CLUSTER_FOLDER}/09-validatingadmissionpolicy-canopy-tenant-node-pools.yaml" in files
    assert f"{CLUSTER_FOLDER}/11-resourceflavor-canopy-workers.yaml" in files
    assert f"{CLUSTER_FOLDER}/12-cohort-{ROOT_COHORT}.yaml" in files
    assert "dev1/00-namespace-dev1.yaml" in files
    assert "dev1/13-clusterqueue-dev1.yaml" in files and "dev1/14-localqueue-default.yaml" in files
    assert {folder_of(o) for o in kueue.tenant_objects(CLUSTER, DEV1)} == {"dev1"}
    # Written again: nothing to do. A pool gone: its flavor's file goes.
    assert backend.plan(cluster_scope, kueue.cluster_objects(CLUSTER)).is_empty
    smaller = dataclasses.replace(CLUSTER, pools=(WORKERS,))
    plan = backend.plan(cluster_scope, kueue.cluster_objects(smaller))
    assert [(c.action, str(c.ref)) for c in plan.changes] == [("delete", "ResourceFlavor canopy-t4")]
