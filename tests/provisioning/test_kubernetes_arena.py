"""The Arena document, done by Canopy against the real test cluster: the objects kubectl made by
hand appear exactly, and behave as the document says (Tom acts in dev2 and is refused in dev1,
Bob's second one-GPU job is refused by the quota), plus what the document lacked (a pod naming no
resources is admitted thanks to the LimitRange). Then: a reconcile with nothing to do writes
nothing, a quota edited by hand is found and repaired, and deleting a tenant reports its running
pods and takes its namespace only after confirmation."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from django.core.exceptions import ValidationError
from kubernetes import client
from kubernetes.client import ApiException

from provisioning import services
from provisioning.models import ClusterSyncStatus
from tenants import services as tenant_services
from tenants.models import AuditEvent, Membership, Volume
from tests.clusters.kube import client_from_kubeconfig
from tests.provisioning.conftest import GI, drain, wait_for_namespace_ready
from tests.tenants.builders import TokenClient, nfs_share, spec, user

pytestmark = [pytest.mark.kubernetes, pytest.mark.django_db]

KINDS = {
    "Namespace": ("", "namespaces"),
    "ServiceAccount": ("", "serviceaccounts"),
    "Role": ("rbac", "roles"),
    "RoleBinding": ("rbac", "rolebindings"),
    "ResourceQuota": ("", "resourcequotas"),
    "LimitRange": ("", "limitranges"),
    "NetworkPolicy": ("net", "networkpolicies"),
    "PersistentVolume": ("", "persistentvolumes"),
    "PersistentVolumeClaim": ("", "persistentvolumeclaims"),
}


def owned(api: client.ApiClient, tenant_ids: list[int]) -> dict[str, dict[str, Any]]:
    """Every object labelled as Canopy's for these tenants: '<Kind> <ns>/<name>' -> the object."""
    selector = (
        f"app.kubernetes.io/managed-by=canopy,canopy.io/tenant-id in ({','.join(map(str, tenant_ids))})"
    )
    found = {}
    for kind in KINDS:
        group = {
            "": "/api/v1",
            "rbac": "/apis/rbac.authorization.k8s.io/v1",
            "net": "/apis/networking.k8s.io/v1",
        }[KINDS[kind][0]]
        data = api.call_api(
            *api.param_serialize(
                "GET",
                f"{group}/{KINDS[kind][1]}",
                query_params=[("labelSelector", selector)],
                auth_settings=["BearerToken"],
            )
        )
        data.read()
        for item in yaml.safe_load(data.data)["items"]:
            if item["metadata"].get("deletionTimestamp"):
                continue
            namespace = item["metadata"].get("namespace")
            found[f"{kind} {namespace + '/' if namespace else ''}{item['metadata']['name']}"] = item
    return found


def service_account_exists(api: client.ApiClient, namespace: str, name: str) -> bool:
    try:
        client.CoreV1Api(api).read_namespaced_service_account(name, namespace)
        return True
    except ApiException as error:
        if error.status == 404:
            return False
        raise


def wait_for(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def allowed(call: Callable[[], Any]) -> bool:
    """True once RBAC lets the call through (its cache may lag a new binding by a moment)."""
    try:
        call()
        return True
    except ApiException as error:
        if error.status == 403 and "forbidden" in (error.body or "").lower() and "quota" not in error.body:
            return False
        raise


def pod(name: str, gpus: int = 0) -> client.V1Pod:
    resources = None
    if gpus:
        amount = {"nvidia.com/gpu": str(gpus)}
        resources = client.V1ResourceRequirements(requests=amount, limits=amount)
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(name="train", image="registry.invalid/train:1", resources=resources)
            ]
        ),
    )


def kubeconfig_of(person, tenant, cluster) -> tuple[dict[str, Any], Any]:
    response = (
        TokenClient().as_user(person).get(f"/api/v1/tenants/{tenant.pk}/kubeconfig/?cluster={cluster.pk}")
    )
    assert response.status_code == 200, response.content
    return yaml.safe_load(response.content), response


def build_arena(admin, cluster, pool):
    """The document's table, through the services: dev1 (Bob, 1 GPU, CPU and memory unlimited),
    dev2 (Tom, 2 GPUs, 8 CPUs, 60 GiB), dev1-public, dev2-public and department1-public shared by
    both on one directory."""
    dev1 = tenant_services.tenant_create(
        acting_user=admin, parent=None, name="dev1", allocations=[spec(pool, gpu=1)]
    )
    dev2 = tenant_services.tenant_create(
        acting_user=admin,
        parent=None,
        name="dev2",
        allocations=[spec(pool, gpu=2, cpu_millicores=8000, memory_bytes=60 * GI)],
    )
    bob, tom = user("bob"), user("tom")
    tenant_services.membership_grant(acting_user=admin, tenant=dev1, user=bob, role=Membership.Role.MEMBER)
    tenant_services.membership_grant(acting_user=admin, tenant=dev2, user=tom, role=Membership.Role.MEMBER)
    share = nfs_share(admin, cluster, server="nas.example.internal", granted_to=[dev1, dev2])
    for name, sub_path, tenants, scope in (
        ("dev1-public", "dev1", [dev1], Volume.Scope.PRIVATE),
        ("dev2-public", "dev2", [dev2], Volume.Scope.PRIVATE),
        ("department1-public", "department1", [dev1, dev2], Volume.Scope.SHARED),
    ):
        tenant_services.volume_create(
            acting_user=admin,
            spec=tenant_services.VolumeSpec(
                share=share,
                sub_path=sub_path,
                name=name,
                capacity_bytes=100 * GI,
                scope=scope,
                tenants=tenants,
            ),
        )
    return dev1, dev2, bob, tom


def test_the_arena_document_on_a_real_cluster(platform_admin, gpu_cluster, kube_admin, proxy):
    cluster, pool = gpu_cluster
    dev1, dev2, bob, tom = build_arena(platform_admin, cluster, pool)
    drain()

    statuses = {s.sync.namespace: s for s in ClusterSyncStatus.objects.select_related("sync")}
    assert {ns: s.state for ns, s in statuses.items()} == {"dev1": "synced", "dev2": "synced"}
    assert all(s.last_synced_at for s in statuses.values())

    # Exactly the document's objects (and Canopy's Roles, RoleBindings and dev2's LimitRange).
    objects = owned(kube_admin, [dev1.pk, dev2.pk])
    expected = {
        "Namespace dev1",
        "Namespace dev2",
        "ServiceAccount dev1/bob",
        "ServiceAccount dev2/tom",
        *(f"Role {ns}/canopy-{r}" for ns in ("dev1", "dev2") for r in ("admin", "member", "viewer")),
        "RoleBinding dev1/canopy-member",
        "RoleBinding dev2/canopy-member",
        "ResourceQuota dev1/canopy-quota",
        "ResourceQuota dev2/canopy-quota",
        "LimitRange dev2/canopy-defaults",
        "PersistentVolume canopy-dev1-dev1-public",
        "PersistentVolume canopy-dev1-department1-public-dev1",
        "PersistentVolume canopy-dev2-dev2-public",
        "PersistentVolume canopy-dev2-department1-public-dev2",
        "PersistentVolumeClaim dev1/dev1-public",
        "PersistentVolumeClaim dev1/department1-public-dev1",
        "PersistentVolumeClaim dev2/dev2-public",
        "PersistentVolumeClaim dev2/department1-public-dev2",
    }
    assert set(objects) == expected
    assert objects["ResourceQuota dev1/canopy-quota"]["spec"]["hard"] == {"requests.nvidia.com/gpu": "1"}
    assert objects["ResourceQuota dev2/canopy-quota"]["spec"]["hard"] == {
        "requests.nvidia.com/gpu": "2",
        "requests.cpu": "8",
        "limits.cpu": "8",
        "requests.memory": "60Gi",
        "limits.memory": "60Gi",
    }
    nfs = {
        key: obj["spec"]["nfs"]["path"] for key, obj in objects.items() if key.startswith("PersistentVolume ")
    }
    assert nfs["PersistentVolume canopy-dev1-department1-public-dev1"] == "/share/department1"
    assert nfs["PersistentVolume canopy-dev2-department1-public-dev2"] == "/share/department1"
    assert nfs["PersistentVolume canopy-dev1-dev1-public"] != nfs["PersistentVolume canopy-dev2-dev2-public"]

    core = client.CoreV1Api(kube_admin)
    for namespace in ("dev1", "dev2"):
        wait_for_namespace_ready(core, namespace)
        wait_for(
            lambda ns=namespace: core.read_namespaced_resource_quota("canopy-quota", ns).status.hard,
            f"the quota controller to fill in {namespace}'s quota",
        )

    # Tom, with the kubeconfig Canopy hands him: acts in dev2, is refused in dev1.
    tom_config, response = kubeconfig_of(tom, dev2, cluster)
    assert tom_config["contexts"][0]["context"]["namespace"] == "dev2"
    assert tom_config["current-context"] == tom_config["contexts"][0]["name"]
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["Cache-Control"] == "no-store"
    with client_from_kubeconfig(tom_config) as tom_api:
        tom_core = client.CoreV1Api(tom_api)
        review = client.AuthenticationV1Api(tom_api).create_self_subject_review(client.V1SelfSubjectReview())
        assert review.status.user_info.username == "system:serviceaccount:dev2:tom"
        # A pod that names no resources is admitted in dev2 (CPU and memory quota'd) thanks to the LimitRange.
        wait_for(
            lambda: allowed(lambda: tom_core.create_namespaced_pod("dev2", pod("plain"))), "Tom's binding"
        )
        admitted = tom_core.read_namespaced_pod("plain", "dev2")
        assert admitted.spec.containers[0].resources.limits == {"cpu": "1", "memory": "1Gi"}
        assert admitted.spec.containers[0].resources.requests == {"cpu": "100m", "memory": "256Mi"}
        with pytest.raises(ApiException) as refused:
            tom_core.list_namespaced_pod("dev1")
        assert refused.value.status == 403

    # Bob: his first one-GPU job runs, the second is refused by dev1's quota.
    bob_config, bob_response = kubeconfig_of(bob, dev1, cluster)
    with client_from_kubeconfig(bob_config) as bob_api:
        bob_core = client.CoreV1Api(bob_api)
        wait_for(
            lambda: allowed(lambda: bob_core.create_namespaced_pod("dev1", pod("tf-git-bob-01", 1))),
            "Bob's binding",
        )
        with pytest.raises(ApiException) as exceeded:
            bob_core.create_namespaced_pod("dev1", pod("tf-git-bob-02", 1))
        assert exceeded.value.status == 403
        assert "exceeded quota" in exceeded.value.body and "requests.nvidia.com/gpu" in exceeded.value.body

    # Tom is not a member of dev1: no kubeconfig, and no sign dev1 exists.
    denied = TokenClient().as_user(tom).get(f"/api/v1/tenants/{dev1.pk}/kubeconfig/?cluster={cluster.pk}")
    assert denied.status_code == 404 and b"dev1" not in denied.content
    issued = AuditEvent.objects.filter(action="KUBECONFIG_ISSUED").order_by("pk")
    assert [(e.actor_name, e.tenant_id, e.after) for e in issued] == [
        (
            person.username,
            tenant.pk,
            {
                "cluster": cluster.name,
                "address": "127.0.0.1",
                "namespace": tenant.name,
                "service_account": person.username,
                "expires_at": got["X-Token-Expires-At"],
            },
        )
        for person, tenant, got in ((tom, dev2, response), (bob, dev1, bob_response))
    ]
    tokens = [tom_config["users"][0]["user"]["token"], bob_config["users"][0]["user"]["token"]]
    assert not any(token in str(e.after) for token in tokens for e in AuditEvent.objects.all())

    # Bob's token dies with his ServiceAccount when he leaves dev1 (tokens are bound to it).
    tenant_services.membership_revoke(acting_user=platform_admin, membership=Membership.objects.get(user=bob))
    drain()

    def refused_status() -> int:
        with client_from_kubeconfig(bob_config) as bob_api:
            try:
                client.CoreV1Api(bob_api).list_namespaced_pod("dev1")
            except ApiException as error:
                return error.status
        return 200

    # At once his binding is gone (403); his token itself is refused (401) once the API server's
    # cache sees the ServiceAccount gone, about ten seconds later: not waited for here.
    assert refused_status() in (401, 403)
    assert not service_account_exists(kube_admin, "dev1", "bob")

    # Nothing to do: a full reconcile reads but writes nothing.
    proxy.clear()
    for tenant in (dev1, dev2):
        services.tenant_reconcile(tenant_id=tenant.pk, check_drift=True)
    assert proxy.writes() == [], [s.drift_detail for s in ClusterSyncStatus.objects.all()]
    reads = len(proxy.log)
    assert reads > 0

    # A quota edited by hand (a value changed, a key added) is found and put back.
    core.patch_namespaced_resource_quota(
        "canopy-quota", "dev1", {"spec": {"hard": {"requests.nvidia.com/gpu": "5", "pods": "10"}}}
    )
    proxy.clear()
    services.tenant_reconcile(tenant_id=dev1.pk, check_drift=True)
    status = ClusterSyncStatus.objects.get(sync__tenant_id=dev1.pk)
    assert status.state == "synced" and status.drift_detected_at is not None
    assert "requests.nvidia.com/gpu is '5', wanted '1'" in status.drift_detail
    assert core.read_namespaced_resource_quota("canopy-quota", "dev1").spec.hard == {
        "requests.nvidia.com/gpu": "1"
    }
    assert len(proxy.writes()) == 2  # the apply, and removing the key another manager added

    # Deleting dev1 names its namespace and the pod still running there, and waits for a confirmation.
    with pytest.raises(ValidationError) as unconfirmed:
        tenant_services.tenant_delete(acting_user=platform_admin, tenant=dev1)
    message = unconfirmed.value.message_dict["confirm"][0]
    assert message.startswith(f"Deleting dev1 also deletes namespace dev1 on {cluster.name}")
    assert "1 pod(s) still running" in message
    assert "Namespace dev1" in owned(kube_admin, [dev1.pk])
    tenant_services.tenant_delete(acting_user=platform_admin, tenant=dev1, confirm=True)
    drain()
    # The namespace is being deleted (its controller empties it); the PersistentVolumes are gone.
    left = set(owned(kube_admin, [dev1.pk]))
    assert not {key for key in left if key.startswith(("Namespace ", "PersistentVolume "))}, left
    assert core.read_namespace("dev1").metadata.deletion_timestamp is not None
    assert ClusterSyncStatus.objects.filter(sync__tenant_id=dev1.pk).count() == 0
    print(f"\nno-op reconcile of dev1 and dev2: {reads} reads, 0 writes")
