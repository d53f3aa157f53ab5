"""What pushes cost on a Kueue cluster, counted at the fault proxy in front of the real Kueue test
cluster (issue 16's benchmark: docs/performance.md, bench/reconcile.py --engine kueue).

- The cluster's own objects (flavors, root cohort, admission policy and binding) are pushed as their
  own owner (id 0) once, not by every tenant's push: a tenant's push finds them applied from the same
  rendering in their status, without a call.
- A tenant's push reads only its own objects: its namespace, its queue and cohort by name, and (once
  the namespace exists) the kinds inside it. A first push makes 4 reads (it made 10 when every push
  listed the cluster's own kinds and listed queues and cohorts by label).
- A pool added, removed or renamed reaches the flavors through the full reconcile (or the next push
  that needs them), and a failed write of the cluster's own objects fails the tenant's push before
  anything of the tenant's is sent, is shown, and is retried.
- Read by name, a queue or cohort that is not Canopy's is still refused, never taken over nor
  deleted; a cohort a tenant no longer needs is still deleted.
"""

from __future__ import annotations

import contextlib

import pytest
from kubernetes.client import ApiException

from provisioning import services
from provisioning.backends.kubernetes import RESOURCES
from provisioning.desired.kubernetes import KIND_ORDER
from provisioning.desired.kueue import CLUSTER_KINDS, CLUSTER_OWNER_ID, TENANT_KINDS
from provisioning.models import ClusterSyncStatus, ProvisioningIntent, TenantSync
from tenants import services as tenant_services
from tenants.models import Allocation, Membership, ResourcePool
from tests.clusters.kueue import KUEUE_API_VERSION, KUEUE_GROUP
from tests.provisioning.conftest import GI, drain
from tests.provisioning.test_kueue_arena import custom, kueue_get
from tests.tenants.builders import spec, user

pytestmark = [pytest.mark.kueue, pytest.mark.django_db]


def collection(kind: str, namespace: str | None = None) -> str:
    api_version, plural, namespaced = RESOURCES[kind]
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{base}/namespaces/{namespace}/{plural}" if namespace and namespaced else f"{base}/{plural}"


def calls(proxy) -> list[tuple[str, str]]:
    """The calls answered, without those the server asked to repeat (429: a freshly started API
    server answers so while its storage of Kueue's kinds initializes; the client repeats the call)."""
    return [(entry.method, entry.path.split("?")[0]) for entry in proxy.log if entry.status != 429]


OWN_LISTS = [("GET", collection(kind)) for kind in CLUSTER_KINDS]


def own_lists(proxy) -> list[tuple[str, str]]:
    """The list calls of the cluster's own kinds (by label), in the order made."""
    return [call for call in calls(proxy) if call in OWN_LISTS]


def lab(admin, pool, name: str, **amounts):
    # Names unique to the test's cluster: an earlier test's namespaces may still be terminating on
    # the session's API server.
    prefix = pool.cluster.name.rsplit("-", 1)[-1]
    return tenant_services.tenant_create(
        acting_user=admin,
        parent=None,
        name=f"q{prefix}-{name}",
        allocations=[spec(pool, **(amounts or {"gpu": 0, "cpu_millicores": 1000, "memory_bytes": 2 * GI}))],
    )


def own_status() -> ClusterSyncStatus:
    return ClusterSyncStatus.objects.get(sync__tenant_id=CLUSTER_OWNER_ID)


def flavor_exists(admin_api, name: str) -> bool:
    try:
        return not kueue_get(admin_api, "resourceflavors", name)["metadata"].get("deletionTimestamp")
    except ApiException as error:
        if error.status == 404:
            return False
        raise


def test_the_clusters_own_objects_are_pushed_once_for_many_tenants_not_in_every_push(
    platform_admin, kueue_gpu_cluster, kueue_proxy
):
    _, workers, _ = kueue_gpu_cluster
    tenants = [lab(platform_admin, workers, f"t{n}") for n in range(3)]
    kueue_proxy.clear()
    drain()  # the connection's push of the cluster's own objects (owner 0) first, then the tenants

    assert own_lists(kueue_proxy) == OWN_LISTS  # once for the cluster, not once per tenant
    status = own_status()
    assert status.state == "synced" and status.last_result["quota_engine"] == "kueue"
    assert TenantSync.objects.get(tenant_id=CLUSTER_OWNER_ID).namespace == ""
    assert {
        s.state for s in ClusterSyncStatus.objects.filter(sync__tenant_id__in=[t.pk for t in tenants])
    } == {"synced"}

    # Another tenant later: its push reads no object of the cluster's own.
    kueue_proxy.clear()
    lab(platform_admin, workers, "t3")
    drain()
    assert own_lists(kueue_proxy) == []
    assert not [
        path for _, path in calls(kueue_proxy) if "/resourceflavors" in path or "/validatingadmission" in path
    ]

    # The full reconcile with nothing to do: one list per kind for the whole cluster, the cluster's own
    # among them, nobody pushed, nothing written.
    kueue_proxy.clear()
    assert services.reconcile_all() == []
    kinds = dict.fromkeys((*TENANT_KINDS, *CLUSTER_KINDS))
    assert calls(kueue_proxy) == [("GET", collection(kind)) for kind in kinds]


def test_a_tenants_push_reads_its_namespace_its_queue_and_cohort_by_name_and_the_kinds_inside(
    platform_admin, kueue_gpu_cluster, kueue_proxy
):
    _, workers, _ = kueue_gpu_cluster
    lab(platform_admin, workers, "first")
    drain()
    tenant = lab(platform_admin, workers, "second")
    tenant_services.membership_grant(
        acting_user=platform_admin, tenant=tenant, user=user("kueue-dev"), role=Membership.Role.MEMBER
    )
    namespace = TenantSync.objects.get(tenant_id=tenant.pk).namespace
    cohort = ("GET", f"{collection('Cohort')}/{namespace}")
    queue = ("GET", f"{collection('ClusterQueue')}/{namespace}")

    # The first push: no namespace yet, so nothing in it to read. The namespace, volumes, cohort and
    # queue (each read also tells the plan that no such object of someone else's is in the way).
    kueue_proxy.clear()
    services.tenant_reconcile(tenant_id=tenant.pk)
    reads = [call for call in calls(kueue_proxy) if call[0] == "GET"]
    assert reads == [
        ("GET", f"/api/v1/namespaces/{namespace}"),
        ("GET", collection("PersistentVolume")),
        cohort,
        queue,
    ]
    # Namespace, ServiceAccount, 3 Roles, RoleBinding, ResourceQuota, LimitRange, ClusterQueue,
    # LocalQueue: one apply each (no Cohort: it has no sub-tenant).
    assert [entry.method for entry in kueue_proxy.writes()] == ["PATCH"] * 10
    assert ClusterSyncStatus.objects.get(sync__tenant_id=tenant.pk).state == "synced"

    # Nothing to do: the namespace, each namespaced kind inside it, volumes by label, cohort and queue
    # by name; no write.
    kueue_proxy.clear()
    services.tenant_reconcile(tenant_id=tenant.pk, check_drift=True)
    inside = [("GET", collection(kind, namespace)) for kind in KIND_ORDER if kind != "Namespace"]
    assert calls(kueue_proxy) == [
        ("GET", f"/api/v1/namespaces/{namespace}"),
        *inside,
        cohort,
        queue,
        ("GET", collection("LocalQueue", namespace)),
    ]


def test_a_pool_added_removed_or_renamed_reaches_the_flavors_and_queues(
    platform_admin, kueue_gpu_cluster, kueue_admin, kueue_proxy
):
    cluster, workers, _ = kueue_gpu_cluster
    tenant = lab(platform_admin, workers, "pools")
    drain()
    namespace = TenantSync.objects.get(tenant_id=tenant.pk).namespace

    # Added (a pool records no push): the full reconcile finds the cluster's own objects behind what
    # is wanted and pushes them alone. A change of Canopy's, not drift.
    a100 = tenant_services.pool_create(
        acting_user=platform_admin, cluster=cluster, name="a100", node_selector="gpu=a100", gpu_capacity=2
    )
    assert services.reconcile_all() == [CLUSTER_OWNER_ID]
    assert kueue_get(kueue_admin, "resourceflavors", "canopy-a100")["spec"]["nodeLabels"] == {"gpu": "a100"}
    assert own_status().state == "synced" and own_status().drift_detected_at is None

    # The tenant gets an allocation there: its push finds the flavor applied and reads none of it.
    kueue_proxy.clear()
    tenant_services.allocation_set(acting_user=platform_admin, tenant=tenant, spec=spec(a100, gpu=1))
    drain()
    assert own_lists(kueue_proxy) == []
    flavors = kueue_get(kueue_admin, "clusterqueues", namespace)["spec"]["resourceGroups"][0]["flavors"]
    assert [f["name"] for f in flavors] == ["canopy-a100", "canopy-workers"]

    # Removed: once no tenant holds it, the next full reconcile deletes its flavor.
    tenant_services.allocation_delete(
        acting_user=platform_admin, allocation=Allocation.objects.get(tenant=tenant, pool=a100)
    )
    drain()
    tenant_services.pool_delete(acting_user=platform_admin, pool=a100)
    assert services.reconcile_all() == [CLUSTER_OWNER_ID]
    assert not flavor_exists(kueue_admin, "canopy-a100")

    # Renamed (the services keep a pool's name; a row renamed some other way): the new flavor is made
    # and the old one deleted, and the tenant's queue moves to it.
    ResourcePool.objects.filter(pk=workers.pk).update(name="gpus")
    assert services.reconcile_all() == [CLUSTER_OWNER_ID, tenant.pk]
    assert kueue_get(kueue_admin, "resourceflavors", "canopy-gpus")["spec"]["nodeLabels"] == {
        "node-role.kubernetes.io/worker": ""
    }
    flavors = kueue_get(kueue_admin, "clusterqueues", namespace)["spec"]["resourceGroups"][0]["flavors"]
    assert [f["name"] for f in flavors] == ["canopy-gpus"]
    assert not flavor_exists(kueue_admin, "canopy-workers")
    assert services.reconcile_all() == []


def test_a_failed_write_of_the_clusters_own_objects_fails_the_push_is_shown_and_retried(
    platform_admin, kueue_gpu_cluster, kueue_proxy
):
    cluster, workers, _ = kueue_gpu_cluster
    tenant = lab(platform_admin, workers, "fails")
    drain()
    a100 = tenant_services.pool_create(
        acting_user=platform_admin, cluster=cluster, name="a100", node_selector="gpu=a100", gpu_capacity=2
    )
    tenant_services.allocation_set(acting_user=platform_admin, tenant=tenant, spec=spec(a100, gpu=1))

    # The new flavor's write fails, retries included: the tenant's push stops before its own objects.
    kueue_proxy.clear()
    kueue_proxy.fail(500, times=4, method="PATCH", path="/resourceflavors/canopy-a100")
    with pytest.raises(services.RetryLater):
        services.tenant_reconcile(tenant_id=tenant.pk)
    flavor = f"{collection('ResourceFlavor')}/canopy-a100"
    assert [e.path.split("?")[0] for e in kueue_proxy.injected()] == [flavor] * 4
    assert kueue_proxy.writes() == []  # nothing reached the server: no queue names a missing flavor
    status = ClusterSyncStatus.objects.get(sync__tenant_id=tenant.pk)
    assert status.state == "failed"
    assert status.message.startswith("The cluster's own objects: ResourceFlavor canopy-a100: HTTP 500")
    assert own_status().state == "failed" and "HTTP 500" in own_status().message
    assert ProvisioningIntent.objects.get(tenant_id=tenant.pk, state__in=services.OPEN).attempts == 1

    # The full reconcile pushes the cluster's own objects again (their status is not synced), and
    # the tenant's retry then completes.
    assert CLUSTER_OWNER_ID in services.reconcile_all()
    assert own_status().state == "synced"
    drain()
    status = ClusterSyncStatus.objects.get(sync__tenant_id=tenant.pk)
    assert status.state == "synced"
    assert not ProvisioningIntent.objects.filter(state__in=services.OPEN).exists()


def test_a_queue_read_by_name_that_is_not_canopys_is_refused_never_taken_over_nor_deleted(
    platform_admin, kueue_gpu_cluster, kueue_admin, kueue_proxy
):
    cluster, workers, _ = kueue_gpu_cluster
    prefix = cluster.name.rsplit("-", 1)[-1]
    namespace = f"q{prefix}-taken"
    api = custom(kueue_admin)
    # Someone else's ClusterQueue and Cohort, named as the tenant's namespace will be.
    for plural, kind, spec_ in (
        ("clusterqueues", "ClusterQueue", {"namespaceSelector": {}}),
        ("cohorts", "Cohort", {}),
    ):
        api.create_cluster_custom_object(
            KUEUE_GROUP,
            KUEUE_API_VERSION,
            plural,
            {
                "apiVersion": f"{KUEUE_GROUP}/{KUEUE_API_VERSION}",
                "kind": kind,
                "metadata": {"name": namespace},
                "spec": spec_,
            },
        )
    try:
        drain()  # the cluster's own objects as wanted: the push below is the tenant's alone
        tenant = lab(platform_admin, workers, "taken")
        kueue_proxy.clear()
        services.tenant_reconcile(tenant_id=tenant.pk)
        status = ClusterSyncStatus.objects.get(sync__tenant_id=tenant.pk)
        assert status.state == "failed"
        assert status.message == (
            f"ClusterQueue {namespace} already exists on the cluster and belongs to someone outside "
            "Canopy; Canopy does not take it over. Delete it there."
        )
        assert kueue_proxy.writes() == []  # refused while planning: nothing of the tenant's sent

        # The queue deleted there: the push completes. The Cohort of that name (a leaf has none of
        # its own) was read, is not Canopy's, and stays.
        api.delete_cluster_custom_object(KUEUE_GROUP, KUEUE_API_VERSION, "clusterqueues", namespace)
        drain()
        assert ClusterSyncStatus.objects.get(sync__tenant_id=tenant.pk).state == "synced"
        assert kueue_get(kueue_admin, "clusterqueues", namespace)["metadata"]["labels"][
            "canopy.io/tenant-id"
        ] == str(tenant.pk)
        assert "labels" not in kueue_get(kueue_admin, "cohorts", namespace)["metadata"]
    finally:
        with contextlib.suppress(ApiException):
            api.delete_cluster_custom_object(KUEUE_GROUP, KUEUE_API_VERSION, "cohorts", namespace)


def test_a_tenant_whose_last_sub_tenant_leaves_the_cluster_loses_its_cohort(
    platform_admin, kueue_gpu_cluster, kueue_admin
):
    _, workers, _ = kueue_gpu_cluster
    parent = lab(platform_admin, workers, "parent", gpu=1, cpu_millicores=2000, memory_bytes=4 * GI)
    child = tenant_services.tenant_create(
        acting_user=platform_admin,
        parent=parent,
        name="child",
        allocations=[spec(workers, gpu=1, cpu_millicores=1000, memory_bytes=2 * GI)],
    )
    drain()
    namespace = TenantSync.objects.get(tenant_id=parent.pk).namespace
    assert kueue_get(kueue_admin, "cohorts", namespace)["spec"]["parentName"] == "canopy-root"
    tenant_services.allocation_delete(
        acting_user=platform_admin, allocation=Allocation.objects.get(tenant=child, pool=workers)
    )
    drain()
    with pytest.raises(ApiException) as gone:
        kueue_get(kueue_admin, "cohorts", namespace)
    assert gone.value.status == 404
    assert kueue_get(kueue_admin, "clusterqueues", namespace)["spec"]["cohortName"] == "canopy-root"
