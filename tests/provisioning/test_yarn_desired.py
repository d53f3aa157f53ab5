"""The pure YARN/HDFS rendering and its rules (no cluster), and the export for clusters without
the scheduler-conf mutation API."""

from __future__ import annotations

from decimal import Decimal

import pytest

from provisioning import services
from provisioning.backends.export import capacity_scheduler_xml, hdfs_script
from provisioning.desired.yarn import (
    ForeignQueue,
    QueueShare,
    RuleViolation,
    StorageDir,
    YarnSettings,
    YarnTenant,
    desired_objects,
    queue_path,
)
from tenants import services as tenant_services
from tests.tenants.builders import TokenClient

SETTINGS = YarnSettings()


def tenant(tenant_id: int, path: str, *shares: tuple[str, int, int | None], **kwargs) -> YarnTenant:
    return YarnTenant(
        tenant_id=tenant_id,
        path=path,
        group=path.replace("/", "-"),
        shares=tuple(
            QueueShare(label, Decimal(c), None if m is None else Decimal(m)) for label, c, m in shares
        ),
        **kwargs,
    )


def specs(objects: list[dict]) -> dict[str, dict]:
    return {o["metadata"]["name"]: o["spec"] for o in objects}


def test_queue_paths_use_dots_and_keep_dashes() -> None:
    assert queue_path("department1/dev-1") == "root.department1.dev-1"


def test_remainder_goes_to_the_default_leaf_per_partition() -> None:
    queues = specs(
        desired_objects(
            [
                tenant(1, "t1", ("", 40, 80), ("gpu", 30, None), admin_users=("ann",), submit_users=("bob",)),
                tenant(2, "t1/a", ("", 25, None), ("gpu", 100, None), submit_groups=("etl",)),
            ],
            SETTINGS,
        )
    )
    assert queues["root.default"]["capacity"] == "60"
    assert queues["root.default"]["accessible-node-labels.gpu.capacity"] == "70"
    assert queues["root.t1.default"]["capacity"] == "75"
    assert queues["root.t1.default"]["accessible-node-labels.gpu.capacity"] == "0"
    assert queues["root.t1.default"]["acl_submit_applications"] == "bob"
    assert queues["root.t1"]["acl_submit_applications"] == "ann"  # a parent queue: admins only
    assert queues["root.t1.a"]["acl_submit_applications"] == " etl"
    assert queues["root"]["acl_submit_applications"] == " "
    assert queues["root"]["accessible-node-labels.gpu.capacity"] == "100"
    assert queues["root.t1.a"]["user-limit-factor"] == "1"
    assert queues["root.t1.a"]["accessible-node-labels"] == "gpu"


def test_a_tenant_without_a_labelled_pool_gets_no_partition() -> None:
    # Unset, YARN would inherit root's "*": every partition, up to 100 % of it.
    queues = specs(desired_objects([tenant(1, "t1", ("", 10, None))], SETTINGS, partitions=["gpu"]))
    assert queues["root.t1"]["accessible-node-labels"] == " "
    assert queues["root.default"]["accessible-node-labels.gpu.capacity"] == "100"


def test_suspended_tenant_is_stopped() -> None:
    queues = specs(desired_objects([tenant(1, "t1", ("", 10, None), suspended=True)], SETTINGS))
    assert queues["root.t1"]["state"] == "STOPPED"


@pytest.mark.parametrize(
    ("tenants", "problem"),
    [
        (
            [tenant(1, "t1", ("", 70, None)), tenant(2, "t2", ("", 50, None))],
            "take 120% of the default partition",
        ),
        ([tenant(1, "t1", ("", 50, 40))], "maximum-capacity 40 is below capacity 50"),
        (
            [tenant(1, "t1", ("", 10, None)), tenant(2, "t1/b", ("gpu", 10, None))],
            "which its parent does not have",
        ),
        ([tenant(1, "a.b", ("", 10, None))], "no dots"),
        ([tenant(1, "t1", ("", 10, None)), tenant(2, "t1/default", ("", 10, None))], "rename the tenant"),
        ([tenant(2, "t9/x", ("", 10, None))], "its parent t9 has none"),
    ],
)
def test_capacity_scheduler_rules_refuse(tenants: list[YarnTenant], problem: str) -> None:
    with pytest.raises(RuleViolation, match=problem):
        desired_objects(tenants, SETTINGS)


def test_queues_not_canopys_keep_their_share_and_the_remainder_leaf_takes_the_rest() -> None:
    adhoc = ForeignQueue("root.adhoc", {"": "30", "gpu": "12.5"})
    queues = specs(
        desired_objects(
            [tenant(1, "t1", ("", 40, None), ("gpu", 50, None)), tenant(2, "t1/a", ("", 60, None))],
            SETTINGS,
            partitions=["gpu"],
            # Under a Canopy parent too; one without a capacity takes nothing (YARN's default).
            foreign=[adhoc, ForeignQueue("root.t1.x", {"": "15"}), ForeignQueue("root.idle", {})],
        )
    )
    assert queues["root.default"]["capacity"] == "30"
    assert queues["root.default"]["accessible-node-labels.gpu.capacity"] == "37.5"
    assert queues["root.t1.default"]["capacity"] == "25"
    assert "root.adhoc" not in queues  # never rendered, so never changed


def test_queues_not_canopys_that_leave_too_little_are_named_in_the_refusal() -> None:
    with pytest.raises(RuleViolation) as refused:
        desired_objects(
            [tenant(1, "t1", ("", 40, None)), tenant(2, "t2", ("", 35, None))],
            SETTINGS,
            foreign=[ForeignQueue("root.adhoc", {"": "30"}), ForeignQueue("root.batch", {"": "5"})],
        )
    assert refused.value.problems == [
        "The children of root take 110% of the default partition (of which not managed by Canopy: "
        "root.adhoc 30%, root.batch 5%); at most 100."
    ]
    with pytest.raises(RuleViolation, match=r"root.adhoc \(not managed by Canopy\) has capacity '2w'"):
        desired_objects(
            [tenant(1, "t1", ("", 40, None))], SETTINGS, foreign=[ForeignQueue("root.adhoc", {"": "2w"})]
        )


def test_a_queue_not_canopys_with_a_tenants_name_is_left_to_the_takeover_refusal() -> None:
    # Counting it as well would refuse with a misleading sum; the backend says it is not Canopy's.
    queues = specs(
        desired_objects(
            [tenant(1, "t1", ("", 90, None))], SETTINGS, foreign=[ForeignQueue("root.t1", {"": "50"})]
        )
    )
    assert queues["root.default"]["capacity"] == "10"


def test_directories_of_one_tenant() -> None:
    tenants = [
        tenant(1, "t1", ("", 10, None), directories=(StorageDir("t1"),)),
        tenant(2, "t2", ("", 10, None), directories=(StorageDir("t2"),)),
    ]
    everything = desired_objects(tenants, SETTINGS)
    mine = desired_objects(tenants, SETTINGS, directories_of=[2])
    assert [o["metadata"]["name"] for o in everything if o["kind"] == "HdfsDirectory"] == [
        "/tenant/t1",
        "/tenant/t2",
    ]
    assert [o["metadata"]["name"] for o in mine if o["kind"] == "HdfsDirectory"] == ["/tenant/t2"]
    # The queue tree is whole either way.
    assert [o for o in everything if o["kind"] == "YarnQueue"] == [
        o for o in mine if o["kind"] == "YarnQueue"
    ]


def test_directories_and_export_files() -> None:
    objects = desired_objects(
        [
            tenant(
                1,
                "t1",
                ("", 10, None),
                submit_users=("bob",),
                directories=(StorageDir("/tenant/t1", 1024, 50),),
            )
        ],
        SETTINGS,
    )
    directory = specs(objects)["/tenant/t1"]
    assert directory["permission"] == "750" and directory["group"] == "t1"
    assert "default:group:t1:rwx" in directory["acl"] and "user:bob:rwx" in directory["acl"]
    xml = capacity_scheduler_xml(objects)
    assert "<name>yarn.scheduler.capacity.root.queues</name><value>default,t1</value>" in xml
    assert "<name>yarn.scheduler.capacity.root.t1.capacity</name><value>10</value>" in xml
    script = hdfs_script(objects)
    assert "hdfs dfsadmin -setQuota 50 /tenant/t1" in script
    assert "hdfs dfsadmin -setSpaceQuota 1024 /tenant/t1" in script


@pytest.mark.django_db
def test_export_download_and_the_export_backend(yarn_world, settings, tmp_path) -> None:
    w = yarn_world
    settings.CANOPY_PROVISIONING_DEFAULT_BACKEND = "export"
    settings.CANOPY_EXPORT_DIR = str(tmp_path)
    tenant_services.storage_create(
        acting_user=w.admin, tenant=w.t1, spec=tenant_services.StorageSpec(cluster=w.cluster, file_quota=10)
    )
    client = TokenClient().as_user(w.admin)
    url = f"/api/v1/provisioning/hadoop-export/?cluster={w.cluster.pk}&file="
    xml = client.get(url + "capacity-scheduler.xml")
    assert xml.status_code == 200
    assert b"yarn.scheduler.capacity.root.t3.accessible-node-labels.HighMEM.capacity" in xml.content
    script = client.get(url + "hdfs-setup.sh")
    assert b"hdfs dfsadmin -setQuota 10 /tenant/t1" in script.content

    outcome = services.tenant_reconcile(tenant_id=w.t1.pk)
    assert [c.state for c in outcome.clusters] == ["synced"]
    written = (tmp_path / "bigdata" / "capacity-scheduler.xml").read_text()
    assert "root.t1.maximum-capacity</name><value>80</value>" in written
    assert (tmp_path / "bigdata" / "hdfs-setup.sh").is_file()


@pytest.mark.django_db
def test_hadoop_connection_api_validates_saves_and_tests(yarn_world, k8s_world) -> None:
    client = TokenClient().as_user(yarn_world.admin)
    refused = client.post(
        "/api/v1/hadoop-connections/",
        {
            "cluster": k8s_world.cluster.pk,
            "rm_urls": "http://rm:8088",
            "webhdfs_urls": "http://nn:9870",
            "user": "yarn",
        },
        format="json",
    )
    assert refused.status_code == 400 and "not a Hadoop cluster" in refused.content.decode()
    bad = client.post(
        "/api/v1/hadoop-connections/",
        {
            "cluster": yarn_world.cluster.pk,
            "rm_urls": "rm:8088",
            "webhdfs_urls": "http://nn:9870",
            "user": "yarn",
        },
        format="json",
    )
    assert bad.status_code == 400 and "One URL a line" in bad.content.decode()
    created = client.post(
        "/api/v1/hadoop-connections/",
        {
            "cluster": yarn_world.cluster.pk,
            "rm_urls": "http://127.0.0.1:9\nhttp://127.0.0.1:10",
            "webhdfs_urls": "http://127.0.0.1:9",
            "user": "yarn",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    tested = client.post(f"/api/v1/hadoop-connections/{yarn_world.cluster.pk}/test/")
    body = tested.json()
    assert tested.status_code == 200 and body["ok"] is False and body["backend"] == "yarn"
    # Both ResourceManagers were tried; the error names each.
    assert "127.0.0.1:9" in body["message"] and "127.0.0.1:10" in body["message"]


@pytest.mark.django_db
def test_a_rule_violation_fails_the_push_before_any_call(yarn_world) -> None:
    w = yarn_world
    services.hadoop_connection_set(
        acting_user=w.admin,
        cluster=w.cluster,
        spec=services.HadoopConnectionSpec(
            rm_urls="http://127.0.0.1:9", webhdfs_urls="http://127.0.0.1:9", user="yarn"
        ),
    )
    # Canopy allows a sub-tenant called "default"; YARN would merge it with t1's remainder leaf.
    tenant_services.tenant_create(
        acting_user=w.admin,
        parent=w.t1,
        name="default",
        allocations=[tenant_services.AllocationSpec(pool=w.pool, capacity_percent=Decimal(10))],
    )
    outcome = services.tenant_reconcile(tenant_id=w.t2.pk)
    [cluster] = outcome.clusters
    assert cluster.state == "failed" and not cluster.transient
    # Had anything been sent, the message would say 127.0.0.1:9 could not be reached.
    assert cluster.message.startswith("Refused before anything was sent: t1/default: 'default' is the queue")
