"""Every provisioning endpoint against every kind of caller: anonymous, no role, a role on another
tenant, a role here (viewer, member, admin), admin of an ancestor, platform admin. Refused calls
change nothing and queue nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from provisioning.models import ClusterSyncStatus, KubernetesConnection, ProvisioningIntent, TenantSync
from tests.tenants.builders import K8sWorld
from tests.tenants.test_api_permissions import PERSONAS, client_for, person, state_of_the_world

pytestmark = pytest.mark.django_db


def provisioning_state() -> tuple:
    return (
        state_of_the_world(),
        list(ProvisioningIntent.objects.order_by("pk").values_list("pk", "tenant_id", "state")),
        list(ClusterSyncStatus.objects.order_by("pk").values_list("pk", "state", "message")),
        list(TenantSync.objects.order_by("pk").values_list("pk", "namespace")),
        list(KubernetesConnection.objects.values_list("cluster_id", "mode", "server", "quota_engine")),
    )


@dataclass
class Call:
    method: str
    url: Callable[[K8sWorld], str]
    body: Callable[[K8sWorld], dict[str, Any]] | None
    expected: dict[str, int]


ADMINISTER = dict(
    outsider=404, dev2_admin=404, dev1_viewer=403, bob=403, dev1_admin=200, dept_admin=200, platform=200
)
PLATFORM = dict(
    outsider=403, dev2_admin=403, dev1_viewer=403, bob=403, dev1_admin=403, dept_admin=403, platform=200
)

CALLS: dict[str, Call] = {
    "read dev1's provisioning state": Call(
        "get",
        lambda w: f"/api/v1/tenants/{w.dev1.pk}/provisioning/",
        None,
        dict(
            outsider=404,
            dev2_admin=404,
            dev1_viewer=200,
            bob=200,
            dev1_admin=200,
            dept_admin=200,
            platform=200,
        ),
    ),
    "push dev1 now": Call(
        "post",
        lambda w: f"/api/v1/tenants/{w.dev1.pk}/provisioning/push/",
        None,
        {**ADMINISTER, "dev1_admin": 202, "dept_admin": 202, "platform": 202},
    ),
    "preview dev1": Call(
        "get", lambda w: f"/api/v1/tenants/{w.dev1.pk}/provisioning/preview/", None, ADMINISTER
    ),
    "preview a new allocation for dev1": Call(
        "post",
        lambda w: f"/api/v1/tenants/{w.dev1.pk}/provisioning/preview/",
        lambda w: {"pool": w.pool.pk, "gpu": 0},
        # Allocations are set from above: dev1's own admin may not, so may not preview one either.
        {**ADMINISTER, "dev1_admin": 403},
    ),
    "download a kubeconfig for dev1": Call(
        "get",
        lambda w: f"/api/v1/tenants/{w.dev1.pk}/kubeconfig/?cluster={w.cluster.pk}",
        None,
        # Allowed callers hear that the cluster is not connected (409); the rest never learn of dev1.
        dict(
            outsider=404,
            dev2_admin=404,
            dev1_viewer=403,
            bob=409,
            dev1_admin=409,
            dept_admin=409,
            platform=409,
        ),
    ),
    "export dev1's manifests": Call(
        "get", lambda w: f"/api/v1/provisioning/manifests/?tenant={w.dev1.pk}", None, ADMINISTER
    ),
    "export a Hadoop cluster's capacity-scheduler.xml": Call(
        "get",
        lambda w: f"/api/v1/provisioning/hadoop-export/?cluster={w.cluster.pk}&file=capacity-scheduler.xml",
        None,
        {**PLATFORM, "platform": 400},  # allowed, and told that gpu-cluster is not a Hadoop cluster
    ),
    "list Hadoop connections": Call("get", lambda w: "/api/v1/hadoop-connections/", None, PLATFORM),
    "list connections": Call("get", lambda w: "/api/v1/kubernetes-connections/", None, PLATFORM),
    "connect a cluster": Call(
        "post",
        lambda w: "/api/v1/kubernetes-connections/",
        lambda w: {"cluster": w.cluster.pk, "mode": "export"},
        {**PLATFORM, "platform": 201},
    ),
}


@pytest.mark.parametrize("who", PERSONAS)
@pytest.mark.parametrize("call_name", list(CALLS))
def test_permission_matrix(k8s_world, call_name, who, django_capture_on_commit_callbacks):
    call = CALLS[call_name]
    before = provisioning_state()
    client = client_for(k8s_world, who)
    kwargs: dict[str, Any] = {"format": "json"}
    if call.body is not None:
        kwargs["data"] = call.body(k8s_world)
    with django_capture_on_commit_callbacks() as queued:
        response = getattr(client, call.method)(call.url(k8s_world), **kwargs)
    if who == "anonymous":
        assert response.status_code in (401, 403), response.content
    else:
        assert response.status_code == call.expected[who], response.content
    if response.status_code >= 400:
        assert provisioning_state() == before, "a refused call changed something"
        assert queued == [], "a refused call queued a push"
        if response.status_code == 404:
            assert b"dev1" not in response.content


def test_the_console_link_for_a_kubeconfig_follows_the_same_rules(k8s_world):
    w = k8s_world
    url = f"/tenants/{w.dev1.pk}/kubeconfig/{w.cluster.pk}/"
    assert Client().get(url).status_code == 302  # to the sign-in page
    expected = {"outsider": 404, "dev2_admin": 404, "dev1_viewer": 403, "bob": 409, "dept_admin": 409}
    for who, status in expected.items():
        browser = Client()
        browser.force_login(person(w, who))
        response = browser.get(url)
        assert response.status_code == status, who
    assert "not connected" in response.content.decode()


def test_statuses_list_only_tenants_the_caller_can_see(k8s_world):
    w = k8s_world

    def paths(who: str) -> set[str]:
        rows = client_for(w, who).get("/api/v1/provisioning/statuses/").json()["results"]
        return {row["tenant_path"] for row in rows}

    assert paths("outsider") == set()
    assert paths("bob") == {"department1/dev1"}
    assert paths("dept_admin") == {"department1", "department1/dev1", "department1/dev2"}
    row = client_for(w, "bob").get(f"/api/v1/tenants/{w.dev1.pk}/provisioning/").json()[0]
    assert (
        row["state"] == "pending"
        and row["namespace"] == "department1-dev1"
        and row["cluster_name"] == "gpu-cluster"
    )


def test_connection_secrets_are_write_only(k8s_world):
    admin = client_for(k8s_world, "platform")
    created = admin.post(
        "/api/v1/kubernetes-connections/",
        {
            "cluster": k8s_world.cluster.pk,
            "mode": "token",
            "server": "https://10.0.0.91:6443",
            "token": "s3cret",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    assert "s3cret" not in created.content.decode() and created.json()["token_set"] is True
    url = f"/api/v1/kubernetes-connections/{k8s_world.cluster.pk}/"
    changed = admin.patch(url, {"network_policy": True}, format="json")
    assert changed.status_code == 200 and changed.json()["token_set"] is True  # the token was kept
    tested = admin.post(f"{url}test/")
    assert (
        tested.status_code == 200 and tested.json()["ok"] is False and "10.0.0.91" in tested.json()["message"]
    )
