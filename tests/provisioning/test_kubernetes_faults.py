"""Faults between Canopy and the API server (HTTP 500, 409, 429, slow answers, dropped
connections) end in retries and a synced cluster with every change on it."""

from __future__ import annotations

import uuid

import pytest
from django.test import override_settings

from provisioning import services
from provisioning.backends.base import Scope
from provisioning.desired.kubernetes import tenant_objects
from provisioning.models import ClusterSyncStatus, ProvisioningIntent, TenantSync
from provisioning.selectors import tenant_targets
from tenants import services as tenant_services
from tenants.models import Membership
from tests.provisioning.conftest import GI, drain
from tests.tenants.builders import spec, user

pytestmark = [pytest.mark.kubernetes, pytest.mark.django_db]


def in_sync(tenant) -> bool:
    """The cluster holds exactly what the database says (a plan with nothing to do)."""
    sync = TenantSync.objects.get(tenant_id=tenant.pk)
    [target] = tenant_targets(tenant_id=tenant.pk, sync=sync)
    backend = services.backend_for(target.cluster, target.connection)
    with backend:
        plan = backend.plan(Scope(tenant.pk, sync.namespace), tenant_objects(target.settings, target.state))
    return plan.is_empty


def test_changes_survive_every_kind_of_fault(
    platform_admin, gpu_cluster, proxy, django_capture_on_commit_callbacks
):
    cluster, pool = gpu_cluster
    name = f"team-{uuid.uuid4().hex[:6]}"
    # The first writes meet a run of faults, more than one request's own retries can absorb: the
    # push fails, its intent waits with a backoff, and a later push finishes the job.
    proxy.fail(500, times=5, method="PATCH")
    proxy.fail(409, times=1, method="PATCH")
    proxy.fail(429, times=1, method="PATCH", retry_after=1)
    proxy.drop(times=2, method="PATCH")
    proxy.delay(1.0, times=1, method="GET")
    proxy.drop(times=1, method="GET")
    with django_capture_on_commit_callbacks(execute=True):
        tenant = tenant_services.tenant_create(
            acting_user=platform_admin, parent=None, name=name, allocations=[spec(pool, gpu=1)]
        )
    with django_capture_on_commit_callbacks(execute=True):
        tenant_services.allocation_set(
            acting_user=platform_admin,
            tenant=tenant,
            spec=spec(pool, gpu=2, cpu_millicores=4000, memory_bytes=16 * GI),
        )
    proxy.fail(503, times=4, method="PATCH", path="/rolebindings/")
    with django_capture_on_commit_callbacks(execute=True):
        tenant_services.membership_grant(
            acting_user=platform_admin, tenant=tenant, user=user(f"ann-{name}"), role=Membership.Role.ADMIN
        )

    # In-process tasks do not wait to retry; what they left failed, beat sends again (as here).
    retried = ProvisioningIntent.objects.filter(attempts__gt=0).count()
    drain()

    assert retried > 0, "some pushes failed first and were retried"
    injected = {entry.fault for entry in proxy.injected()}
    assert {"status 500", "status 409", "status 429", "status 503", "drop", "delay 1.0s"} <= injected
    assert all(fault.times == 0 for fault in proxy.faults), "every fault was met"
    status = ClusterSyncStatus.objects.get(sync__tenant_id=tenant.pk)
    assert status.state == "synced", status.message
    assert not ProvisioningIntent.objects.filter(state__in=services.OPEN).exists()
    assert in_sync(tenant)


@override_settings(CANOPY_KUBERNETES_HTTP_RETRIES=0)
def test_a_failed_push_shows_the_api_servers_message_and_is_retried_later(platform_admin, gpu_cluster, proxy):
    cluster, pool = gpu_cluster
    proxy.fail(500, times=1, method="PATCH")
    tenant = tenant_services.tenant_create(
        acting_user=platform_admin,
        parent=None,
        name=f"team-{uuid.uuid4().hex[:6]}",
        allocations=[spec(pool, gpu=1)],
    )
    with pytest.raises(services.RetryLater):
        services.tenant_reconcile(tenant_id=tenant.pk)
    status = ClusterSyncStatus.objects.get(sync__tenant_id=tenant.pk)
    assert status.state == "failed"
    assert status.message.startswith(
        f"Namespace {status.sync.namespace}: HTTP 500 from the API server: injected fault"
    )
    [intent] = ProvisioningIntent.objects.filter(tenant_id=tenant.pk)
    assert intent.state == "failed" and intent.attempts == 1 and intent.last_error
    # Beat sends it again once its backoff has passed; then it goes through.
    ProvisioningIntent.objects.filter(pk=intent.pk).update(next_attempt_at=intent.created_at)
    assert services.intents_redrive() == [tenant.pk]
    intent.refresh_from_db()
    status.refresh_from_db()
    assert intent.state == "done" and status.state == "synced"


def test_every_connection_mode_reports_the_server_version(platform_admin, gpu_cluster, kube_cluster):
    import base64

    import yaml

    cluster, _ = gpu_cluster
    check = services.connection_test(acting_user=platform_admin, cluster=cluster)  # token, through the proxy
    assert check.ok, check.message
    if kube_cluster.expected_version:
        assert check.version == kube_cluster.expected_version
    admin_user = kube_cluster.kubeconfig["users"][0]["user"]
    ca = kube_cluster.ca_data.decode()
    for spec_ in (
        services.ConnectionSpec(mode="kubeconfig", kubeconfig=yaml.safe_dump(kube_cluster.kubeconfig)),
        services.ConnectionSpec(
            mode="certificate",
            server=kube_cluster.server,
            ca_data=ca,
            client_certificate=base64.b64decode(admin_user["client-certificate-data"]).decode(),
            client_key=base64.b64decode(admin_user["client-key-data"]).decode(),
        ),
    ):
        services.connection_set(acting_user=platform_admin, cluster=cluster, spec=spec_)
        check = services.connection_test(acting_user=platform_admin, cluster=cluster)
        assert check.ok and check.version.startswith("v1."), (spec_.mode, check.message)
    # A token the API server does not accept is reported with its answer.
    wrong = services.ConnectionSpec(mode="token", server=kube_cluster.server, ca_data=ca, token="not-a-token")
    services.connection_set(acting_user=platform_admin, cluster=cluster, spec=wrong)
    check = services.connection_test(acting_user=platform_admin, cluster=cluster)
    assert not check.ok and "HTTP 401" in check.message
