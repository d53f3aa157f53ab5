"""Pushes to one Hadoop cluster through the services, against the real mini cluster and PostgreSQL:
queues an admin made by hand under root, the per-cluster lock that keeps two workers from planning
the queue tree at once, and what a full reconcile costs in requests."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import requests
from django.db import connection

from provisioning import services
from provisioning.backends.yarn import as_list
from provisioning.models import ClusterSyncStatus
from tenants import services as tenant_services
from tenants.models import Cluster, ResourcePool, Tenant
from tests.clusters.fault_proxy import Entry, FaultProxy
from tests.clusters.hadoop import HadoopTestCluster
from tests.provisioning.conftest import drain, queue_tree_reset
from tests.provisioning.test_yarn_backend import GIB, JSON, live_queues, params, partition, put_conf, rm
from tests.tenants.builders import spec

pytestmark = pytest.mark.hadoop
PREFIX = "yarn.scheduler.capacity."


def scheduler_conf(cluster: HadoopTestCluster) -> dict[str, str]:
    response = rm(cluster, "GET", "/scheduler-conf", headers=JSON)
    assert response.status_code == 200, response.text
    return {p["name"]: p["value"] for p in as_list(response.json()["property"])}


def connect(admin: Any, cluster: Cluster, rm_url: str, webhdfs_url: str, user: str) -> None:
    services.hadoop_connection_set(
        acting_user=admin,
        cluster=cluster,
        spec=services.HadoopConnectionSpec(rm_urls=rm_url, webhdfs_urls=webhdfs_url, user=user),
    )


def conf_requests(log: list[Entry]) -> list[Entry]:
    return [e for e in log if e.path.startswith("/ws/v1/cluster/scheduler-conf")]


def states(cluster: Cluster) -> dict[str, str]:
    rows = ClusterSyncStatus.objects.filter(cluster=cluster).select_related("sync")
    return {row.sync.tenant_path: row.state for row in rows}


# --------------------------------------------------------------------------- hand-made queues


@pytest.mark.django_db
def test_a_queue_made_by_hand_under_root_is_counted_and_left_alone(
    hadoop: HadoopTestCluster, yarn_world
) -> None:
    w = yarn_world  # t1 40 %, t2 30 %, t3 20 % (and all of HighMEM)
    put_conf(
        hadoop,
        {
            "add-queue": [
                {"queue-name": "root.adhoc", "params": params(capacity="30", **{"maximum-capacity": "50"})}
            ],
            "update-queue": [{"queue-name": "root.default", "params": params(capacity="70")}],
        },
    )
    adhoc_before = {k: v for k, v in scheduler_conf(hadoop).items() if k.startswith(f"{PREFIX}root.adhoc.")}
    try:
        with FaultProxy(hadoop.rm_url, None) as proxy:
            connect(w.admin, w.cluster, proxy.url, hadoop.webhdfs_url, hadoop.user)
            # 90 % for the tenants and 30 % for root.adhoc: refused by Canopy, before any write.
            for tenant in (w.t1, w.t2, w.t3):
                [outcome] = services.tenant_reconcile(tenant_id=tenant.pk).clusters
                assert outcome.state == "failed" and not outcome.transient
                assert outcome.message == (
                    "Refused before any change was sent: The children of root take 120% of the default "
                    "partition (of which not managed by Canopy: root.adhoc 30%); at most 100."
                )
            assert proxy.writes() == []
            assert [e.method for e in proxy.log] == ["GET"] * 3  # one read of scheduler-conf each

            # t1 gives up 30 points: 60 % for the tenants, 30 % for root.adhoc, 10 % for root.default.
            tenant_services.allocation_set(
                acting_user=w.admin,
                tenant=w.t1,
                spec=spec(w.pool, capacity_percent=Decimal(10), max_capacity_percent=Decimal(80)),
            )
            proxy.clear()
            drain()
            assert [e.method for e in proxy.writes()] == ["POST", "PUT"]  # validate, one batched change
        assert states(w.cluster) == {"t1": "synced", "t2": "synced", "t3": "synced"}

        queues = live_queues(hadoop)
        root_children = ("root.default", "root.t1", "root.t2", "root.t3", "root.adhoc")
        assert sum(queues[q]["capacity"] for q in root_children) == pytest.approx(100)
        assert queues["root.default"]["capacity"] == pytest.approx(10)
        assert queues["root.adhoc"]["capacity"] == pytest.approx(30)
        high = sum(partition(queues[q], "HighMEM")["capacity"] for q in ("root.default", "root.t3"))
        assert high == pytest.approx(100)
        after = {k: v for k, v in scheduler_conf(hadoop).items() if k.startswith(f"{PREFIX}root.adhoc.")}
        assert after == adhoc_before  # untouched: no Canopy key added, nothing changed
    finally:
        default = float(scheduler_conf(hadoop)[f"{PREFIX}root.default.capacity"])
        put_conf(hadoop, {"update-queue": [{"queue-name": "root.adhoc", "params": params(state="STOPPED")}]})
        put_conf(
            hadoop,
            {
                "remove-queue": "root.adhoc",
                "update-queue": [
                    {"queue-name": "root.default", "params": params(capacity=f"{default + 30:g}")}
                ],
            },
        )


# --------------------------------------------------------------------------- a small world of our own


@dataclass
class World:
    admin: Any
    cluster: Cluster
    pool: ResourcePool
    tenants: list[Tenant]


def build_world(admin: Any, count: int, percent: int, directories: int = 0) -> World:
    """A Hadoop cluster with `count` top-level tenants of `percent` % each; the first
    `directories` of them have an HDFS directory with quotas."""
    cluster = tenant_services.cluster_create(
        acting_user=admin, name=f"hadoop-{uuid.uuid4().hex[:6]}", kind=Cluster.Kind.YARN
    )
    pool = tenant_services.pool_update(
        acting_user=admin,
        pool=ResourcePool.objects.get(cluster=cluster, name="default"),
        cpu_capacity_millicores=64_000,
        memory_capacity_bytes=256 * GIB,
    )
    tenants = []
    for index in range(count):
        tenant = tenant_services.tenant_create(
            acting_user=admin,
            parent=None,
            name=f"t{index + 1:02d}",
            allocations=[spec(pool, capacity_percent=Decimal(percent))],
        )
        if index < directories:
            tenant_services.storage_create(
                acting_user=admin,
                tenant=tenant,
                spec=tenant_services.StorageSpec(cluster=cluster, space_quota_bytes=GIB, file_quota=1000),
            )
        tenants.append(tenant)
    return World(admin, cluster, pool, tenants)


@pytest.fixture
def clean_tree(hadoop_cluster: HadoopTestCluster) -> Iterator[HadoopTestCluster]:
    yield hadoop_cluster
    queue_tree_reset(hadoop_cluster, [])
    requests.delete(
        f"{hadoop_cluster.webhdfs_url}/webhdfs/v1/tenant",
        params={"op": "DELETE", "recursive": "true", "user.name": hadoop_cluster.user},
        timeout=60,
    )


# --------------------------------------------------------------------------- what a reconcile costs


@pytest.mark.django_db
def test_a_full_reconcile_with_nothing_to_do_reads_once_per_tenant_and_writes_nothing(
    clean_tree: HadoopTestCluster, platform_admin
) -> None:
    world = build_world(platform_admin, count=20, percent=4, directories=2)
    with (
        FaultProxy(clean_tree.rm_url, None) as rm_proxy,
        FaultProxy(clean_tree.webhdfs_url, None) as hdfs_proxy,
    ):
        connect(platform_admin, world.cluster, rm_proxy.url, hdfs_proxy.url, clean_tree.user)
        drain()
        # The first push sends the whole tree (20 queues and root.default) in one change; the 19
        # pushes after it each read the configuration once and find nothing to do.
        assert len(conf_requests(rm_proxy.log)) == 20 + 2  # 20 reads, one validate, one PUT
        assert [e.method for e in rm_proxy.writes()] == ["POST", "PUT"]
        assert live_queues(clean_tree)["root.default"]["capacity"] == pytest.approx(20)
        rm_proxy.clear()
        hdfs_proxy.clear()

        reconciled = services.reconcile_all()  # beat's full reconcile; tasks run in-process here

        assert len(reconciled) == 20
        # Exactly one GET of scheduler-conf per tenant and nothing else on the RM.
        assert [(e.method, e.path.split("?")[0]) for e in rm_proxy.log] == [
            ("GET", "/ws/v1/cluster/scheduler-conf")
        ] * 20
        # Each push reads only its own tenant's directory (status, ACL, quota): 2 x 3, not 20 x 6.
        assert len(hdfs_proxy.log) == 2 * 3
        assert hdfs_proxy.writes() == []
    assert set(states(world.cluster).values()) == {"synced"}
    assert not ClusterSyncStatus.objects.filter(
        cluster=world.cluster, drift_detected_at__isnull=False
    ).exists()


# --------------------------------------------------------------------------- the per-cluster lock


def push_in_thread(
    tenant_id: int, results: dict[int, Any], start: threading.Barrier | None = None
) -> threading.Thread:
    """`tenant_reconcile` in its own thread, hence its own database connection (closed after)."""

    def run() -> None:
        try:
            if start is not None:
                start.wait(timeout=10)
            outcome = services.tenant_reconcile(tenant_id=tenant_id)
            results[tenant_id] = (outcome, time.monotonic())
        except Exception as error:  # surfaced by the test's assertions on `results`
            results[tenant_id] = (error, time.monotonic())
        finally:
            connection.close()

    thread = threading.Thread(target=run, name=f"push-{tenant_id}")
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_a_push_waits_for_the_cluster_lock(clean_tree: HadoopTestCluster, platform_admin) -> None:
    world = build_world(platform_admin, count=1, percent=30)
    with FaultProxy(clean_tree.rm_url, None) as proxy:
        connect(platform_admin, world.cluster, proxy.url, clean_tree.webhdfs_url, clean_tree.user)
        queue_tree_reset(clean_tree, [])  # the connection's own push ran in-process: start again
        proxy.clear()
        results: dict[int, Any] = {}
        with services.cluster_lock(world.cluster):  # as another worker would hold it
            held_from = time.monotonic()
            thread = push_in_thread(world.tenants[0].pk, results)
            time.sleep(1.5)
            assert thread.is_alive()
            assert proxy.log == []  # not even a read: planning happens under the lock
            released = time.monotonic()
        thread.join(timeout=30)
        outcome, finished = results[world.tenants[0].pk]
        assert not isinstance(outcome, Exception), outcome
        assert [c.state for c in outcome.clusters] == ["synced"]
        assert finished >= released >= held_from + 1.5
        assert [e.method for e in proxy.writes()] == ["POST", "PUT"]
    assert live_queues(clean_tree)["root.t01"]["capacity"] == pytest.approx(30)


@pytest.mark.django_db(transaction=True)
def test_two_workers_pushing_one_cluster_take_turns(clean_tree: HadoopTestCluster, platform_admin) -> None:
    world = build_world(platform_admin, count=2, percent=25)
    with FaultProxy(clean_tree.rm_url, None) as proxy:
        connect(platform_admin, world.cluster, proxy.url, clean_tree.webhdfs_url, clean_tree.user)
        queue_tree_reset(clean_tree, [])  # both tenants' queues are to be made again
        proxy.clear()
        # A slow RM: the first push's PUT takes 1.5 s. Without the lock, the other push would read
        # the configuration meanwhile and send the same change again (refused: queues exist).
        proxy.delay(1.5, times=1, method="PUT")
        results: dict[int, Any] = {}
        start = threading.Barrier(2)
        began = time.monotonic()
        threads = [push_in_thread(t.pk, results, start) for t in world.tenants]
        for thread in threads:
            thread.join(timeout=60)
        outcomes = [results[t.pk][0] for t in world.tenants]
        assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
        assert [[c.state for c in o.clusters] for o in outcomes] == [["synced"], ["synced"]]
        # One read, validate and PUT for the first; the second read only after that PUT was done.
        assert [e.method for e in conf_requests(proxy.log)] == ["GET", "POST", "PUT", "GET"]
        assert max(finished for _, finished in results.values()) - began >= 1.5
    assert states(world.cluster) == {"t01": "synced", "t02": "synced"}
    queues = live_queues(clean_tree)
    assert queues["root.t01"]["capacity"] == pytest.approx(25)
    assert queues["root.t02"]["capacity"] == pytest.approx(25)
    assert queues["root.default"]["capacity"] == pytest.approx(50)
