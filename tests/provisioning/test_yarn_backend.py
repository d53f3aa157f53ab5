"""The YARN/HDFS backend against the real Hadoop mini cluster (session-scoped: every test leaves
the queue tree as it found it)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

from provisioning.backends.base import BackendError, Scope
from provisioning.backends.yarn import HadoopAccess, YarnBackend, as_list
from provisioning.desired.yarn import (
    QueueShare,
    RuleViolation,
    StorageDir,
    YarnSettings,
    YarnTenant,
    desired_objects,
)
from tests.clusters.fault_proxy import FaultProxy
from tests.clusters.hadoop import HadoopTestCluster

pytestmark = pytest.mark.hadoop

JSON = {"Accept": "application/json"}
GIB = 1024**3
SCOPE = Scope(0, "")
LABEL = "HighMEM"


def rm(cluster: HadoopTestCluster, method: str, path: str, **kwargs: Any) -> requests.Response:
    params = {"user.name": cluster.user, **kwargs.pop("params", {})}
    return requests.request(
        method, f"{cluster.rm_url}/ws/v1/cluster{path}", params=params, timeout=60, **kwargs
    )


def webhdfs(cluster: HadoopTestCluster, method: str, path: str, op: str, **params: Any) -> requests.Response:
    return requests.request(
        method,
        f"{cluster.webhdfs_url}/webhdfs/v1{path}",
        params={"op": op, "user.name": cluster.user, **params},
        timeout=60,
    )


def live_queues(cluster: HadoopTestCluster) -> dict[str, dict[str, Any]]:
    info = rm(cluster, "GET", "/scheduler", headers=JSON).json()["scheduler"]["schedulerInfo"]
    found: dict[str, dict[str, Any]] = {}
    pending = as_list((info.get("queues") or {}).get("queue"))
    while pending:
        queue = pending.pop()
        found[queue["queuePath"]] = queue
        pending.extend(as_list((queue.get("queues") or {}).get("queue")))
    return found


def partition(queue: dict[str, Any], label: str) -> dict[str, Any]:
    for entry in as_list((queue.get("capacities") or {}).get("queueCapacitiesByPartition")):
        if (entry.get("partitionName") or "") == label:
            return entry
    raise AssertionError(f"{queue['queuePath']} has no partition {label!r}")


def access(cluster: HadoopTestCluster, **overrides: Any) -> HadoopAccess:
    values: dict[str, Any] = {
        "rm_urls": [cluster.rm_url],
        "webhdfs_urls": [cluster.webhdfs_url],
        "user": cluster.user,
        "drain_timeout_seconds": 10,
        "poll_seconds": 0.2,
    }
    values.update(overrides)
    return HadoopAccess(**values)


SETTINGS = YarnSettings(directory_owner="hdfs")


def tenant(tenant_id: int, path: str, *shares: QueueShare, **kwargs: Any) -> YarnTenant:
    return YarnTenant(tenant_id=tenant_id, path=path, group=path.replace("/", "-"), shares=shares, **kwargs)


def share(capacity: int, maximum: int | None = None, label: str = "") -> QueueShare:
    return QueueShare(label, Decimal(capacity), Decimal(maximum) if maximum is not None else None)


@pytest.fixture
def yarn(hadoop_cluster: HadoopTestCluster) -> Iterator[YarnBackend]:
    """A backend on the mini cluster; afterwards every Canopy queue is stopped and removed and
    root.default gets its 100 % back (through the backend itself)."""
    backend = YarnBackend(access(hadoop_cluster))
    before = backend.scheduler_conf()
    yield backend
    cleanup = YarnBackend(access(hadoop_cluster))
    labels = [LABEL] if LABEL in str(cleanup.scheduler_conf()) else []
    cleanup.sync(SCOPE, desired_objects([], YarnSettings(lock_root=False), partitions=labels))
    root = {"acl_submit_applications": "*", "acl_administer_queue": "*"}
    body = {
        "update-queue": [
            {"queue-name": "root", "params": {"entry": [{"key": k, "value": v} for k, v in root.items()]}}
        ]
    }
    requests.put(
        f"{hadoop_cluster.rm_url}/ws/v1/cluster/scheduler-conf",
        params={"user.name": hadoop_cluster.user},
        json=body,
        timeout=60,
    )
    after = cleanup.scheduler_conf()
    assert not [k for k in after if ".root.t" in k], "Canopy queues left behind"
    assert after.get("yarn.scheduler.capacity.root.default.capacity") in (
        "100",
        "100.0",
        before.get("yarn.scheduler.capacity.root.default.capacity"),
    )
    cleanup.close()
    backend.close()


def test_scenario_queue_tree(yarn: YarnBackend, hadoop_cluster: HadoopTestCluster) -> None:
    tenants = [
        tenant(1, "t1", share(40, 80), submit_users=("userc",), admin_users=("usera",)),
        tenant(2, "t2", share(30), admin_users=("usera",), submit_groups=("analysts",)),
        tenant(3, "t3", share(20), admin_users=("userb",)),
        tenant(4, "t1/sub", share(50, 100), submit_users=("userd",)),
    ]
    desired = desired_objects(tenants, SETTINGS)
    result = yarn.sync(SCOPE, desired)
    assert result.writes >= 1

    queues = live_queues(hadoop_cluster)
    assert {"root.t1", "root.t2", "root.t3", "root.t1.sub", "root.t1.default", "root.default"} <= set(queues)
    assert queues["root.t1"]["capacity"] == pytest.approx(40)
    assert queues["root.t1"]["maxCapacity"] == pytest.approx(80)
    assert queues["root.t2"]["capacity"] == pytest.approx(30)
    assert queues["root.default"]["capacity"] == pytest.approx(10)
    assert queues["root.t1.sub"]["capacity"] == pytest.approx(50)
    assert queues["root.t1.default"]["capacity"] == pytest.approx(50)
    conf = yarn.scheduler_conf()
    prefix = "yarn.scheduler.capacity."
    assert conf[f"{prefix}root.t1.acl_administer_queue"] == "usera"
    assert conf[f"{prefix}root.t1.acl_submit_applications"] == "usera"  # a parent: admins only
    assert conf[f"{prefix}root.t1.default.acl_submit_applications"] == "userc"
    assert conf[f"{prefix}root.t2.acl_submit_applications"] == " analysts"
    assert conf[f"{prefix}root.acl_submit_applications"] == " "

    # A second push finds nothing to do and writes nothing.
    again = yarn.plan(SCOPE, desired)
    assert again.is_empty, again.describe()


def test_node_label_pool_and_hdfs_directories(yarn: YarnBackend, hadoop_cluster: HadoopTestCluster) -> None:
    added = rm(
        hadoop_cluster,
        "POST",
        "/add-node-labels",
        json={"nodeLabelInfo": [{"name": LABEL, "exclusivity": True}]},
        headers=JSON,
    )
    assert added.status_code == 200, added.text
    tenants = [
        tenant(
            3,
            "t3",
            share(20),
            share(100, label=LABEL),
            admin_users=("userb",),
            submit_users=("alice",),
            directories=(StorageDir("t3", space_quota_bytes=GIB, file_quota=1000),),
        ),
        tenant(
            4, "t3/etl", share(60), share(40, 50, label=LABEL), directories=(StorageDir("/tenant/t3-etl"),)
        ),
    ]
    desired = desired_objects(tenants, SETTINGS, hdfs_root="/tenant")
    yarn.sync(SCOPE, desired)

    queues = live_queues(hadoop_cluster)
    assert partition(queues["root.t3"], LABEL)["capacity"] == pytest.approx(100)
    assert partition(queues["root.t3.etl"], LABEL)["capacity"] == pytest.approx(40)
    assert partition(queues["root.t3.etl"], LABEL)["maxCapacity"] == pytest.approx(50)
    assert partition(queues["root.t3.default"], LABEL)["capacity"] == pytest.approx(60)
    assert queues["root.t3.etl"]["capacity"] == pytest.approx(60)

    summary = webhdfs(hadoop_cluster, "GET", "/tenant/t3", "GETCONTENTSUMMARY").json()["ContentSummary"]
    assert (summary["quota"], summary["spaceQuota"]) == (1000, GIB)
    acl = webhdfs(hadoop_cluster, "GET", "/tenant/t3", "GETACLSTATUS").json()["AclStatus"]
    assert (acl["owner"], acl["group"]) == ("hdfs", "t3")
    assert {"group:t3:rwx", "user:alice:rwx", "user:userb:rwx", "default:group:t3:rwx"} <= set(acl["entries"])
    unlimited = webhdfs(hadoop_cluster, "GET", "/tenant/t3-etl", "GETCONTENTSUMMARY").json()["ContentSummary"]
    assert (unlimited["quota"], unlimited["spaceQuota"]) == (-1, -1)
    assert yarn.plan(SCOPE, desired).is_empty

    # Drift: a quota changed by hand is found and put back.
    webhdfs(hadoop_cluster, "PUT", "/tenant/t3", "SETQUOTA", namespacequota="5", storagespacequota="-1")
    drift = yarn.plan(SCOPE, desired)
    assert "namespaceQuota is 5, wanted 1000" in drift.describe()
    yarn.execute(drift, desired)
    assert yarn.plan(SCOPE, desired).is_empty

    for path in ("/tenant/t3", "/tenant/t3-etl"):
        webhdfs(hadoop_cluster, "DELETE", path, "DELETE", recursive="true")


def test_directory_names_reach_hdfs_as_written(yarn: YarnBackend, hadoop_cluster: HadoopTestCluster) -> None:
    """Issue 15: the WebHDFS URL held the path unquoted, so a '#' ended it (the directory above was
    changed instead), a '?' started the query and '%41' arrived as 'A'. Names are taken as written."""
    names = ["a b#c", "q?op=DELETE&recursive=true", "pct%41", "plain"]
    tenants = [
        tenant(
            5,
            "t5",
            share(10),
            directories=tuple(StorageDir(f"/tenant/t5/{name}", file_quota=50) for name in names),
        )
    ]
    desired = desired_objects(tenants, SETTINGS, hdfs_root="/tenant")
    try:
        yarn.sync(SCOPE, desired)
        listing = requests.get(
            f"{hadoop_cluster.webhdfs_url}/webhdfs/v1/tenant/t5",
            params={"op": "LISTSTATUS", "user.name": hadoop_cluster.user},
            timeout=60,
        ).json()["FileStatuses"]["FileStatus"]
        assert sorted(entry["pathSuffix"] for entry in listing) == sorted(names)
        for name in names:
            summary = yarn.read_directory(f"/tenant/t5/{name}")
            assert summary is not None and summary["spec"]["namespaceQuota"] == 50, name
        assert yarn.plan(SCOPE, desired).is_empty
    finally:
        webhdfs(hadoop_cluster, "DELETE", "/tenant/t5", "DELETE", recursive="true")


def test_rule_violation_is_refused_before_any_call(hadoop_cluster: HadoopTestCluster) -> None:
    with FaultProxy(hadoop_cluster.rm_url, None) as proxy:
        backend = YarnBackend(access(hadoop_cluster, rm_urls=[proxy.url]))
        too_much = [tenant(1, "t1", share(70)), tenant(2, "t2", share(50))]
        with pytest.raises(RuleViolation) as refused:
            backend.sync(SCOPE, desired_objects(too_much, SETTINGS))
        assert "The children of root take 120% of the default partition" in str(refused.value)
        below = [tenant(1, "t1", share(50, 40))]
        with pytest.raises(RuleViolation, match="maximum-capacity 40 is below capacity 50"):
            backend.sync(SCOPE, desired_objects(below, SETTINGS))
        assert backend.http.calls == []
        assert proxy.log == []


def put_conf(cluster: HadoopTestCluster, body: dict[str, Any]) -> None:
    """A change made by hand on the RM, as an admin would with `yarn schedulerconf`."""
    response = rm(cluster, "PUT", "/scheduler-conf", json=body, headers=JSON)
    assert response.status_code == 200, response.text


def params(**values: str) -> dict[str, Any]:
    return {"entry": [{"key": k, "value": v} for k, v in values.items()]}


def test_rm_refusal_carries_its_own_message(yarn: YarnBackend, hadoop_cluster: HadoopTestCluster) -> None:
    # An admin stopped the cluster's queues (maintenance): Canopy's rules pass, but the RM refuses
    # a RUNNING queue under a STOPPED root, and its message is what people see.
    put_conf(
        hadoop_cluster,
        {
            "update-queue": [
                {"queue-name": "root", "params": params(state="STOPPED")},
                {"queue-name": "root.default", "params": params(state="STOPPED")},
            ]
        },
    )
    try:
        with pytest.raises(BackendError) as refused:
            yarn.sync(SCOPE, desired_objects([tenant(1, "t1", share(30))], SETTINGS))
        assert refused.value.message.startswith(
            "The ResourceManager refused the queue change: CapacityScheduler configuration validation failed"
        )
        assert "The parent queue:root cannot be STOPPED as the child queue:root.t1 is in RUNNING state" in (
            refused.value.message
        )
        assert not refused.value.transient
        assert "root.t1" not in yarn.live_queues()
    finally:
        put_conf(
            hadoop_cluster,
            {
                "update-queue": [
                    {"queue-name": "root", "params": params(state="RUNNING")},
                    {"queue-name": "root.default", "params": params(state="RUNNING")},
                ]
            },
        )


def test_a_partition_taken_away_leaves_no_capacity_keys_behind(
    yarn: YarnBackend, hadoop_cluster: HadoopTestCluster
) -> None:
    added = rm(
        hadoop_cluster,
        "POST",
        "/add-node-labels",
        json={"nodeLabelInfo": [{"name": LABEL, "exclusivity": True}]},
        headers=JSON,
    )
    assert added.status_code == 200, added.text
    with_label = [
        tenant(3, "t3", share(20), share(60, 80, label=LABEL)),
        tenant(4, "t3/etl", share(50), share(40, 50, label=LABEL)),
    ]
    yarn.sync(SCOPE, desired_objects(with_label, SETTINGS, partitions=[LABEL]))
    key = f"yarn.scheduler.capacity.root.t3.accessible-node-labels.{LABEL}.capacity"
    assert yarn.scheduler_conf()[key] == "60"

    # t3 and its sub-tenant lose the HighMEM pool; the cluster still has it.
    without = [tenant(3, "t3", share(20)), tenant(4, "t3/etl", share(50))]
    desired = desired_objects(without, SETTINGS, partitions=[LABEL])
    plan = yarn.plan(SCOPE, desired)
    unset = {(c.ref.name, f.path[1]) for c in plan.changes for f in c.fields if f.desired is None}
    assert ("root.t3.etl", f"accessible-node-labels.{LABEL}.maximum-capacity") in unset
    with FaultProxy(hadoop_cluster.rm_url, None) as proxy:
        through_proxy = YarnBackend(access(hadoop_cluster, rm_urls=[proxy.url]))
        through_proxy.sync(SCOPE, desired)
        assert [e.method for e in proxy.writes()] == ["POST", "PUT"]  # validate, one batched change

    conf = yarn.scheduler_conf()
    for queue in ("root.t3", "root.t3.etl", "root.t3.default"):
        left = [k for k in conf if k.startswith(f"yarn.scheduler.capacity.{queue}.accessible-node-labels.")]
        assert left == [], left
        assert conf[f"yarn.scheduler.capacity.{queue}.accessible-node-labels"] == " "
    queues = live_queues(hadoop_cluster)
    assert partition(queues["root.default"], LABEL)["capacity"] == pytest.approx(100)
    # Their absence is what Canopy wants: nothing to do, no drift.
    assert yarn.plan(SCOPE, desired).is_empty

    # One put back by hand on a Canopy queue is drift, and unset again.
    put_conf(
        hadoop_cluster,
        {
            "update-queue": [
                {
                    "queue-name": "root.t3.etl",
                    "params": params(**{f"accessible-node-labels.{LABEL}.maximum-capacity": "70"}),
                }
            ]
        },
    )
    drift = yarn.plan(SCOPE, desired)
    assert (
        drift.describe()
        == f"YarnQueue root.t3.etl: spec.accessible-node-labels.{LABEL}.maximum-capacity is '70', wanted None"
    )
    yarn.execute(drift, desired)
    assert yarn.plan(SCOPE, desired).is_empty


def live_queues_of(backend: YarnBackend) -> dict[str, dict[str, str]]:
    return backend.live_queues()


def submit_sleeper(cluster: HadoopTestCluster, queue: str, seconds: int) -> str:
    """An application whose AM container sleeps and never registers: it occupies the queue for
    about `seconds`, then fails, which is all a drain needs."""
    created = rm(cluster, "POST", "/apps/new-application", headers=JSON)
    assert created.status_code == 200, created.text
    app_id = created.json()["application-id"]
    body = {
        "application-id": app_id,
        "application-name": "canopy-drain-test",
        "queue": queue,
        "application-type": "YARN",
        "max-app-attempts": 1,
        "am-container-spec": {"commands": {"command": f"sleep {seconds}"}},
        "resource": {"memory": 128, "vCores": 1},
    }
    submitted = rm(cluster, "POST", "/apps", json=body, headers=JSON)
    assert submitted.status_code == 202, submitted.text
    return app_id


def test_removing_a_tenant_stops_drains_then_removes_its_queue(
    yarn: YarnBackend, hadoop_cluster: HadoopTestCluster
) -> None:
    yarn.sync(
        SCOPE,
        desired_objects(
            [tenant(1, "t1", share(30), submit_users=(hadoop_cluster.user,)), tenant(2, "t2", share(20))],
            SETTINGS,
        ),
    )
    app_id = submit_sleeper(hadoop_cluster, "t1", 4)
    deadline = time.monotonic() + 20
    while live_queues(hadoop_cluster)["root.t1"]["numApplications"] != 1:  # submission is asynchronous
        assert time.monotonic() < deadline, "the application never reached root.t1"
        time.sleep(0.2)
    with FaultProxy(hadoop_cluster.rm_url, None) as proxy:
        backend = YarnBackend(access(hadoop_cluster, rm_urls=[proxy.url]))
        result = backend.sync(SCOPE, desired_objects([tenant(2, "t2", share(20))], SETTINGS))
        puts = [e for e in proxy.writes() if e.method == "PUT"]
        polls = [e for e in proxy.log if e.method == "GET" and "/scheduler?" in e.path]
    assert result.plan.summary()["delete"] == 1
    assert len(puts) == 2  # stop, then (once drained) remove with the capacity handed back
    assert len(polls) >= 2  # it waited for the application
    app = rm(hadoop_cluster, "GET", f"/apps/{app_id}", headers=JSON).json()["app"]
    assert app["state"] in ("FAILED", "FINISHED", "KILLED")
    queues = live_queues(hadoop_cluster)
    assert "root.t1" not in queues
    assert queues["root.default"]["capacity"] == pytest.approx(80)


def test_timeout_after_the_change_was_applied_ends_synced_without_a_second_put(
    yarn: YarnBackend, hadoop_cluster: HadoopTestCluster
) -> None:
    desired = desired_objects([tenant(1, "t1", share(25))], SETTINGS)
    with FaultProxy(hadoop_cluster.rm_url, None) as proxy:
        slow = YarnBackend(access(hadoop_cluster, rm_urls=[proxy.url], timeout_seconds=1.0))
        proxy.delay(2.5, times=1, method="PUT")
        with pytest.raises(BackendError) as timed_out:
            slow.sync(SCOPE, desired)
        assert timed_out.value.transient
        time.sleep(3)  # the delayed PUT reaches the RM meanwhile
        again = slow.plan(SCOPE, desired)
        assert again.is_empty, again.describe()
        assert len([e for e in proxy.writes() if e.method == "PUT"]) == 1
    assert live_queues(hadoop_cluster)["root.t1"]["capacity"] == pytest.approx(25)
