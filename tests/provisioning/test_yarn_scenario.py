"""The MRS document done by Canopy against the real Hadoop test cluster, through the same machinery
as Kubernetes: intents recorded with each change, the push (`tenant_reconcile`), per-tenant
status, preview and drift, then a tenant's removal (stop, drain, remove)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from provisioning import services
from provisioning.backends.yarn import YarnBackend
from provisioning.models import ClusterSyncStatus
from tenants import services as tenant_services
from tests.clusters.hadoop import HadoopTestCluster
from tests.provisioning.conftest import drain
from tests.provisioning.test_yarn_backend import GIB, JSON, live_queues, partition, rm, webhdfs
from tests.tenants.builders import spec

pytestmark = [pytest.mark.hadoop, pytest.mark.django_db]


def test_mrs_scenario_through_the_machinery(hadoop: HadoopTestCluster, yarn_world) -> None:
    w = yarn_world
    sub = tenant_services.tenant_create(
        acting_user=w.admin,
        parent=w.t1,
        name="etl",
        allocations=[spec(w.pool, capacity_percent=Decimal(50), max_capacity_percent=Decimal(100))],
    )
    tenant_services.storage_create(
        acting_user=w.admin,
        tenant=w.t1,
        spec=tenant_services.StorageSpec(cluster=w.cluster, space_quota_bytes=GIB, file_quota=1000),
    )
    connection = services.hadoop_connection_set(
        acting_user=w.admin,
        cluster=w.cluster,
        spec=services.HadoopConnectionSpec(
            rm_urls=f"http://127.0.0.1:9/\n{hadoop.rm_url}",  # the first RM is down: fail over
            webhdfs_urls=hadoop.webhdfs_url,
            user=hadoop.user,
        ),
    )
    check = services.connection_test(acting_user=w.admin, cluster=w.cluster)
    assert check.ok, check.message
    assert check.version.startswith("ResourceManager 3.4.2")

    drain()

    statuses = ClusterSyncStatus.objects.filter(cluster=w.cluster).select_related("sync")
    assert {s.sync.tenant_path: s.state for s in statuses} == {
        "t1": "synced",
        "t2": "synced",
        "t3": "synced",
        "t1/etl": "synced",
    }
    queues = live_queues(hadoop)
    assert queues["root.t1"]["capacity"] == pytest.approx(40)
    assert queues["root.t1"]["maxCapacity"] == pytest.approx(80)
    assert queues["root.t2"]["capacity"] == pytest.approx(30)
    assert queues["root.t3"]["capacity"] == pytest.approx(20)
    assert queues["root.default"]["capacity"] == pytest.approx(10)
    assert queues["root.t1.etl"]["capacity"] == pytest.approx(50)
    assert queues["root.t1.default"]["capacity"] == pytest.approx(50)
    assert partition(queues["root.t3"], "HighMEM")["capacity"] == pytest.approx(100)
    assert queues["root.t3"]["nodeLabels"] in ("HighMEM", ["HighMEM"])
    assert not queues["root.t2"].get("nodeLabels")  # no pool with a label: no partition at all
    conf = YarnBackend(connection.access()).scheduler_conf()
    assert conf["yarn.scheduler.capacity.root.t1.acl_administer_queue"] == "usera,userc"
    assert conf["yarn.scheduler.capacity.root.t3.acl_submit_applications"] == "userb"
    assert conf["yarn.scheduler.capacity.root.acl_submit_applications"] == " "

    summary = webhdfs(hadoop, "GET", "/tenant/t1", "GETCONTENTSUMMARY").json()["ContentSummary"]
    assert (summary["quota"], summary["spaceQuota"]) == (1000, GIB)
    acl = webhdfs(hadoop, "GET", "/tenant/t1", "GETACLSTATUS").json()["AclStatus"]
    assert acl["group"] == "t1"
    assert {"group:t1:rwx", "user:usera:rwx", "user:userc:rwx"} <= set(acl["entries"])

    # Nothing left to do: the preview is empty.
    preview = services.tenant_preview(acting_user=w.admin, tenant=w.t2)
    assert [p.plan.is_empty for p in preview if p.plan is not None] == [True]

    # A preview of an allocation change shows the queue and the remainder it takes from.
    [changed] = services.allocation_preview(
        acting_user=w.admin, tenant=w.t2, spec=spec(w.pool, capacity_percent=Decimal(35))
    )
    fields = {
        (c.ref.name, ".".join(f.path)): (f.live, f.desired) for c in changed.plan.changes for f in c.fields
    }
    assert fields[("root.t2", "spec.capacity")] == ("30", "35")
    assert fields[("root.default", "spec.capacity")] == ("10", "5")
    assert live_queues(hadoop)["root.t2"]["capacity"] == pytest.approx(30)  # only a preview

    # Drift: capacity changed by hand on the RM is found by the full reconcile and repaired.
    rm(
        hadoop,
        "PUT",
        "/scheduler-conf",
        json={
            "update-queue": [
                {"queue-name": "root.t2", "params": {"entry": [{"key": "maximum-capacity", "value": "35"}]}}
            ]
        },
        headers=JSON,
    )
    services.tenant_reconcile(tenant_id=w.t2.pk, check_drift=True)
    status = ClusterSyncStatus.objects.get(cluster=w.cluster, sync__tenant_id=w.t2.pk)
    assert status.state == "synced"
    assert "maximum-capacity is '35', wanted '100'" in status.drift_detail
    assert live_queues(hadoop)["root.t2"]["maxCapacity"] == pytest.approx(100)

    # Removing a tenant stops, drains and removes its queue; root.default gets its share.
    tenant_services.tenant_delete(acting_user=w.admin, tenant=w.t2, confirm=True)
    drain()
    queues = live_queues(hadoop)
    assert "root.t2" not in queues
    assert queues["root.default"]["capacity"] == pytest.approx(40)
    assert not ClusterSyncStatus.objects.filter(sync__tenant_id=w.t2.pk).exists()
    assert sub.pk
