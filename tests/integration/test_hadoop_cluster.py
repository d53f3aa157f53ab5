"""Proof that the Hadoop test cluster behaves like the production APIs Canopy drives.

Talks plain HTTP to the ResourceManager REST API and WebHDFS, as the portal's workers will.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.clusters.hadoop import HadoopTestCluster

pytestmark = pytest.mark.hadoop

JSON = {"Accept": "application/json"}
GIB = 1024**3


def as_list(value: Any) -> list[Any]:
    """Jersey's JSON renders a one-element list as the bare element and an empty one as nothing."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def rm(
    cluster: HadoopTestCluster, method: str, path: str, *, user: str | None = None, **kwargs: Any
) -> requests.Response:
    params = {"user.name": user or cluster.user, **kwargs.pop("params", {})}
    return requests.request(
        method, f"{cluster.rm_url}/ws/v1/cluster{path}", params=params, timeout=60, **kwargs
    )


def webhdfs(
    cluster: HadoopTestCluster, method: str, path: str, op: str, *, user: str | None = None, **params: str
) -> requests.Response:
    return requests.request(
        method,
        f"{cluster.webhdfs_url}/webhdfs/v1{path}",
        params={"op": op, "user.name": user or cluster.user, **params},
        timeout=60,
    )


def scheduler_conf(cluster: HadoopTestCluster) -> dict[str, str]:
    response = rm(cluster, "GET", "/scheduler-conf", headers=JSON)
    assert response.status_code == 200, response.text
    return {p["name"]: p["value"] for p in as_list(response.json()["property"])}


def queues_by_path(cluster: HadoopTestCluster) -> dict[str, dict[str, Any]]:
    response = rm(cluster, "GET", "/scheduler", headers=JSON)
    assert response.status_code == 200, response.text
    info = response.json()["scheduler"]["schedulerInfo"]
    assert info["type"] == "capacityScheduler"
    found: dict[str, dict[str, Any]] = {}
    pending = as_list((info.get("queues") or {}).get("queue"))
    while pending:
        queue = pending.pop()
        found[queue["queuePath"]] = queue
        pending.extend(as_list((queue.get("queues") or {}).get("queue")))
    return found


def put_sched_conf(cluster: HadoopTestCluster, body: dict[str, Any]) -> requests.Response:
    return rm(cluster, "PUT", "/scheduler-conf", json=body, headers=JSON)


def queue_params(**values: str) -> dict[str, Any]:
    return {"entry": [{"key": key.replace("_", "-"), "value": value} for key, value in values.items()]}


def remove_leaf_queue(cluster: HadoopTestCluster, path: str) -> None:
    """Stop, then remove ``path`` and hand its capacity back to root.default.

    Two PUTs on purpose: stopping and removing in one mutation leaves ``<path>.state=STOPPED``
    behind in the store, and a queue later re-added under that name would start STOPPED.
    """
    conf = scheduler_conf(cluster)
    prefix = "yarn.scheduler.capacity."
    stopped = put_sched_conf(
        cluster, {"update-queue": [{"queue-name": path, "params": queue_params(state="STOPPED")}]}
    )
    assert stopped.status_code == 200, stopped.text
    freed = float(conf[f"{prefix}{path}.capacity"]) + float(conf[f"{prefix}root.default.capacity"])
    removed = put_sched_conf(
        cluster,
        {
            "remove-queue": path,
            "update-queue": [{"queue-name": "root.default", "params": queue_params(capacity=f"{freed:g}")}],
        },
    )
    assert removed.status_code == 200, removed.text


def test_scheduler_conf_put_adds_queue(hadoop_cluster: HadoopTestCluster) -> None:
    if "root.t1" in queues_by_path(hadoop_cluster):  # a re-run against an external cluster
        remove_leaf_queue(hadoop_cluster, "root.t1")

    # The documented XML form; root.default gives up what root.t1 takes so the level sums to 100.
    body = """<?xml version="1.0" encoding="UTF-8"?>
<sched-conf>
  <add-queue>
    <queue-name>root.t1</queue-name>
    <params>
      <entry><key>capacity</key><value>30</value></entry>
      <entry><key>maximum-capacity</key><value>50</value></entry>
    </params>
  </add-queue>
  <update-queue>
    <queue-name>root.default</queue-name>
    <params><entry><key>capacity</key><value>70</value></entry></params>
  </update-queue>
</sched-conf>"""
    response = rm(
        hadoop_cluster, "PUT", "/scheduler-conf", data=body, headers={"Content-Type": "application/xml"}
    )
    assert response.status_code == 200, response.text
    assert "successfully applied" in response.text

    queues = queues_by_path(hadoop_cluster)
    assert queues["root.t1"]["capacity"] == pytest.approx(30, abs=0.01)
    assert queues["root.t1"]["maxCapacity"] == pytest.approx(50, abs=0.01)
    assert queues["root.t1"]["state"] == "RUNNING"
    assert queues["root.default"]["capacity"] == pytest.approx(70, abs=0.01)

    conf = scheduler_conf(hadoop_cluster)
    assert conf["yarn.scheduler.capacity.root.queues"].split(",") == ["default", "t1"]
    assert conf["yarn.scheduler.capacity.root.t1.capacity"] == "30"

    remove_leaf_queue(hadoop_cluster, "root.t1")  # the cluster is shared by the whole session


def test_scheduler_conf_put_needs_yarn_admin(hadoop_cluster: HadoopTestCluster) -> None:
    body = {
        "update-queue": [
            {"queue-name": "root.default", "params": {"entry": [{"key": "state", "value": "RUNNING"}]}}
        ]
    }
    response = rm(hadoop_cluster, "PUT", "/scheduler-conf", user="mallory", json=body, headers=JSON)
    assert response.status_code == 403, response.text
    error = response.json()["RemoteException"]
    assert error["exception"] == "ForbiddenException"
    assert "Only admins can carry out this operation" in error["message"]


def test_invalid_scheduler_conf_is_refused_and_changes_nothing(hadoop_cluster: HadoopTestCluster) -> None:
    before = scheduler_conf(hadoop_cluster)
    queues_before = queues_by_path(hadoop_cluster)
    # Siblings under root already sum to 100, so another 50 % breaks the rule. JSON form this time.
    body = {
        "add-queue": [{"queue-name": "root.t2", "params": {"entry": [{"key": "capacity", "value": "50"}]}}]
    }
    response = rm(hadoop_cluster, "PUT", "/scheduler-conf", json=body, headers=JSON)

    assert response.status_code == 400
    # The RM answers with its own plain-text message (despite a JSON content type).
    assert response.text.startswith(
        "Failed to re-init queues : Illegal capacity sum of 1.5 for children of queue root"
    )
    assert scheduler_conf(hadoop_cluster) == before
    queues_after = queues_by_path(hadoop_cluster)
    assert "root.t2" not in queues_after
    assert {path: q["capacity"] for path, q in queues_after.items()} == {
        path: q["capacity"] for path, q in queues_before.items()
    }


def test_queue_is_stopped_then_removed(hadoop_cluster: HadoopTestCluster) -> None:
    default_before = float(scheduler_conf(hadoop_cluster)["yarn.scheduler.capacity.root.default.capacity"])
    added = put_sched_conf(
        hadoop_cluster,
        {
            "add-queue": [{"queue-name": "root.retired", "params": queue_params(capacity="10")}],
            "update-queue": [
                {"queue-name": "root.default", "params": queue_params(capacity=f"{default_before - 10:g}")}
            ],
        },
    )
    assert added.status_code == 200, added.text

    # Capacities rebalanced, so the only rule broken is removing a queue that still runs.
    running = put_sched_conf(
        hadoop_cluster,
        {
            "remove-queue": "root.retired",
            "update-queue": [
                {"queue-name": "root.default", "params": queue_params(capacity=f"{default_before:g}")}
            ],
        },
    )
    assert running.status_code == 400
    assert "root.retired cannot be deleted" in running.text
    assert "not yet in stopped state" in running.text

    remove_leaf_queue(hadoop_cluster, "root.retired")
    assert "root.retired" not in queues_by_path(hadoop_cluster)
    conf = scheduler_conf(hadoop_cluster)
    assert not [key for key in conf if ".root.retired." in key]
    assert float(conf["yarn.scheduler.capacity.root.default.capacity"]) == default_before


def test_node_label_is_added_and_listed(hadoop_cluster: HadoopTestCluster) -> None:
    response = rm(
        hadoop_cluster,
        "POST",
        "/add-node-labels",
        json={"nodeLabelInfo": [{"name": "gpu", "exclusivity": True}]},
        headers=JSON,
    )
    assert response.status_code == 200, response.text

    labels = rm(hadoop_cluster, "GET", "/get-node-labels", headers=JSON)
    assert labels.status_code == 200, labels.text
    listed = {label["name"]: label for label in as_list(labels.json()["nodeLabelInfo"])}
    assert "gpu" in listed
    assert listed["gpu"]["exclusivity"] in (True, "true")

    # Map it onto a NodeManager and back, leaving the cluster's partitions as they were.
    nodes = rm(hadoop_cluster, "GET", "/nodes", headers=JSON).json()["nodes"]
    node_id = as_list(nodes["node"])[0]["id"]
    assigned = rm(hadoop_cluster, "POST", f"/nodes/{node_id}/replace-labels", params={"labels": "gpu"})
    assert assigned.status_code == 200, assigned.text
    node = rm(hadoop_cluster, "GET", f"/nodes/{node_id}", headers=JSON).json()["node"]
    assert as_list(node.get("nodeLabels")) == ["gpu"]

    cleared = rm(hadoop_cluster, "POST", f"/nodes/{node_id}/replace-labels")
    assert cleared.status_code == 200, cleared.text
    node = rm(hadoop_cluster, "GET", f"/nodes/{node_id}", headers=JSON).json()["node"]
    assert as_list(node.get("nodeLabels")) == []


def test_node_labels_need_yarn_admin(hadoop_cluster: HadoopTestCluster) -> None:
    response = rm(
        hadoop_cluster,
        "POST",
        "/add-node-labels",
        user="mallory",
        json={"nodeLabelInfo": [{"name": "rogue", "exclusivity": True}]},
        headers=JSON,
    )
    assert response.status_code == 401, response.text
    assert response.json()["RemoteException"]["exception"] == "AuthorizationException"
    names = [
        label["name"]
        for label in as_list(
            rm(hadoop_cluster, "GET", "/get-node-labels", headers=JSON).json().get("nodeLabelInfo")
        )
    ]
    assert "rogue" not in names


def test_webhdfs_tenant_directory_quota_owner_and_acl(hadoop_cluster: HadoopTestCluster) -> None:
    path = "/tenant/t1"
    made = webhdfs(hadoop_cluster, "PUT", path, "MKDIRS", permission="750")
    assert made.status_code == 200, made.text
    assert made.json() == {"boolean": True}

    # Hadoop has no SETSPACEQUOTA op: the space quota is SETQUOTA's storagespacequota parameter.
    missing = webhdfs(hadoop_cluster, "PUT", path, "SETSPACEQUOTA", storagespacequota=str(GIB))
    assert missing.status_code == 400
    assert "SETSPACEQUOTA is not a valid PUT operation" in missing.json()["RemoteException"]["message"]

    denied = webhdfs(hadoop_cluster, "PUT", path, "SETQUOTA", user="alice", namespacequota="1000")
    assert denied.status_code == 403
    assert "Superuser privilege is required" in denied.json()["RemoteException"]["message"]

    quota = webhdfs(
        hadoop_cluster, "PUT", path, "SETQUOTA", namespacequota="1000", storagespacequota=str(GIB)
    )
    assert quota.status_code == 200, quota.text
    by_type = webhdfs(
        hadoop_cluster,
        "PUT",
        path,
        "SETQUOTABYSTORAGETYPE",
        storagetype="SSD",
        storagespacequota=str(GIB // 2),
    )
    assert by_type.status_code == 200, by_type.text

    summary = webhdfs(hadoop_cluster, "GET", path, "GETCONTENTSUMMARY").json()["ContentSummary"]
    assert summary["quota"] == 1000
    assert summary["spaceQuota"] == GIB
    assert summary["typeQuota"]["SSD"]["quota"] == GIB // 2
    assert summary["directoryCount"] == 1
    usage = webhdfs(hadoop_cluster, "GET", path, "GETQUOTAUSAGE").json()["QuotaUsage"]
    assert (usage["quota"], usage["spaceQuota"], usage["fileAndDirectoryCount"]) == (1000, GIB, 1)

    assert webhdfs(hadoop_cluster, "PUT", path, "SETOWNER", owner="t1-admin", group="t1").status_code == 200
    assert webhdfs(hadoop_cluster, "PUT", path, "SETPERMISSION", permission="770").status_code == 200
    acl = webhdfs(
        hadoop_cluster,
        "PUT",
        path,
        "MODIFYACLENTRIES",
        aclspec="user:alice:r-x,group:analysts:r-x,default:group:t1:rwx",
    )
    assert acl.status_code == 200, acl.text

    status = webhdfs(hadoop_cluster, "GET", path, "GETACLSTATUS").json()["AclStatus"]
    assert (status["owner"], status["group"], status["permission"]) == ("t1-admin", "t1", "770")
    assert {"user:alice:r-x", "group:analysts:r-x", "default:group:t1:rwx"} <= set(status["entries"])
    file_status = webhdfs(hadoop_cluster, "GET", path, "GETFILESTATUS").json()["FileStatus"]
    assert file_status["aclBit"] is True
    assert (file_status["owner"], file_status["group"]) == ("t1-admin", "t1")
