"""The full reconcile and a tenant's push cost the same calls and queries for 3 tenants as for 12,
against the real API server (the figures at 1,000 are in docs/performance.md, bench/reconcile.py):
the full reconcile compares the whole cluster in one paged list per kind, and a tenant's push
reads only its own namespace."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from kubernetes import client

from provisioning import services
from provisioning.backends.kubernetes import RESOURCES
from provisioning.desired.kubernetes import KIND_ORDER
from provisioning.models import ClusterSyncStatus, TenantSync
from tenants import services as tenant_services
from tenants.models import Membership
from tests.provisioning.conftest import GI, drain
from tests.tenants.builders import spec, user

pytestmark = [pytest.mark.kubernetes, pytest.mark.django_db]


def collection(kind: str, namespace: str | None = None) -> str:
    api_version, plural, namespaced = RESOURCES[kind]
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{base}/namespaces/{namespace}/{plural}" if namespace and namespaced else f"{base}/{plural}"


CLUSTER_WIDE_LISTS = [("GET", collection(kind)) for kind in KIND_ORDER]


def add_tenants(admin, pool, start: int, count: int) -> list[Any]:
    # Names unique to the test's cluster: the namespaces an earlier test left may still be
    # terminating on the shared API server.
    prefix = f"s{pool.cluster.name.rsplit('-', 1)[-1]}-"
    tenants = []
    for n in range(start, start + count):
        tenant = tenant_services.tenant_create(
            acting_user=admin,
            parent=None,
            name=f"{prefix}{n}",
            allocations=[spec(pool, gpu=0, cpu_millicores=500, memory_bytes=2 * GI)],
        )
        tenant_services.membership_grant(
            acting_user=admin, tenant=tenant, user=user(f"{prefix}{n}-dev"), role=Membership.Role.MEMBER
        )
        tenants.append(tenant)
    drain()
    return tenants


def calls(proxy) -> list[tuple[str, str]]:
    return [(entry.method, entry.path.split("?")[0]) for entry in proxy.log]


def full_reconcile(proxy) -> tuple[list[int], list[tuple[str, str]], int]:
    proxy.clear()
    with CaptureQueriesContext(connection) as queries:
        pushed = services.reconcile_all()
    return pushed, calls(proxy), len(queries)


def push(proxy, tenant) -> tuple[list[tuple[str, str]], int]:
    proxy.clear()
    with CaptureQueriesContext(connection) as queries:
        services.tenant_reconcile(tenant_id=tenant.pk, check_drift=True)
    return calls(proxy), len(queries)


def test_a_full_reconcile_with_nothing_to_do_costs_the_same_for_3_and_12_tenants(
    platform_admin, gpu_cluster, proxy
):
    _, pool = gpu_cluster
    add_tenants(platform_admin, pool, 0, 3)
    pushed, few_calls, few_queries = full_reconcile(proxy)
    assert pushed == []
    assert few_calls == CLUSTER_WIDE_LISTS  # one list per kind for the whole cluster, no write

    add_tenants(platform_admin, pool, 3, 9)
    pushed, many_calls, many_queries = full_reconcile(proxy)
    assert pushed == []
    assert many_calls == CLUSTER_WIDE_LISTS
    assert many_queries == few_queries == 10


def test_a_push_reads_only_the_tenants_own_namespace_and_costs_the_same_for_3_and_12_tenants(
    platform_admin, gpu_cluster, proxy
):
    _, pool = gpu_cluster
    first = add_tenants(platform_admin, pool, 0, 3)[0]
    namespace = TenantSync.objects.get(tenant_id=first.pk).namespace
    few_calls, few_queries = push(proxy, first)
    assert few_calls == [
        ("GET", f"/api/v1/namespaces/{namespace}"),
        *(("GET", collection(kind, namespace)) for kind in KIND_ORDER if kind != "Namespace"),
    ]

    add_tenants(platform_admin, pool, 3, 9)
    many_calls, many_queries = push(proxy, first)
    assert many_calls == few_calls
    assert many_queries == few_queries


def test_the_first_push_of_a_tenant_reads_no_namespace_it_does_not_have_then_writes_its_objects(
    platform_admin, gpu_cluster, proxy
):
    _, pool = gpu_cluster
    add_tenants(platform_admin, pool, 0, 3)
    proxy.clear()
    [tenant] = add_tenants(platform_admin, pool, 3, 1)
    namespace = TenantSync.objects.get(tenant_id=tenant.pk).namespace
    # No namespace yet, so nothing in it to read: the namespace (that read also tells the plan no
    # namespace of that name exists, which it would refuse to take over) and the cluster-wide volumes.
    reads = [call for call in calls(proxy) if call[0] == "GET"]
    assert reads == [
        ("GET", f"/api/v1/namespaces/{namespace}"),
        ("GET", "/api/v1/persistentvolumes"),
    ]
    # Namespace, ServiceAccount, 3 Roles, RoleBinding, ResourceQuota, LimitRange: one apply each.
    assert [entry.method for entry in proxy.writes()] == ["PATCH"] * 8


def test_the_full_reconcile_pushes_only_the_tenant_that_drifted_and_repairs_it(
    platform_admin, gpu_cluster, proxy, kube_admin
):
    _, pool = gpu_cluster
    tenants = add_tenants(platform_admin, pool, 0, 4)
    drifted = tenants[2]
    namespace = TenantSync.objects.get(tenant_id=drifted.pk).namespace
    core = client.CoreV1Api(kube_admin)
    core.patch_namespaced_resource_quota(
        "canopy-quota", namespace, {"spec": {"hard": {"requests.cpu": "7", "limits.cpu": "7"}}}
    )

    pushed, made, _ = full_reconcile(proxy)

    assert pushed == [drifted.pk]
    assert [method for method, _ in made if method != "GET"] == ["PATCH"]
    quota = core.read_namespaced_resource_quota("canopy-quota", namespace)
    assert quota.spec.hard["requests.cpu"] == "500m"
    status = ClusterSyncStatus.objects.get(sync__tenant_id=drifted.pk)
    assert status.state == "synced" and status.drift_detected_at is not None
    assert "requests.cpu is '7', wanted '500m'" in status.drift_detail
    assert (
        not ClusterSyncStatus.objects.filter(drift_detected_at__isnull=False).exclude(pk=status.pk).exists()
    )
