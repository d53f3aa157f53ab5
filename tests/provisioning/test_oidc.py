"""Kubernetes clusters that authenticate people with OIDC: the connection's OIDC settings, RoleBindings
that also name users and groups as the API server sees them (with its prefixes), the kubeconfig that
signs in through `kubectl oidc-login`, and, on the real test cluster, a group's role that works for
someone the API server puts in that group."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import connection as db
from kubernetes import client
from kubernetes.client import ApiException
from kubernetes.config import kube_config

from provisioning import selectors, services
from provisioning.desired.kubernetes import (
    ClusterSettings,
    OidcNames,
    Principal,
    Quota,
    Subject,
    TenantState,
    tenant_objects,
)
from provisioning.models import ClusterSyncStatus, KubernetesConnection, TenantSync
from tenants import services as tenant_services
from tenants.models import AuditEvent, Membership
from tests.provisioning.conftest import connect, drain
from tests.provisioning.test_kubernetes_arena import allowed, wait_for
from tests.tenants.builders import TokenClient, spec, user

ISSUER = "https://sso.example.com/realms/corp"
OIDC_CLUSTER = ClusterSettings(
    name="gpu-cluster", oidc=OidcNames(username_prefix="oidc:", groups_prefix="oidc:")
)


def team_state(**overrides) -> TenantState:
    values = dict(
        tenant_id=21,
        path="department1/dev1",
        level=2,
        namespace="department1-dev1",
        quota=Quota(gpu=1),
        subjects=(Subject("bob", "member"), Subject("carol", "admin", "department1")),
        principals=(
            Principal("User", "bob", "member"),
            Principal("Group", "ml-team", "member"),
            Principal("Group", "data-admins", "admin", "department1"),
            Principal("Group", "auditors", "viewer"),
        ),
    )
    return TenantState(**{**values, **overrides})


def bindings(objects) -> dict[str, list[dict]]:
    return {o["metadata"]["name"]: o["subjects"] for o in objects if o["kind"] == "RoleBinding"}


# --------------------------------------------------------------------------- pure desired state


def test_oidc_bindings_name_groups_and_users_with_the_clusters_prefixes_and_keep_service_accounts():
    found = bindings(tenant_objects(OIDC_CLUSTER, team_state()))
    rbac = "rbac.authorization.k8s.io"
    assert found["canopy-member"] == [
        {"kind": "ServiceAccount", "name": "bob", "namespace": "department1-dev1"},
        {"kind": "Group", "apiGroup": rbac, "name": "oidc:ml-team"},
        {"kind": "User", "apiGroup": rbac, "name": "oidc:bob"},
    ]
    assert found["canopy-admin"] == [
        {"kind": "ServiceAccount", "name": "carol", "namespace": "department1-dev1"},
        {"kind": "Group", "apiGroup": rbac, "name": "oidc:data-admins"},
    ]
    # A role held only by a group still gets its binding.
    assert found["canopy-viewer"] == [{"kind": "Group", "apiGroup": rbac, "name": "oidc:auditors"}]


def test_without_oidc_bindings_hold_only_service_accounts_and_prefixes_are_the_clusters():
    plain = bindings(tenant_objects(ClusterSettings(name="gpu-cluster"), team_state()))
    assert set(plain) == {"canopy-member", "canopy-admin"}
    assert {s["kind"] for subjects in plain.values() for s in subjects} == {"ServiceAccount"}
    other = ClusterSettings(name="c", oidc=OidcNames(username_prefix="", groups_prefix="corp/"))
    names = {s["name"] for s in bindings(tenant_objects(other, team_state()))["canopy-member"]}
    assert names == {"bob", "corp/ml-team"}


def test_every_oidc_object_is_valid_for_kubernetes_1_37():
    for obj in tenant_objects(OIDC_CLUSTER, team_state()):
        kubernetes_validate.validate(obj, "1.37", strict=True)


# --------------------------------------------------------------------------- selectors, connection


def oidc_connection(w, **extra) -> KubernetesConnection:
    values = dict(
        mode="token",
        server="https://10.0.0.91:6443",
        token="t",
        oidc_issuer_url=ISSUER,
        oidc_client_id="kubernetes",
    )
    return services.connection_set(
        acting_user=w.admin, cluster=w.cluster, spec=services.ConnectionSpec(**{**values, **extra})
    )


@pytest.mark.django_db
def test_a_group_admins_binding_reaches_every_namespace_of_the_subtree(k8s_world):
    w = k8s_world
    team = Group.objects.create(name="ml-team")
    tenant_services.membership_grant(acting_user=w.admin, tenant=w.department1, group=team, role="admin")
    tenant_services.membership_grant(acting_user=w.admin, tenant=w.dev1, group="auditors", role="viewer")
    tenant_services.membership_grant(
        acting_user=w.admin, tenant=w.department1, group="readers", role="viewer"
    )
    oidc_connection(w)
    sync = TenantSync.objects.get(tenant_id=w.dev1.pk)
    [target] = selectors.tenant_targets(tenant_id=w.dev1.pk, sync=sync)
    assert target.settings.oidc == OidcNames(username_prefix="", groups_prefix="oidc:")
    principals = set(target.state.principals)
    assert Principal("Group", "ml-team", "admin", "department1") in principals
    assert Principal("Group", "auditors", "viewer") in principals
    assert Principal("User", "bob", "member") in principals
    assert not any(p.name == "readers" for p in principals)  # an ancestor's viewer is not inherited
    found = bindings(tenant_objects(target.settings, target.state))
    assert {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "oidc:ml-team"} in found[
        "canopy-admin"
    ]
    assert {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "bob"} in found["canopy-member"]


@pytest.mark.django_db
def test_oidc_settings_through_the_api_with_the_secret_write_only_and_encrypted(k8s_world):
    w = k8s_world
    api = TokenClient().as_user(w.admin)
    response = api.post(
        "/api/v1/kubernetes-connections/",
        {
            "cluster": w.cluster.pk,
            "mode": "token",
            "server": "https://10.0.0.91:6443",
            "token": "t",
            "oidc_issuer_url": ISSUER,
            "oidc_client_id": "kubernetes",
            "oidc_client_secret": "very-secret-oidc",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert "oidc_client_secret" not in body and body["oidc_client_secret_set"] is True
    assert body["oidc_extra_scopes"] == "groups email" and body["oidc_groups_prefix"] == "oidc:"
    assert body["oidc_username_prefix"] == ""
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT oidc_client_secret FROM provisioning_kubernetesconnection WHERE cluster_id = %s",
            [w.cluster.pk],
        )
        [stored] = cursor.fetchone()
    assert stored.startswith("gAAAA") and "very-secret-oidc" not in stored
    assert "very-secret-oidc" not in str(AuditEvent.objects.get(action="CONNECTION_CREATED").after)
    # An update that leaves the secret out keeps it.
    response = api.patch(
        f"/api/v1/kubernetes-connections/{w.cluster.pk}/", {"oidc_username_prefix": "oidc:"}, format="json"
    )
    assert response.status_code == 200, response.content
    stored = KubernetesConnection.objects.get(cluster=w.cluster)
    assert stored.oidc_client_secret == "very-secret-oidc" and stored.oidc_username_prefix == "oidc:"
    with pytest.raises(ValidationError) as refused:
        oidc_connection(w, oidc_issuer_url="not a url", oidc_client_id="")
    assert set(refused.value.message_dict) == {"oidc_issuer_url", "oidc_client_id"}


# --------------------------------------------------------------------------- the kubeconfig


def mark_provisioned(w, tenant) -> None:
    ClusterSyncStatus.objects.update_or_create(
        sync=TenantSync.objects.get(tenant_id=tenant.pk),
        cluster=w.cluster,
        defaults={"state": ClusterSyncStatus.State.SYNCED, "provisioned": True},
    )


@pytest.mark.django_db
def test_the_kubeconfig_of_an_oidc_cluster_signs_in_with_kubectl_oidc_login(k8s_world, monkeypatch):
    w = k8s_world
    oidc_connection(
        w,
        oidc_client_secret="s3cret",
        oidc_extra_scopes="groups email",
        user_server="https://k8s.example.com:6443",
    )
    mark_provisioned(w, w.dev1)
    url = f"/api/v1/tenants/{w.dev1.pk}/kubeconfig/?cluster={w.cluster.pk}"
    response = TokenClient().as_user(w.bob).get(url)
    assert response.status_code == 200, response.content
    assert "X-Token-Expires-At" not in response and response["Cache-Control"] == "no-store"
    config = yaml.safe_load(response.content)
    assert config["clusters"] == [
        {"name": "gpu-cluster", "cluster": {"server": "https://k8s.example.com:6443"}}
    ]
    [entry] = config["users"]
    assert entry["user"] == {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "kubectl",
            "args": [
                "oidc-login",
                "get-token",
                f"--oidc-issuer-url={ISSUER}",
                "--oidc-client-id=kubernetes",
                "--oidc-client-secret=s3cret",
                "--oidc-extra-scope=groups",
                "--oidc-extra-scope=email",
            ],
            "interactiveMode": "IfAvailable",
        }
    }
    [context] = config["contexts"]
    assert config["current-context"] == context["name"]
    assert context["context"] == {
        "cluster": "gpu-cluster",
        "user": entry["name"],
        "namespace": "department1-dev1",
    }
    [event] = AuditEvent.objects.filter(action="KUBECONFIG_ISSUED")
    assert (event.actor_id, event.tenant_id) == (w.bob.pk, w.dev1.pk)
    assert event.after == {
        "cluster": "gpu-cluster",
        "address": "127.0.0.1",
        "namespace": "department1-dev1",
        "oidc_issuer_url": ISSUER,
        "oidc_user": "bob",
    }
    assert "s3cret" not in str(list(AuditEvent.objects.values()))

    # The official client loads it up to running the plugin (which it would run as written).
    ran = []

    def run(provider):
        ran.append(provider.args)
        return {"token": "from-kubelogin"}

    monkeypatch.setattr(kube_config.ExecProvider, "run", run)
    configuration = client.Configuration()
    kube_config.load_kube_config_from_dict(config, client_configuration=configuration)
    assert ran == [["kubectl", *entry["user"]["exec"]["args"]]]
    assert configuration.host == "https://k8s.example.com:6443"
    assert configuration.api_key["BearerToken"] == "Bearer from-kubelogin"

    # The console's link gives the same; the secret cleared, no --oidc-client-secret.
    oidc_connection(w, oidc_extra_scopes="groups", oidc_client_secret="")
    client_ = TokenClient()
    client_.force_login(w.bob)
    page = client_.get(f"/tenants/{w.dev1.pk}/kubeconfig/{w.cluster.pk}/")
    assert page.status_code == 200, page.content
    args = yaml.safe_load(page.content)["users"][0]["user"]["exec"]["args"]
    assert (
        not any(a.startswith("--oidc-client-secret") for a in args)
        and args[-1] == "--oidc-extra-scope=groups"
    )
    # Still nothing for someone not in the tenant.
    assert TokenClient().as_user(w.tom).get(url).status_code == 404
    assert TokenClient().as_user(user("stranger")).get(url).status_code == 404


# --------------------------------------------------------------------------- the real cluster


@pytest.mark.kubernetes
@pytest.mark.django_db
def test_a_groups_role_works_for_whoever_the_api_server_puts_in_the_group(
    platform_admin, gpu_cluster, kube_cluster, proxy, canopy_token
):
    cluster, pool = gpu_cluster
    mine = tenant_services.tenant_create(
        acting_user=platform_admin, parent=None, name="oidc-a", allocations=[spec(pool, gpu=1)]
    )
    other = tenant_services.tenant_create(
        acting_user=platform_admin, parent=None, name="oidc-b", allocations=[spec(pool, gpu=1)]
    )
    tenant_services.membership_grant(acting_user=platform_admin, tenant=mine, group="ml-team", role="member")
    tenant_services.membership_grant(
        acting_user=platform_admin, tenant=other, user=user("dave"), role=Membership.Role.MEMBER
    )
    connect(
        platform_admin,
        cluster,
        kube_cluster,
        proxy,
        canopy_token,
        oidc_issuer_url=ISSUER,
        oidc_client_id="kubernetes",
        oidc_username_prefix="oidc:",
    )
    drain()
    namespaces = dict(TenantSync.objects.values_list("tenant_id", "namespace"))
    assert ClusterSyncStatus.objects.get(sync__tenant_id=mine.pk, cluster=cluster).state == "synced"
    with kube_cluster.admin_client() as alice:  # the admin, impersonating alice of ml-team
        alice.set_default_header("Impersonate-User", "oidc:alice")
        alice.set_default_header("Impersonate-Group", "oidc:ml-team")
        core = client.CoreV1Api(alice)
        wait_for(lambda: allowed(lambda: core.list_namespaced_pod(namespaces[mine.pk])), "ml-team's binding")
        with pytest.raises(ApiException) as refused:
            core.list_namespaced_pod(namespaces[other.pk])
        assert refused.value.status == 403
    # The API server keeps the subjects as written: a reconcile finds no drift and writes nothing.
    proxy.clear()
    services.tenant_reconcile(tenant_id=mine.pk, check_drift=True)
    assert proxy.writes() == [], ClusterSyncStatus.objects.get(sync__tenant_id=mine.pk).drift_detail
