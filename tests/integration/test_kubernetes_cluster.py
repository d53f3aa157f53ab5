"""Proof that the Kubernetes test cluster behaves like a real one in everything Canopy relies
on: version, RBAC with TokenRequest tokens, ResourceQuota admission for GPUs, and the
namespace, serviceaccount, serviceaccount-token and garbage-collector controllers."""

from __future__ import annotations

import base64
import datetime
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from tests.clusters.kube import KubeCluster

pytestmark = pytest.mark.kubernetes

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], *, timeout: float = 60.0, what: str) -> T:
    """Poll ``check`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def exists(read: Callable[[], object]) -> bool:
    try:
        read()
        return True
    except ApiException as error:
        if error.status == 404:
            return False
        raise


@pytest.fixture
def admin(kube_cluster: KubeCluster) -> Iterator[client.ApiClient]:
    with kube_cluster.admin_client() as api:
        yield api


@pytest.fixture
def new_namespace(admin: client.ApiClient) -> Iterator[Callable[[str], str]]:
    """Creates uniquely named namespaces and deletes them after the test."""
    core = client.CoreV1Api(admin)
    created: list[str] = []

    def create(prefix: str) -> str:
        name = unique(prefix)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        created.append(name)
        return name

    yield create
    for name in created:
        try:
            core.delete_namespace(name)
        except ApiException as error:
            if error.status != 404:
                raise


def wait_for_default_service_account(core: client.CoreV1Api, namespace: str) -> None:
    # The ServiceAccount admission plugin refuses pods until the controller has made it.
    wait_for(
        lambda: exists(lambda: core.read_namespaced_service_account("default", namespace)),
        what=f"ServiceAccount default in {namespace}",
    )


def gpu_pod(name: str) -> client.V1Pod:
    gpu = {"nvidia.com/gpu": "1"}
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(
                    name="train",
                    image="registry.invalid/train:1",
                    resources=client.V1ResourceRequirements(requests=gpu, limits=gpu),
                )
            ]
        ),
    )


def test_server_reports_pinned_version(kube_cluster: KubeCluster, admin: client.ApiClient) -> None:
    info = client.VersionApi(admin).get_code()

    if kube_cluster.expected_version is None:
        # An external cluster (CANOPY_TEST_KUBECONFIG): its version is whatever it runs.
        assert re.fullmatch(r"v1\.\d+\.\d+.*", info.git_version)
    else:
        assert info.git_version == kube_cluster.expected_version
        assert info.major == "1"
        assert info.minor == kube_cluster.expected_version.split(".")[1]


def test_token_request_kubeconfig_is_limited_by_rbac(
    kube_cluster: KubeCluster, admin: client.ApiClient, new_namespace: Callable[[str], str]
) -> None:
    core, rbac = client.CoreV1Api(admin), client.RbacAuthorizationV1Api(admin)
    dev1, dev2 = new_namespace("dev1"), new_namespace("dev2")
    core.create_namespaced_service_account(
        dev2, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="tom"))
    )
    rbac.create_namespaced_role(
        dev2,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="pod-user"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["get", "list", "create"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        dev2,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="tom-pod-user"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="pod-user"),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="tom", namespace=dev2)],
        ),
    )

    before = datetime.datetime.now(datetime.UTC)
    minted = core.create_namespaced_service_account_token(
        "tom",
        dev2,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
        ),
    )
    assert minted.status.token
    lifetime = (minted.status.expiration_timestamp - before).total_seconds()
    assert 3500 < lifetime <= 3660

    kubeconfig = kube_cluster.token_kubeconfig(minted.status.token, user="tom", namespace=dev2)
    with kube_cluster.client_for(kubeconfig) as tom:
        review = client.AuthenticationV1Api(tom).create_self_subject_review(client.V1SelfSubjectReview())
        assert review.status.user_info.username == f"system:serviceaccount:{dev2}:tom"

        tom_core = client.CoreV1Api(tom)

        def can_list_dev2() -> bool:
            try:
                tom_core.list_namespaced_pod(dev2)
                return True
            except ApiException as error:
                if error.status == 403:  # the RBAC cache has not seen the binding yet
                    return False
                raise

        wait_for(can_list_dev2, timeout=30, what="tom's RoleBinding to take effect")
        assert tom_core.list_namespaced_pod(dev2).items == []

        with pytest.raises(ApiException) as denied:
            tom_core.list_namespaced_pod(dev1)
        assert denied.value.status == 403
        assert f"system:serviceaccount:{dev2}:tom" in denied.value.body


def test_gpu_resource_quota_refuses_second_pod_at_admission(
    admin: client.ApiClient, new_namespace: Callable[[str], str]
) -> None:
    core = client.CoreV1Api(admin)
    namespace = new_namespace("gpu-quota")
    core.create_namespaced_resource_quota(
        namespace,
        client.V1ResourceQuota(
            metadata=client.V1ObjectMeta(name="gpus"),
            spec=client.V1ResourceQuotaSpec(hard={"requests.nvidia.com/gpu": "1"}),
        ),
    )
    # Quota admission only enforces a quota once the controller has filled in its status.
    wait_for(
        lambda: (core.read_namespaced_resource_quota("gpus", namespace).status.hard or {}).get(
            "requests.nvidia.com/gpu"
        ),
        what="the quota controller to populate status.hard",
    )
    wait_for_default_service_account(core, namespace)

    first = core.create_namespaced_pod(namespace, gpu_pod("first"))
    assert first.metadata.uid

    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(namespace, gpu_pod("second"))
    assert refused.value.status == 403
    assert "exceeded quota" in refused.value.body
    assert "requests.nvidia.com/gpu" in refused.value.body

    assert [p.metadata.name for p in core.list_namespaced_pod(namespace).items] == ["first"]
    used = core.read_namespaced_resource_quota("gpus", namespace).status.used
    assert used["requests.nvidia.com/gpu"] == "1"


def test_namespace_controller_deletes_namespace_and_its_contents(
    admin: client.ApiClient, new_namespace: Callable[[str], str]
) -> None:
    core = client.CoreV1Api(admin)
    namespace = new_namespace("doomed")
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"), data={"a": "b"})
    )

    core.delete_namespace(namespace)

    # The namespace only goes away once the controller has emptied it and removed the
    # `kubernetes` finalizer.
    wait_for(
        lambda: not exists(lambda: core.read_namespace(namespace)),
        timeout=90,
        what=f"namespace {namespace} to be deleted",
    )
    assert not exists(lambda: core.read_namespaced_config_map("settings", namespace))


def test_serviceaccount_controller_creates_default_service_account(
    admin: client.ApiClient, new_namespace: Callable[[str], str]
) -> None:
    core = client.CoreV1Api(admin)
    namespace = new_namespace("fresh")

    wait_for_default_service_account(core, namespace)

    assert core.read_namespaced_service_account("default", namespace).metadata.namespace == namespace


def test_serviceaccount_token_controller_fills_legacy_token_secret(
    admin: client.ApiClient, new_namespace: Callable[[str], str]
) -> None:
    core = client.CoreV1Api(admin)
    namespace = new_namespace("legacy-token")
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="ci"))
    )
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(
                name="ci-token", annotations={"kubernetes.io/service-account.name": "ci"}
            ),
            type="kubernetes.io/service-account-token",
        ),
    )

    data = wait_for(
        lambda: core.read_namespaced_secret("ci-token", namespace).data,
        what="the token controller to fill the Secret",
    )
    assert base64.b64decode(data["token"]).count(b".") == 2  # a JWT
    assert b"BEGIN CERTIFICATE" in base64.b64decode(data["ca.crt"])


def test_garbage_collector_deletes_dependents_of_deleted_owner(
    admin: client.ApiClient, new_namespace: Callable[[str], str]
) -> None:
    core = client.CoreV1Api(admin)
    namespace = new_namespace("gc")
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(
                name="dependent",
                owner_references=[
                    client.V1OwnerReference(
                        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
                    )
                ],
            )
        ),
    )

    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")

    wait_for(
        lambda: not exists(lambda: core.read_namespaced_config_map("dependent", namespace)),
        what="the garbage collector to delete the dependent ConfigMap",
    )
