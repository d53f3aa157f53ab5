"""Proof that the Kueue test cluster is real: Kueue admits batch/v1 Jobs within a ClusterQueue's
quota and holds the rest suspended, kube-scheduler binds the admitted pods to the nodes of the
flavor, KWOK runs them and finishes them when asked, and Kueue's webhooks and CRD conversion
are called by the API server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from tests.clusters.kueue import (
    GPU,
    KUEUE_API_VERSION,
    KUEUE_GROUP,
    KWOK_NODE_ANNOTATION,
    QUEUE_LABEL,
    WORKER_ROLE_LABEL,
    KueueTestCluster,
    condition,
    finish_pods,
    job_manifest,
    job_pods,
    kueue_down,
    workload_for_job,
)
from tests.clusters.processes import wait_until

pytestmark = pytest.mark.kueue

WORKERS = {"worker01", "worker02", "worker03"}


def kueue_object(kind: str, name: str, spec: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {
        "apiVersion": f"{KUEUE_GROUP}/{KUEUE_API_VERSION}",
        "kind": kind,
        "metadata": metadata,
        "spec": spec,
    }


def cluster_queue_spec(namespace: str, flavor: str, gpus: str, **extra: Any) -> dict[str, Any]:
    """One flavor covering GPU, CPU and memory; only ``namespace``'s jobs may use it."""
    return {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        "resourceGroups": [
            {
                "coveredResources": ["cpu", "memory", GPU],
                "flavors": [
                    {
                        "name": flavor,
                        "resources": [
                            {"name": "cpu", "nominalQuota": "12"},
                            {"name": "memory", "nominalQuota": "90Gi"},
                            {"name": GPU, "nominalQuota": gpus, **extra},
                        ],
                    }
                ],
            }
        ],
        **({"cohortName": "canopy-selftest"} if extra else {}),
    }


@pytest.fixture
def admin(kueue_cluster: KueueTestCluster) -> Iterator[client.ApiClient]:
    with kueue_cluster.admin_client() as api:
        yield api


@pytest.fixture
def queue(admin: client.ApiClient) -> Iterator[dict[str, str]]:
    """A namespace with a LocalQueue on a ClusterQueue of 1 GPU in a flavor of the worker nodes
    (the Arena document's dev1); all deleted after the test."""
    suffix = uuid.uuid4().hex[:6]
    names = {"namespace": f"dev1-{suffix}", "flavor": f"workers-{suffix}", "cluster_queue": f"dev1-{suffix}"}
    core, custom = client.CoreV1Api(admin), client.CustomObjectsApi(admin)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=names["namespace"])))
    custom.create_cluster_custom_object(
        KUEUE_GROUP,
        KUEUE_API_VERSION,
        "resourceflavors",
        kueue_object("ResourceFlavor", names["flavor"], {"nodeLabels": {WORKER_ROLE_LABEL: ""}}),
    )
    custom.create_cluster_custom_object(
        KUEUE_GROUP,
        KUEUE_API_VERSION,
        "clusterqueues",
        kueue_object(
            "ClusterQueue",
            names["cluster_queue"],
            cluster_queue_spec(names["namespace"], names["flavor"], "1"),
        ),
    )
    custom.create_namespaced_custom_object(
        KUEUE_GROUP,
        KUEUE_API_VERSION,
        names["namespace"],
        "localqueues",
        kueue_object("LocalQueue", "dev1", {"clusterQueue": names["cluster_queue"]}, names["namespace"]),
    )
    # The job controller creates pods only once the namespace's default ServiceAccount exists.
    wait_until(
        lambda: exists(lambda: core.read_namespaced_service_account("default", names["namespace"])), "SA"
    )
    yield names
    core.delete_namespace(names["namespace"])
    custom.delete_cluster_custom_object(
        KUEUE_GROUP, KUEUE_API_VERSION, "clusterqueues", names["cluster_queue"]
    )
    custom.delete_cluster_custom_object(KUEUE_GROUP, KUEUE_API_VERSION, "resourceflavors", names["flavor"])


def exists(read: Any) -> bool:
    try:
        read()
        return True
    except ApiException as error:
        if error.status == 404:
            return False
        raise


def message(error: ApiException) -> str:
    """The message of the API server's Status answer."""
    return json.loads(error.body)["message"]


def running_pod(api: client.ApiClient, namespace: str, job: str) -> client.V1Pod | None:
    pods = job_pods(api, namespace, job)
    return pods[0] if len(pods) == 1 and pods[0].status.phase == "Running" else None


def test_nodes_are_the_arena_workers_two_non_workers_and_a_t4_pool(
    kueue_cluster: KueueTestCluster, admin: client.ApiClient
) -> None:
    nodes = {node.metadata.name: node for node in client.CoreV1Api(admin).list_node().items}
    offered = {
        name: (
            node.status.allocatable.get(GPU, "0"),
            node.status.allocatable["cpu"],
            node.status.allocatable["memory"],
            WORKER_ROLE_LABEL in node.metadata.labels,
            node.metadata.labels.get("gpu"),
        )
        for name, node in nodes.items()
    }
    assert offered == {
        "worker01": ("1", "4", "30Gi", True, None),
        "worker02": ("1", "4", "30Gi", True, None),
        "worker03": ("1", "4", "30Gi", True, None),
        "master01": ("0", "4", "8Gi", False, None),
        "master02": ("0", "4", "8Gi", False, None),
        "t4-01": ("2", "8", "32Gi", False, "t4"),
        "t4-02": ("2", "8", "32Gi", False, "t4"),
    }
    # The Arena document's addresses, as a kubelet reports them (written only, never dialled).
    assert [(a.type, a.address) for a in nodes["worker01"].status.addresses] == [
        ("InternalIP", "10.0.0.94"),
        ("Hostname", "worker01"),
    ]
    for node in nodes.values():
        # Played by KWOK (it reports itself as the kubelet), Ready, and schedulable.
        assert node.metadata.annotations[KWOK_NODE_ANNOTATION] == "fake"
        assert (
            node.status.node_info.kubelet_version
            == f"kwok-{kueue_cluster.versions['kwok'].removeprefix('v')}"
        )
        assert {c.type: c.status for c in node.status.conditions}["Ready"] == "True"
        assert not node.spec.taints


def test_second_one_gpu_job_waits_for_quota_and_runs_when_the_first_finishes(
    admin: client.ApiClient, queue: dict[str, str]
) -> None:
    namespace = queue["namespace"]
    batch, core = client.BatchV1Api(admin), client.CoreV1Api(admin)
    batch.create_namespaced_job(namespace, job_manifest("first", queue="dev1"))
    first_pod = wait_until(lambda: running_pod(admin, namespace, "first"), "the first job's pod to run")
    batch.create_namespaced_job(namespace, job_manifest("second", queue="dev1"))

    # The first: admitted by Kueue, unsuspended, its pod given the flavor's node labels by Kueue
    # (the Job asked for no node) and bound by kube-scheduler to a worker node; KWOK runs it.
    first = workload_for_job(admin, namespace, "first")
    assert first is not None
    assert condition(first, "Admitted")["status"] == "True"
    assert first["status"]["admission"]["clusterQueue"] == queue["cluster_queue"]
    assert batch.read_namespaced_job("first", namespace).spec.suspend is False
    assert first_pod.spec.node_selector == {WORKER_ROLE_LABEL: ""}
    assert first_pod.spec.node_name in WORKERS
    assert WORKER_ROLE_LABEL in core.read_node(first_pod.spec.node_name).metadata.labels
    assert first_pod.status.container_statuses[0].state.running is not None

    # The second: its Workload is pending for want of GPU quota, the Job stays suspended and has
    # no pod, although two worker GPUs are free.
    second = wait_until(
        lambda: (w := workload_for_job(admin, namespace, "second")) and condition(w, "QuotaReserved") and w,
        "the second job's workload to be evaluated",
    )
    reserved = condition(second, "QuotaReserved")
    assert (reserved["status"], reserved["reason"]) == ("False", "Pending")
    assert reserved["message"] == (
        f"couldn't assign flavors to pod set main: insufficient unused quota for {GPU} "
        f"in flavor {queue['flavor']}, 1 more needed"
    )
    assert condition(second, "Admitted") is None
    assert batch.read_namespaced_job("second", namespace).spec.suspend is True
    assert job_pods(admin, namespace, "second") == []

    # The first's pod finishes (KWOK's stage, asked by annotation): the Job completes, Kueue
    # releases its quota and admits the second, whose pod runs on a worker.
    finish_pods(admin, namespace, "first")
    wait_until(
        lambda: (
            (condition(workload_for_job(admin, namespace, "first"), "Finished") or {}).get("status") == "True"
        ),
        "Kueue to see the first job finished",
    )
    finished_pod = job_pods(admin, namespace, "first")[0]
    assert finished_pod.status.phase == "Succeeded"
    assert finished_pod.status.container_statuses[0].state.terminated.exit_code == 0
    assert any(
        c.type == "Complete" and c.status == "True"
        for c in batch.read_namespaced_job("first", namespace).status.conditions
    )
    second_pod = wait_until(lambda: running_pod(admin, namespace, "second"), "the second job's pod to run")
    assert condition(workload_for_job(admin, namespace, "second"), "Admitted")["status"] == "True"
    assert batch.read_namespaced_job("second", namespace).spec.suspend is False
    assert second_pod.spec.node_name in WORKERS


def test_job_without_queue_name_is_left_to_kubernetes(admin: client.ApiClient, queue: dict[str, str]) -> None:
    # manageJobsWithoutQueueName is false: Kueue neither suspends it nor makes a Workload, and
    # nothing keeps it off the non-worker nodes (what pool selectors are for).
    namespace = queue["namespace"]
    job = job_manifest("unqueued", queue="dev1", gpus=0, finish="succeeded")
    del job["metadata"]["labels"][QUEUE_LABEL]
    job["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/hostname": "master01"}
    client.BatchV1Api(admin).create_namespaced_job(namespace, job)
    wait_until(
        lambda: client.BatchV1Api(admin).read_namespaced_job("unqueued", namespace).status.succeeded == 1,
        "the unqueued job to succeed",
    )
    assert client.BatchV1Api(admin).read_namespaced_job("unqueued", namespace).spec.suspend is False
    assert job_pods(admin, namespace, "unqueued")[0].spec.node_name == "master01"
    assert workload_for_job(admin, namespace, "unqueued") is None


def test_kueue_validating_webhook_refuses_an_invalid_cluster_queue(
    admin: client.ApiClient, queue: dict[str, str]
) -> None:
    # Lending more than the nominal quota passes the CRD's schema and CEL rules; only Kueue's
    # webhook (vclusterqueue.kb.io) checks it.
    custom = client.CustomObjectsApi(admin)
    name = f"lends-too-much-{uuid.uuid4().hex[:6]}"
    spec = cluster_queue_spec(queue["namespace"], queue["flavor"], "1", lendingLimit="2")
    with pytest.raises(ApiException) as refused:
        custom.create_cluster_custom_object(
            KUEUE_GROUP, KUEUE_API_VERSION, "clusterqueues", kueue_object("ClusterQueue", name, spec)
        )
    assert refused.value.status == 403
    assert message(refused.value) == (
        'admission webhook "vclusterqueue.kb.io" denied the request: '
        'spec.resourceGroups[0].flavors[0].resources[2].lendingLimit: Invalid value: "2": '
        "must be less than or equal to the nominalQuota"
    )
    assert not exists(
        lambda: custom.get_cluster_custom_object(KUEUE_GROUP, KUEUE_API_VERSION, "clusterqueues", name)
    )


def test_crd_conversion_webhook_serves_v1beta1(admin: client.ApiClient, queue: dict[str, str]) -> None:
    # v1beta2 renamed spec.cohort to spec.cohortName; only Kueue's conversion webhook maps it.
    custom = client.CustomObjectsApi(admin)
    name = f"in-cohort-{uuid.uuid4().hex[:6]}"
    spec = cluster_queue_spec(queue["namespace"], queue["flavor"], "1", borrowingLimit="1")
    custom.create_cluster_custom_object(
        KUEUE_GROUP, KUEUE_API_VERSION, "clusterqueues", kueue_object("ClusterQueue", name, spec)
    )
    try:
        old = custom.get_cluster_custom_object(KUEUE_GROUP, "v1beta1", "clusterqueues", name)
        assert old["apiVersion"] == f"{KUEUE_GROUP}/v1beta1"
        assert old["spec"]["cohort"] == "canopy-selftest"
        assert "cohortName" not in old["spec"]
    finally:
        custom.delete_cluster_custom_object(KUEUE_GROUP, KUEUE_API_VERSION, "clusterqueues", name)


def test_jobs_are_refused_while_kueue_is_down(
    kueue_cluster: KueueTestCluster, admin: client.ApiClient, queue: dict[str, str]
) -> None:
    # Kueue's webhooks fail closed (failurePolicy Fail): no queued Job slips past unsuspended.
    batch = client.BatchV1Api(admin)
    with kueue_down(kueue_cluster):
        with pytest.raises(ApiException) as refused:
            batch.create_namespaced_job(queue["namespace"], job_manifest("while-down", queue="dev1"))
        assert refused.value.status == 500
        assert message(refused.value).startswith(
            'Internal error occurred: failed calling webhook "mjob.kb.io"'
        )
        assert not exists(lambda: batch.read_namespaced_job("while-down", queue["namespace"]))
    batch.create_namespaced_job(queue["namespace"], job_manifest("after", queue="dev1", finish="succeeded"))
    wait_until(
        lambda: batch.read_namespaced_job("after", queue["namespace"]).status.succeeded == 1,
        "the job sent after Kueue came back to succeed",
    )
