"""Usage collectors against the real test clusters (issue 7).

Kubernetes: the Arena world pushed to the real control plane, pods created by Bob and Tom with
the kubeconfigs Canopy hands them (admitted by the API server and counted in ResourceQuota
status.used by the real quota controller; no scheduler, so they stay Pending), a batch Job and a
PyTorchJob from a minimal kubeflow.org CRD; read through Canopy's own ServiceAccount with
deploy/clusterrole.yaml (so the manifest is proven sufficient) and stored as samples and workloads.
YARN and HDFS: the MRS world on the mini cluster, a real application and real files.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
import requests
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from kubernetes import client
from kubernetes.client import ApiException

from provisioning import services
from tenants import services as tenant_services
from tenants.models import AuditEvent, Cluster, Membership
from tests.clusters.hadoop import HadoopTestCluster
from tests.clusters.kube import client_from_kubeconfig
from tests.provisioning.conftest import GI, drain, wait_for_namespace_ready
from tests.provisioning.test_kubernetes_arena import allowed, kubeconfig_of, wait_for
from tests.provisioning.test_yarn_backend import GIB, JSON, webhdfs
from tests.tenants.builders import spec, user
from usage import collectors
from usage import services as usage_services
from usage import tasks as usage_tasks
from usage.measures import UsageReading
from usage.models import USAGE_METRICS, UsageCollection, UsageRollup, UsageSample, Workload

MI = 2**20


def latest(cluster: Cluster) -> dict[str, dict[str, float | None]]:
    """The last pass's samples: '<tenant path>[@partition]' -> figures."""
    time_ = UsageSample.objects.filter(cluster=cluster).order_by("-time").values_list("time", flat=True)[0]
    rows = UsageSample.objects.filter(cluster=cluster, time=time_).select_related("tenant")
    return {
        r.tenant.name_path + (f"@{r.partition}" if r.partition else ""): {
            name: getattr(r, name) for name in USAGE_METRICS
        }
        for r in rows
    }


def workloads(cluster: Cluster) -> dict[str, Workload]:
    return {f"{w.kind} {w.namespace}/{w.name}": w for w in Workload.objects.filter(cluster=cluster)}


# --------------------------------------------------------------------------------- Kubernetes


def a_pod(name: str, account: str | None, *, gpus: int = 0, cpu: str = "", memory: str = "") -> client.V1Pod:
    amounts = {"nvidia.com/gpu": str(gpus)} if gpus else {}
    amounts |= {"cpu": cpu} if cpu else {}
    amounts |= {"memory": memory} if memory else {}
    resources = client.V1ResourceRequirements(requests=amounts, limits=amounts) if amounts else None
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(
            service_account_name=account,
            containers=[
                client.V1Container(name="train", image="registry.invalid/train:1", resources=resources)
            ],
        ),
    )


PYTORCHJOBS_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "pytorchjobs.kubeflow.org"},
    "spec": {
        "group": "kubeflow.org",
        "names": {
            "kind": "PyTorchJob",
            "plural": "pytorchjobs",
            "singular": "pytorchjob",
            "listKind": "PyTorchJobList",
        },
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
            }
        ],
    },
}


def pytorch_job(name: str, account: str) -> dict:
    def replica(count: int) -> dict:
        return {
            "replicas": count,
            "template": {
                "spec": {
                    "serviceAccountName": account,
                    "containers": [
                        {
                            "name": "pytorch",
                            "image": "registry.invalid/pytorch:1",
                            "resources": {"limits": {"nvidia.com/gpu": "1", "cpu": "2", "memory": "8Gi"}},
                        }
                    ],
                }
            },
        }

    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name},
        "spec": {"pytorchReplicaSpecs": {"Master": replica(1), "Worker": replica(2)}},
    }


@pytest.fixture
def kubeflow_crd(kube_admin) -> Iterator[None]:
    extensions = client.ApiextensionsV1Api(kube_admin)
    extensions.create_custom_resource_definition(PYTORCHJOBS_CRD)
    yield
    extensions.delete_custom_resource_definition("pytorchjobs.kubeflow.org")


def build_department(admin, pool):
    """The Arena world on the connected test cluster: department1 (3 GPUs) > dev1 (Bob, 1 GPU, CPU
    and memory unlimited), dev2 (Tom, 2 GPUs, 8 CPUs, 60 GiB)."""
    department1 = tenant_services.tenant_create(
        acting_user=admin, parent=None, name="department1", allocations=[spec(pool, gpu=3)]
    )
    dev1 = tenant_services.tenant_create(
        acting_user=admin, parent=department1, name="dev1", allocations=[spec(pool, gpu=1)]
    )
    dev2 = tenant_services.tenant_create(
        acting_user=admin,
        parent=department1,
        name="dev2",
        allocations=[spec(pool, gpu=2, cpu_millicores=8000, memory_bytes=60 * GI)],
    )
    bob, tom = user("bob"), user("tom")
    tenant_services.membership_grant(acting_user=admin, tenant=dev1, user=bob, role=Membership.Role.MEMBER)
    tenant_services.membership_grant(acting_user=admin, tenant=dev2, user=tom, role=Membership.Role.MEMBER)
    return department1, dev1, dev2, bob, tom


@pytest.mark.kubernetes
@pytest.mark.django_db
def test_kubernetes_quota_usage_pods_jobs_and_training_jobs(
    platform_admin, gpu_cluster, kube_admin, proxy, kube_cluster, monkeypatch
) -> None:
    cluster, pool = gpu_cluster
    department1, dev1, dev2, bob, tom = build_department(platform_admin, pool)
    drain()
    core = client.CoreV1Api(kube_admin)
    for namespace in ("department1", "department1-dev1", "department1-dev2"):
        wait_for_namespace_ready(core, namespace)

    # Bob and Tom submit with the kubeconfigs Canopy gives them, their pods running as their
    # ServiceAccounts; one of Tom's names none (the LimitRange fills in CPU and memory).
    bob_config, _ = kubeconfig_of(bob, dev1, cluster)
    tom_config, _ = kubeconfig_of(tom, dev2, cluster)
    with client_from_kubeconfig(bob_config) as bob_api, client_from_kubeconfig(tom_config) as tom_api:
        bob_core, tom_core = client.CoreV1Api(bob_api), client.CoreV1Api(tom_api)
        bob_pod = a_pod("bob-train", "bob", gpus=1, cpu="500m", memory="1Gi")
        wait_for(lambda: allowed(lambda: bob_core.create_namespaced_pod("department1-dev1", bob_pod)), "Bob")
        tom_pod = a_pod("tom-train", "tom", gpus=1, cpu="2", memory="4Gi")
        wait_for(lambda: allowed(lambda: tom_core.create_namespaced_pod("department1-dev2", tom_pod)), "Tom")
        tom_core.create_namespaced_pod("department1-dev2", a_pod("plain", None))
        template = client.V1PodTemplateSpec(
            spec=a_pod("x", "tom", cpu="1", memory="1Gi").spec.to_dict() | {"restart_policy": "Never"}
        )
        job = client.V1Job(
            metadata=client.V1ObjectMeta(name="tom-batch"),
            spec=client.V1JobSpec(parallelism=2, template=template),
        )
        client.BatchV1Api(tom_api).create_namespaced_job("department1-dev2", job)

    def quota_used(namespace: str) -> dict:
        return core.read_namespaced_resource_quota("canopy-quota", namespace).status.used or {}

    wait_for(lambda: quota_used("department1-dev1").get("requests.nvidia.com/gpu") == "1", "dev1's quota")
    wait_for(lambda: quota_used("department1-dev2").get("requests.cpu") == "2100m", "dev2's quota")

    # No kubeflow.org on the cluster yet: not an error, one call fewer.
    outcome = usage_services.usage_collect(cluster_id=cluster.pk)
    assert outcome.state == "ok", outcome.message
    assert outcome.calls == 5  # namespaces, quotas, kubeflow discovery, pods, jobs
    figures = latest(cluster)
    assert set(figures) == {"department1", "department1/dev1", "department1/dev2"}
    assert figures["department1/dev1"] | {} == {
        **{name: None for name in figures["department1/dev1"]},
        "gpu_used": 1,
        "gpu_allocated": 1,
        "cpu_used_millicores": 500,  # not quota'd in dev1: summed from its pods
        "cpu_allocated_millicores": None,  # unlimited
        "memory_used_bytes": GI,
        "memory_allocated_bytes": None,
        "workloads_running": 0,
        "workloads_pending": 1,
    }
    dev2_figures = figures["department1/dev2"]
    assert dev2_figures["gpu_used"] == 1 and dev2_figures["gpu_allocated"] == 2
    assert dev2_figures["cpu_used_millicores"] == 2100  # 2 + the LimitRange's 100m
    assert dev2_figures["cpu_allocated_millicores"] == 8000
    assert dev2_figures["memory_used_bytes"] == 4 * GI + 256 * MI
    assert dev2_figures["memory_allocated_bytes"] == 60 * GI
    assert (dev2_figures["workloads_running"], dev2_figures["workloads_pending"]) == (0, 2)
    parent = figures["department1"]  # its own namespace is empty: the sum of dev1 and dev2
    assert parent["gpu_used"] == 2 and parent["gpu_allocated"] == 3  # 0 kept + 1 + 2
    assert parent["cpu_used_millicores"] == 2600 and parent["cpu_allocated_millicores"] is None
    assert parent["memory_used_bytes"] == 5 * GI + 256 * MI and parent["memory_allocated_bytes"] is None
    assert parent["workloads_pending"] == 3

    found = workloads(cluster)
    assert set(found) == {
        "Pod department1-dev1/bob-train",
        "Pod department1-dev2/tom-train",
        "Pod department1-dev2/plain",
        "Job department1-dev2/tom-batch",
    }
    bob_row = found["Pod department1-dev1/bob-train"]
    assert (bob_row.tenant_id, bob_row.submitted_by, bob_row.username, bob_row.state) == (
        dev1.pk,
        "bob",
        "bob",
        "pending",
    )
    assert (bob_row.gpu, bob_row.cpu_millicores, bob_row.memory_bytes) == (1, 500, GI)
    assert found["Pod department1-dev2/plain"].submitted_by == "default"
    assert found["Pod department1-dev2/plain"].username == ""
    batch = found["Job department1-dev2/tom-batch"]
    assert (batch.username, batch.state, batch.cpu_millicores, batch.memory_bytes) == (
        "tom",
        "pending",
        2000,
        2 * GI,
    )

    # A PyTorchJob, once its CRD exists, is found by discovery and listed (one call more).
    extensions = client.ApiextensionsV1Api(kube_admin)
    extensions.create_custom_resource_definition(PYTORCHJOBS_CRD)
    try:
        custom = client.CustomObjectsApi(kube_admin)

        def created() -> bool:
            try:
                custom.create_namespaced_custom_object(
                    "kubeflow.org", "v1", "department1-dev1", "pytorchjobs", pytorch_job("bert", "bob")
                )
                return True
            except ApiException as error:
                if error.status == 404:  # the CRD is not served yet
                    return False
                raise

        wait_for(created, "the PyTorchJob CRD to be served")
        outcome = usage_services.usage_collect(cluster_id=cluster.pk)
        assert outcome.state == "ok", outcome.message
        assert outcome.calls == 6
        bert = workloads(cluster)["PyTorchJob department1-dev1/bert"]
        assert (bert.tenant_id, bert.submitted_by, bert.username, bert.state) == (
            dev1.pk,
            "bob",
            "bob",
            "pending",
        )
        assert (bert.gpu, bert.cpu_millicores, bert.memory_bytes) == (3, 6000, 24 * GI)

        # Lists are paged: with a page of one item, the same pass in more calls.
        monkeypatch.setattr(collectors, "PAGE", 1)
        paged = usage_services.usage_collect(cluster_id=cluster.pk)
        assert paged.state == "ok" and paged.calls > 10
        assert set(workloads(cluster)) == set(found) | {"PyTorchJob department1-dev1/bert"}
        assert latest(cluster) == figures
    finally:
        extensions.delete_custom_resource_definition("pytorchjobs.kubeflow.org")
    row = UsageCollection.objects.get(cluster=cluster)
    assert row.state == "ok" and row.last_collected_at and row.samples == 3 and row.workloads == 5


@pytest.mark.kubernetes
@pytest.mark.django_db
def test_a_pass_costs_the_same_queries_for_2_or_20_tenants(platform_admin, gpu_cluster) -> None:
    cluster, pool = gpu_cluster

    def tenants(names: range) -> None:
        for index in names:
            tenant_services.tenant_create(
                acting_user=platform_admin,
                parent=None,
                name=f"q{index}",
                allocations=[spec(pool, cpu_millicores=100)],
            )
        drain()

    def queries() -> int:
        usage_services.usage_collect(cluster_id=cluster.pk)  # the first pass also creates the status row
        with CaptureQueriesContext(db_connection) as captured:
            outcome = usage_services.usage_collect(cluster_id=cluster.pk)
        assert outcome.state == "ok", outcome.message
        return len(captured.captured_queries)

    tenants(range(2))
    few = queries()
    tenants(range(2, 20))
    many = queries()
    assert UsageSample.objects.filter(cluster=cluster).count() == 2 * 2 + 2 * 20
    # 13 today: cluster, status row, connection (twice), people, namespaces, tree paths (2), tenant
    # paths, samples insert, known tenants, workloads replaced (delete + insert), status update.
    assert many == few <= 15, f"{few} queries for 2 tenants, {many} for 20"


# --------------------------------------------------------------------------------- Hadoop


def submit_as(cluster: HadoopTestCluster, person: str, queue: str, seconds: int) -> str:
    """A real application submitted by `person`: its AM container sleeps (and then fails)."""

    def call(method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(
            method,
            f"{cluster.rm_url}/ws/v1/cluster{path}",
            params={"user.name": person},
            headers=JSON,
            timeout=60,
            **kwargs,
        )

    app_id = call("POST", "/apps/new-application").json()["application-id"]
    body = {
        "application-id": app_id,
        "application-name": "etl-nightly",
        "queue": queue,
        "application-type": "YARN",
        "max-app-attempts": 1,
        "am-container-spec": {"commands": {"command": f"sleep {seconds}"}},
        "resource": {"memory": 128, "vCores": 1},
    }
    submitted = call("POST", "/apps", json=body)
    assert submitted.status_code == 202, submitted.text
    return app_id


def write_file(cluster: HadoopTestCluster, path: str, data: bytes) -> None:
    """WebHDFS CREATE: the NameNode answers with a redirect to a DataNode, which takes the data."""
    step = requests.put(
        f"{cluster.webhdfs_url}/webhdfs/v1{path}",
        params={"op": "CREATE", "overwrite": "true", "user.name": cluster.user},
        allow_redirects=False,
        timeout=60,
    )
    assert step.status_code == 307, step.text
    written = requests.put(step.headers["Location"], data=data, timeout=60)
    assert written.status_code == 201, written.text


@pytest.mark.hadoop
@pytest.mark.django_db
def test_yarn_queue_usage_applications_and_hdfs_directories(
    hadoop: HadoopTestCluster,
    yarn_world,
) -> None:
    w = yarn_world
    etl = tenant_services.tenant_create(
        acting_user=w.admin,
        parent=w.t1,
        name="etl",
        allocations=[spec(w.pool, capacity_percent=Decimal(50), max_capacity_percent=Decimal(100))],
    )
    for tenant, space, files in ((w.t1, GIB, 1000), (etl, 512 * MI, 100)):
        tenant_services.storage_create(
            acting_user=w.admin,
            tenant=tenant,
            spec=tenant_services.StorageSpec(cluster=w.cluster, space_quota_bytes=space, file_quota=files),
        )
    services.hadoop_connection_set(
        acting_user=w.admin,
        cluster=w.cluster,
        spec=services.HadoopConnectionSpec(
            rm_urls=f"http://127.0.0.1:9/\n{hadoop.rm_url}",  # the first RM is down: fail over
            webhdfs_urls=hadoop.webhdfs_url,
            user=hadoop.user,
        ),
    )
    drain()
    write_file(hadoop, "/tenant/t1/etl/part-0000", b"x" * 1000)
    write_file(hadoop, "/tenant/t1/readme", b"y" * 24)

    # usera (admin of t1) submits into t1's sub-tenant; YARN ACLs inherit down the tree.
    app_id = submit_as(hadoop, "usera", "root.t1.etl", 60)

    def scheduler_etl() -> dict:
        info = requests.get(
            f"{hadoop.rm_url}/ws/v1/cluster/scheduler",
            params={"user.name": hadoop.user},
            headers=JSON,
            timeout=30,
        ).json()["scheduler"]["schedulerInfo"]
        t1 = next(q for q in info["queues"]["queue"] if q["queueName"] == "t1")
        return next(q for q in t1["queues"]["queue"] if q["queueName"] == "etl")

    wait_for(lambda: scheduler_etl()["resourcesUsed"]["memory"] > 0, "the AM container to be allocated")
    try:
        outcome = usage_services.usage_collect(cluster_id=w.cluster.pk)
    finally:
        requests.put(
            f"{hadoop.rm_url}/ws/v1/cluster/apps/{app_id}/state",
            params={"user.name": hadoop.user},
            json={"state": "KILLED"},
            timeout=30,
        )
    assert outcome.state == "ok", outcome.message
    # scheduler + applications + metrics on the RM that answers (the dead one is tried first
    # each time), and one call per tenant directory.
    assert outcome.calls == 2 * 3 + 2

    figures = latest(w.cluster)
    assert {"t1", "t2", "t3", "t1/etl", "t3@HighMEM"} <= set(figures)
    leaf, t1 = figures["t1/etl"], figures["t1"]
    assert leaf["memory_used_bytes"] > 0 and leaf["cpu_used_millicores"] == 1000
    assert leaf["am_memory_used_bytes"] == leaf["memory_used_bytes"]  # its only container is the AM
    assert leaf["am_memory_limit_bytes"] > 0
    assert (leaf["workloads_running"], leaf["workloads_pending"]) == (1, 0)
    # The parent queue's figures include its children's (YARN's own subtree totals).
    assert t1["memory_used_bytes"] == leaf["memory_used_bytes"]
    assert t1["am_memory_used_bytes"] == leaf["am_memory_used_bytes"]
    assert t1["workloads_running"] == 1
    assert t1["memory_allocated_bytes"] > leaf["memory_allocated_bytes"] > 0
    assert figures["t2"]["memory_used_bytes"] == 0 and figures["t2"]["workloads_running"] == 0
    assert figures["t3@HighMEM"]["memory_used_bytes"] == 0

    app = workloads(w.cluster)[f"YARN application root.t1.etl/{app_id} etl-nightly"]
    assert (app.tenant_id, app.submitted_by, app.username, app.state) == (etl.pk, "usera", "usera", "running")
    assert app.cpu_millicores == 1000 and app.started_at is not None

    # HDFS: each directory's figures, the inner one counted once in the outer one's subtree.
    def summary(path: str) -> dict:
        return webhdfs(hadoop, "GET", path, "GETCONTENTSUMMARY").json()["ContentSummary"]

    inner, outer = summary("/tenant/t1/etl"), summary("/tenant/t1")
    replication = inner["spaceConsumed"] // 1000
    assert replication >= 1 and outer["spaceConsumed"] == 1024 * replication
    assert leaf["hdfs_space_used_bytes"] == inner["spaceConsumed"]
    assert leaf["hdfs_files_used"] == 2  # the directory and its file
    assert (leaf["hdfs_space_quota_bytes"], leaf["hdfs_files_quota"]) == (512 * MI, 100)
    assert t1["hdfs_space_used_bytes"] == outer["spaceConsumed"]
    assert t1["hdfs_files_used"] == outer["fileCount"] + outer["directoryCount"] == 4
    assert (t1["hdfs_space_quota_bytes"], t1["hdfs_files_quota"]) == (GIB, 1000)
    assert figures["t2"]["hdfs_space_used_bytes"] is None  # no directory

    row = UsageCollection.objects.get(cluster=w.cluster)
    assert row.details["yarn"]["totalNodes"] >= 1 and row.details["yarn"]["appsRunning"] >= 1

    # Beat's task: every due cluster in its own task; one that cannot be reached records its
    # error on its row and the others are collected all the same.
    broken = tenant_services.cluster_create(acting_user=w.admin, name="unreachable", kind=Cluster.Kind.YARN)
    services.hadoop_connection_set(
        acting_user=w.admin,
        cluster=broken,
        spec=services.HadoopConnectionSpec(
            rm_urls="http://127.0.0.1:9", webhdfs_urls="http://127.0.0.1:9", user=hadoop.user
        ),
    )
    UsageCollection.objects.filter(cluster=w.cluster).update(last_attempt_at=None)
    assert sorted(usage_tasks.usage_collect_due.delay().get()) == sorted([w.cluster.pk, broken.pk])
    failed = UsageCollection.objects.get(cluster=broken)
    assert (
        failed.state == "failed" and "Could not reach" in failed.message and failed.last_collected_at is None
    )
    assert UsageCollection.objects.get(cluster=w.cluster).state == "ok"
    assert usage_tasks.usage_collect_due.delay().get() == []  # nobody is due again before 60 s


# --------------------------------------------------------------------------------- beat's rollups


@pytest.mark.django_db
def test_interval_per_cluster_and_the_rollup_task(platform_admin, settings) -> None:
    cluster = tenant_services.cluster_create(
        acting_user=platform_admin, name=f"c-{uuid.uuid4().hex[:6]}", kind=Cluster.Kind.YARN
    )
    services.hadoop_connection_set(
        acting_user=platform_admin,
        cluster=cluster,
        spec=services.HadoopConnectionSpec(
            rm_urls="http://127.0.0.1:9", webhdfs_urls="http://127.0.0.1:9", user="x"
        ),
    )
    now = timezone.now()
    assert usage_services.usage_clusters_claim(now=now) == [cluster.pk]
    assert usage_services.usage_clusters_claim(now=now + datetime.timedelta(seconds=30)) == []
    assert usage_services.usage_clusters_claim(now=now + datetime.timedelta(seconds=60)) == [cluster.pk]
    with pytest.raises(ValidationError):
        usage_services.usage_interval_set(acting_user=platform_admin, cluster=cluster, interval_seconds=5)
    usage_services.usage_interval_set(acting_user=platform_admin, cluster=cluster, interval_seconds=300)
    assert AuditEvent.objects.filter(action="USAGE_INTERVAL_UPDATED").get().after == {"interval_seconds": 300}
    nobody = user("nobody")
    with pytest.raises(PermissionDenied):
        usage_services.usage_interval_set(acting_user=nobody, cluster=cluster, interval_seconds=None)
    assert UsageCollection.objects.get(cluster=cluster).interval_seconds == 300
    assert usage_services.usage_clusters_claim(now=now + datetime.timedelta(seconds=120)) == []
    assert usage_services.usage_clusters_claim(now=now + datetime.timedelta(seconds=360)) == [cluster.pk]

    tenant = tenant_services.tenant_create(acting_user=platform_admin, parent=None, name="r1", allocations=[])
    day = now.astimezone(datetime.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for hours, value in ((-20, 2), (-19, 4), (1, 6)):
        usage_services.usage_record(
            cluster=cluster,
            time=day + datetime.timedelta(hours=hours),
            readings=[UsageReading(tenant.pk, {"memory_used_bytes": value})],
        )
    result = usage_services.usage_rollup_recent(now=day + datetime.timedelta(hours=1, minutes=30))
    assert result["hourly"] == 1 and result["daily"] == 1
    daily = UsageRollup.objects.get(resolution="day", tenant=tenant)
    assert (daily.time, daily.memory_used_bytes, daily.samples) == (day - datetime.timedelta(days=1), 3, 2)
    again = usage_services.usage_rollup_recent(now=day + datetime.timedelta(hours=1, minutes=35))
    assert again["daily"] == 0  # yesterday is done once
