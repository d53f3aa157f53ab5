"""A Kubernetes cluster's quota engine (issue 16): `resourcequota` or `kueue`, shown and changed in
the API and on the Pools page, audited and followed by a push of every tenant on the cluster like
any connection change; `kueue` is refused, naming the pool, while a pool's node selector is not a
key=value label list."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from provisioning import services
from provisioning.models import KubernetesConnection, ProvisioningIntent
from tenants import services as tenant_services
from tenants.models import AuditEvent, ResourcePool
from tests.tenants.test_api_permissions import client_for, person

KUEUE = KubernetesConnection.QuotaEngine.KUEUE


@pytest.fixture
def connected(k8s_world):
    """The Arena world on a connected cluster (export mode: nothing listens), with a second pool."""
    w = k8s_world
    services.connection_set(
        acting_user=w.admin, cluster=w.cluster, spec=services.ConnectionSpec(mode="export")
    )
    w.a100 = tenant_services.pool_create(
        acting_user=w.admin, cluster=w.cluster, name="a100", node_selector="gpu=a100", gpu_capacity=2
    )
    return w


def engine(cluster) -> str:
    return KubernetesConnection.objects.get(cluster=cluster).quota_engine


def pushes_queued(cluster_tenants) -> set[int]:
    return set(
        ProvisioningIntent.objects.filter(reason="CONNECTION_SET", tenant_id__in=cluster_tenants).values_list(
            "tenant_id", flat=True
        )
    )


def a_selector_saved_before_selectors_were_checked(pool: ResourcePool, selector: str) -> None:
    # Pools saved before selectors were validated may hold any text; today's services refuse it,
    # so the old row is made as it was then, behind the services' back.
    ResourcePool.objects.filter(pk=pool.pk).update(node_selector=selector)


def test_the_api_shows_and_changes_the_engine_with_an_audit_row_and_a_push(
    connected, django_capture_on_commit_callbacks
):
    w = connected
    admin = client_for(w, "platform")
    url = f"/api/v1/kubernetes-connections/{w.cluster.pk}/"
    assert admin.get(url).json()["quota_engine"] == "resourcequota"
    tenants = [w.department1.pk, w.dev1.pk, w.dev2.pk]
    ProvisioningIntent.objects.all().delete()
    with django_capture_on_commit_callbacks() as queued:
        changed = admin.patch(url, {"quota_engine": "kueue"}, format="json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["quota_engine"] == "kueue" and engine(w.cluster) == KUEUE
    event = AuditEvent.objects.filter(action="CONNECTION_UPDATED").latest("pk")
    assert (event.before["quota_engine"], event.after["quota_engine"]) == ("resourcequota", "kueue")
    assert pushes_queued(tenants) == set(tenants) and queued, "every tenant on the cluster is pushed again"
    # Another change keeps the engine.
    assert admin.patch(url, {"network_policy": True}, format="json").json()["quota_engine"] == "kueue"


def test_an_unknown_engine_is_a_400_naming_the_field(connected):
    w = connected
    answer = client_for(w, "platform").patch(
        f"/api/v1/kubernetes-connections/{w.cluster.pk}/", {"quota_engine": "yunikorn"}, format="json"
    )
    assert answer.status_code == 400 and list(answer.json()) == ["quota_engine"]
    assert engine(w.cluster) == "resourcequota"


@pytest.mark.parametrize("selector", ["gpu in (a100,h100)", "gpu", "gpu!=t4", "gpu=a100, zone=eu"])
def test_kueue_is_refused_while_a_pool_has_a_selector_that_is_no_label_list(
    connected, selector, django_capture_on_commit_callbacks
):
    w = connected
    a_selector_saved_before_selectors_were_checked(w.a100, selector)
    events = AuditEvent.objects.count()
    with django_capture_on_commit_callbacks() as queued:
        answer = client_for(w, "platform").patch(
            f"/api/v1/kubernetes-connections/{w.cluster.pk}/", {"quota_engine": "kueue"}, format="json"
        )
    assert answer.status_code == 400, answer.content
    assert list(answer.json()) == ["quota_engine"]
    message = answer.json()["quota_engine"][0]
    assert message.startswith(f"Kueue pins pool a100's jobs to its nodes with its node selector {selector!r}")
    assert "which is not a key=value label list" in message
    assert engine(w.cluster) == "resourcequota"
    assert AuditEvent.objects.count() == events and queued == []


def test_a_cluster_with_label_selectors_and_the_default_pool_may_use_kueue(connected):
    w = connected
    tenant_services.pool_update(
        acting_user=w.admin, pool=w.a100, node_selector="gpu=a100,node-role.kubernetes.io/worker="
    )
    connection = services.connection_quota_engine_set(
        acting_user=w.admin, cluster=w.cluster, quota_engine=KUEUE
    )
    assert connection.quota_engine == KUEUE


def test_the_openapi_document_describes_the_engine(anonymous_api, db):
    schema = json.loads(anonymous_api.get("/api/schema/", {"format": "json"}).content)
    components = schema["components"]["schemas"]
    for name in ("Connection", "ConnectionRequest", "PatchedConnectionRequest"):
        field = components[name]["properties"]["quota_engine"]
        assert "resourcequota: one namespace ResourceQuota per tenant" in field["description"]
        assert "node selector must then be key=value labels" in field["description"]
        assert field["allOf"] == [{"$ref": "#/components/schemas/QuotaEngineEnum"}]
    assert components["QuotaEngineEnum"]["enum"] == ["resourcequota", "kueue"]


# ---------------------------------------------------------------------------------------------
# The Pools page


def browser(world, who: str) -> Client:
    client = Client()
    client.force_login(person(world, who))
    return client


def test_platform_admins_switch_the_engine_on_the_pools_page(connected, django_capture_on_commit_callbacks):
    w = connected
    client = browser(w, "platform")
    page = client.get("/pools/").content.decode()
    field = f"engine-{w.cluster.pk}-quota_engine"
    assert f'name="{field}"' in page and '<option value="resourcequota" selected>' in page
    ProvisioningIntent.objects.all().delete()
    with django_capture_on_commit_callbacks():
        saved = client.post(f"/clusters/{w.cluster.pk}/quota-engine/", {field: "kueue"}, follow=True)
    assert "gpu-cluster enforces allocations with Kueue" in saved.content.decode()
    assert engine(w.cluster) == KUEUE
    assert (
        AuditEvent.objects.filter(action="CONNECTION_UPDATED").latest("pk").after["quota_engine"] == "kueue"
    )
    assert pushes_queued([w.dev1.pk]) == {w.dev1.pk}
    assert '<option value="kueue" selected>' in client.get("/pools/").content.decode()


def test_a_refused_switch_shows_the_error_on_the_field_and_keeps_the_choice(connected):
    w = connected
    a_selector_saved_before_selectors_were_checked(w.a100, "gpu in (a100)")
    field = f"engine-{w.cluster.pk}-quota_engine"
    events = AuditEvent.objects.count()
    refused = browser(w, "platform").post(f"/clusters/{w.cluster.pk}/quota-engine/", {field: "kueue"})
    html = refused.content.decode()
    assert refused.status_code == 200
    assert "Kueue pins pool a100&#x27;s jobs to its nodes" in html
    assert '<option value="kueue" selected>' in html  # what was chosen stays chosen
    assert engine(w.cluster) == "resourcequota" and AuditEvent.objects.count() == events


@pytest.mark.parametrize("who", ["outsider", "dept_admin", "dev1_admin", "bob"])
def test_only_platform_admins_switch_the_engine(connected, who):
    w = connected
    field = f"engine-{w.cluster.pk}-quota_engine"
    answer = browser(w, who).post(f"/clusters/{w.cluster.pk}/quota-engine/", {field: "kueue"})
    assert answer.status_code == 403
    assert engine(w.cluster) == "resourcequota"
    assert f'name="{field}"' not in browser(w, who).get("/pools/").content.decode()


def test_a_cluster_without_a_connection_has_no_engine_to_switch(k8s_world):
    w = k8s_world
    field = f"engine-{w.cluster.pk}-quota_engine"
    client = browser(w, "platform")
    assert f'name="{field}"' not in client.get("/pools/").content.decode()
    html = client.post(f"/clusters/{w.cluster.pk}/quota-engine/", {field: "kueue"}).content.decode()
    assert "Cluster gpu-cluster has no connection; add one first" in html
    assert not KubernetesConnection.objects.filter(cluster=w.cluster).exists()
