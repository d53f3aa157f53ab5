"""Issue 15, point 13: deleting a tenant asks its clusters how many pods still run in its namespaces
(the refusal names them), and that call never happens while the tenant's row is locked: an API
server that hangs must not hold up every other writer of the tenant. Against the real test cluster,
through the fault proxy."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from provisioning.models import ClusterSyncStatus
from tenants import services as tenant_services
from tenants.models import Membership, Tenant
from tests.provisioning.conftest import drain
from tests.tenants.builders import spec

pytestmark = pytest.mark.kubernetes
HANG_SECONDS = 4.0


def provisioned_tenant(admin, pool) -> Tenant:
    tenant = tenant_services.tenant_create(
        acting_user=admin, parent=None, name=f"del-{uuid.uuid4().hex[:6]}", allocations=[spec(pool, gpu=1)]
    )
    drain()
    assert ClusterSyncStatus.objects.get(sync__tenant_id=tenant.pk).provisioned
    return tenant


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_hanging_api_server_never_holds_the_tenants_row_lock(platform_admin, gpu_cluster, proxy):
    cluster, pool = gpu_cluster
    tenant = provisioned_tenant(platform_admin, pool)
    proxy.delay(HANG_SECONDS, times=1, method="GET", path=r"/namespaces/[^/]+/pods")
    outcome: dict[str, object] = {}

    def delete_unconfirmed() -> None:
        try:
            tenant_services.tenant_delete(acting_user=platform_admin, tenant=tenant)
        except ValidationError as refused:
            outcome["refused"] = refused
        finally:
            connection.close()

    deleting = threading.Thread(target=delete_unconfirmed)
    deleting.start()
    deadline = time.monotonic() + 10
    while proxy.faults[0].times:  # taken when the pods request reaches the proxy, which now holds it
        assert time.monotonic() < deadline, "the deletion never asked the cluster"
        time.sleep(0.02)

    # Another admin changes the same tenant while the cluster hangs: no wait for a lock.
    started = time.monotonic()
    tenant_services.membership_grant(
        acting_user=platform_admin, tenant=tenant, group="ml-team", role="member"
    )
    waited = time.monotonic() - started
    still_asking = deleting.is_alive()
    deleting.join(30)

    assert waited < 1.0, f"the other writer waited {waited:.1f} s for the row the deletion held"
    assert still_asking, "the cluster answered before the other writer was done: the test proves nothing"
    # The refusal lists what goes, read under the lock: the namespace, and the membership granted meanwhile.
    message = outcome["refused"].message_dict["confirm"][0]
    assert f"namespace {tenant.name} on {cluster.name}" in message and "1 membership(s)" in message
    assert Membership.objects.filter(tenant=tenant, group__name="ml-team").exists()


@pytest.mark.django_db
def test_a_confirmed_deletion_asks_no_cluster(platform_admin, gpu_cluster, proxy):
    """Running pods are counted only for the refusal; once confirmed nothing waits on the network."""
    cluster, pool = gpu_cluster
    tenant = provisioned_tenant(platform_admin, pool)
    proxy.clear()
    tenant_services.tenant_delete(acting_user=platform_admin, tenant=tenant, confirm=True)
    assert not Tenant.objects.filter(pk=tenant.pk).exists()
    assert [e.path for e in proxy.log] == []
