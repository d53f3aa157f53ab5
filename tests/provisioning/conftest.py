"""Fixtures for provisioning: an export folder per test, Canopy's own ServiceAccount on the real
test cluster (with deploy/clusterrole.yaml, so the manifest is proven sufficient), the fault proxy
in front of it, and a cluster row connected through that proxy; the MRS world on the Hadoop mini
cluster, put back as it was afterwards."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from kubernetes import client
from kubernetes.client import ApiException

from provisioning import services
from provisioning.backends.base import Scope
from provisioning.backends.kubernetes import KubernetesBackend
from provisioning.backends.yarn import HadoopAccess, YarnBackend
from provisioning.desired.kueue import CLUSTER_OWNER_ID, TENANT_KINDS
from provisioning.desired.yarn import YarnSettings, desired_objects
from provisioning.models import ProvisioningIntent, TenantSync
from tenants import services as tenant_services
from tenants.models import Cluster, ResourcePool
from tenants.quantities import parse_memory_bytes
from tests.clusters import kube
from tests.clusters.fault_proxy import FaultProxy
from tests.clusters.hadoop import HadoopTestCluster
from tests.clusters.kueue import WORKER_ROLE_LABEL

GI = parse_memory_bytes("1Gi")


@pytest.fixture(autouse=True)
def export_dir(settings, tmp_path) -> Path:
    """Every test exports into its own folder (never the repository's export/)."""
    settings.CANOPY_EXPORT_DIR = str(tmp_path / "export")
    settings.CANOPY_PROVISIONING_RETRY_BASE_SECONDS = 0.1
    return Path(settings.CANOPY_EXPORT_DIR)


def drain(max_rounds: int = 10) -> None:
    """Run the pushes the open intents ask for, as the worker would, until none is left."""
    for _ in range(max_rounds):
        open_ids = sorted(
            set(
                ProvisioningIntent.objects.filter(state__in=services.OPEN).values_list("tenant_id", flat=True)
            )
        )
        if not open_ids:
            return
        for tenant_id in open_ids:
            with contextlib.suppress(services.RetryLater):
                services.tenant_reconcile(tenant_id=tenant_id)
    raise AssertionError(f"intents still open after {max_rounds} rounds")


# --------------------------------------------------------------------------- the real cluster


@pytest.fixture(scope="session")
def canopy_token(kube_cluster) -> str:
    """deploy/clusterrole.yaml applied as the cluster admin; a token for its `canopy` ServiceAccount."""
    return kube.canopy_token(kube_cluster)


@pytest.fixture(scope="session")
def session_proxy(kube_cluster) -> Iterator[FaultProxy]:
    with FaultProxy(kube_cluster.server, kube_cluster.ca_data) as proxy:
        yield proxy


@pytest.fixture
def proxy(session_proxy) -> FaultProxy:
    session_proxy.clear()
    return session_proxy


@pytest.fixture
def kube_admin(kube_cluster) -> Iterator[client.ApiClient]:
    with kube_cluster.admin_client() as api:
        yield api


def connect(admin, cluster: Cluster, kube_cluster, proxy: FaultProxy, token: str, **extra):
    """Canopy reaches the cluster through the proxy; people's kubeconfigs point at the real server."""
    return services.connection_set(
        acting_user=admin,
        cluster=cluster,
        spec=services.ConnectionSpec(
            mode="token",
            server=proxy.url,
            token=token,
            user_server=kube_cluster.server,
            user_ca_data=kube_cluster.ca_data.decode() if kube_cluster.ca_data else "",
            **extra,
        ),
    )


@pytest.fixture
def gpu_cluster(platform_admin, kube_cluster, proxy, canopy_token) -> Iterator[tuple[Cluster, ResourcePool]]:
    """A Kubernetes cluster row (3 GPUs, 12 CPUs, 90Gi) connected to the test cluster. Whatever its
    tenants got on the cluster is removed afterwards."""
    cluster = tenant_services.cluster_create(
        acting_user=platform_admin, name=f"k8s-{uuid.uuid4().hex[:6]}", kind=Cluster.Kind.KUBERNETES
    )
    pool = tenant_services.pool_update(
        acting_user=platform_admin,
        pool=ResourcePool.objects.get(cluster=cluster),
        gpu_capacity=3,
        cpu_capacity_millicores=12_000,
        memory_capacity_bytes=90 * GI,
    )
    connection = connect(platform_admin, cluster, kube_cluster, proxy, canopy_token)
    yield cluster, pool
    proxy.faults.clear()
    with KubernetesBackend(connection.access()) as backend:
        for sync in TenantSync.objects.exclude(tenant_id=CLUSTER_OWNER_ID):
            with contextlib.suppress(Exception):  # best effort on the way out
                backend.sync(Scope(sync.tenant_id, sync.namespace), [])


# --------------------------------------------------------------------------- the Kueue cluster


@pytest.fixture(scope="session")
def kueue_canopy_token(kueue_cluster) -> str:
    """deploy/clusterrole.yaml on the Kueue cluster, and a token of Canopy's ServiceAccount there."""
    return kube.canopy_token(kueue_cluster)


@pytest.fixture(scope="session")
def kueue_session_proxy(kueue_cluster) -> Iterator[FaultProxy]:
    with FaultProxy(kueue_cluster.server, kueue_cluster.ca_data) as proxy:
        yield proxy


@pytest.fixture
def kueue_proxy(kueue_session_proxy) -> FaultProxy:
    kueue_session_proxy.clear()
    return kueue_session_proxy


@pytest.fixture
def kueue_admin(kueue_cluster) -> Iterator[client.ApiClient]:
    with kueue_cluster.admin_client() as api:
        yield api


@pytest.fixture
def kueue_gpu_cluster(
    platform_admin, kueue_cluster, kueue_proxy, kueue_canopy_token
) -> Iterator[tuple[Cluster, ResourcePool, ResourcePool]]:
    """A cluster row with the quota engine `kueue`, reached through the fault proxy, with the pool
    `workers` (the Arena document's three worker nodes: 3 GPUs, 12 CPUs, 90 GiB) and the pool `t4`
    (4 GPUs on the T4 nodes). What its tenants got on the cluster is removed afterwards."""
    cluster = tenant_services.cluster_create(
        acting_user=platform_admin, name=f"kueue-{uuid.uuid4().hex[:6]}", kind=Cluster.Kind.KUBERNETES
    )
    workers = tenant_services.pool_create(
        acting_user=platform_admin,
        cluster=cluster,
        name="workers",
        node_selector=f"{WORKER_ROLE_LABEL}=",
        gpu_capacity=3,
        cpu_capacity_millicores=12_000,
        memory_capacity_bytes=90 * GI,
    )
    t4 = tenant_services.pool_create(
        acting_user=platform_admin,
        cluster=cluster,
        name="t4",
        node_selector="gpu=t4",
        gpu_capacity=4,
        cpu_capacity_millicores=16_000,
        memory_capacity_bytes=64 * GI,
    )
    connection = connect(
        platform_admin, cluster, kueue_cluster, kueue_proxy, kueue_canopy_token, quota_engine="kueue"
    )
    yield cluster, workers, t4
    kueue_proxy.faults.clear()
    with KubernetesBackend(connection.access()) as backend:
        # The tenants' objects; the cluster's own stay for the session (see test_kueue_arena).
        for sync in TenantSync.objects.exclude(tenant_id=CLUSTER_OWNER_ID):
            with contextlib.suppress(Exception):  # best effort on the way out
                backend.sync(Scope(sync.tenant_id, sync.namespace, TENANT_KINDS), [])


def wait_for_namespace_ready(core: client.CoreV1Api, namespace: str) -> None:
    """Pods are admitted once the `default` ServiceAccount exists (ServiceAccount admission)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            core.read_namespaced_service_account("default", namespace)
            return
        except ApiException as error:
            if error.status != 404:
                raise
        time.sleep(0.1)
    raise AssertionError(f"no default ServiceAccount in {namespace}")


# --------------------------------------------------------------------------- the Hadoop mini cluster


def queue_tree_reset(cluster: HadoopTestCluster, labels: list[str]) -> None:
    """Every Canopy queue stopped and removed, root.default back to 100 % and root's ACLs open:
    the mini cluster is shared by the whole session."""
    access = HadoopAccess(rm_urls=[cluster.rm_url], webhdfs_urls=[cluster.webhdfs_url], user=cluster.user)
    with YarnBackend(access) as cleanup:
        cleanup.sync(Scope(0, ""), desired_objects([], YarnSettings(lock_root=False), partitions=labels))
        entries = [{"key": key, "value": "*"} for key in ("acl_submit_applications", "acl_administer_queue")]
        requests.put(
            f"{cluster.rm_url}/ws/v1/cluster/scheduler-conf",
            params={"user.name": cluster.user},
            json={"update-queue": [{"queue-name": "root", "params": {"entry": entries}}]},
            timeout=60,
        )
        assert not [k for k in cleanup.scheduler_conf() if ".root.t" in k]


@pytest.fixture
def hadoop(hadoop_cluster: HadoopTestCluster, yarn_world) -> Iterator[HadoopTestCluster]:
    """The MRS world connected to the mini cluster (its HighMEM label added through the RM's REST
    API); afterwards the queue tree and directories are put back as they were."""
    added = requests.post(
        f"{hadoop_cluster.rm_url}/ws/v1/cluster/add-node-labels",
        params={"user.name": hadoop_cluster.user},
        json={"nodeLabelInfo": [{"name": "HighMEM", "exclusivity": True}]},
        headers={"Accept": "application/json"},
        timeout=60,
    )
    assert added.status_code == 200, added.text
    yield hadoop_cluster
    queue_tree_reset(hadoop_cluster, ["HighMEM"])
    requests.delete(
        f"{hadoop_cluster.webhdfs_url}/webhdfs/v1/tenant",
        params={"op": "DELETE", "recursive": "true", "user.name": hadoop_cluster.user},
        timeout=60,
    )
