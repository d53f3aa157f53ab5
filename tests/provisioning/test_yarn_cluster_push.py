"""Pushes to one Hadoop cluster through the services, against the real mini cluster and PostgreSQL:
queues an admin made by hand under root."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from provisioning import services
from provisioning.backends.yarn import as_list
from provisioning.models import ClusterSyncStatus
from tenants import services as tenant_services
from tenants.models import Cluster
from tests.clusters.fault_proxy import Entry, FaultProxy
from tests.clusters.hadoop import HadoopTestCluster
from tests.provisioning.conftest import drain
from tests.provisioning.test_yarn_backend import JSON, live_queues, params, partition, put_conf, rm
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
