"""Issue 15, point 3, where names leave Canopy: a role held by a name that a cluster reads as syntax
(a row written before names were checked) never reaches a YARN queue ACL, an HDFS ACL, a Kubernetes
role binding or an export file. Such a name is left out, never refused: refusing would freeze the
whole queue tree of a Hadoop cluster and keep on it the ACL the name had widened, while leaving it out
takes that widening away at the next push. The sync status and the log say what was left out and why.

And the export files quote or refuse every value: hdfs-setup.sh runs as the HDFS superuser."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: S405 # parses Canopy's own output in a test
from decimal import Decimal
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from kubernetes import client
from kubernetes.client import ApiException

from provisioning import services
from provisioning.backends.export import capacity_scheduler_xml, hdfs_script
from provisioning.desired.kubernetes import (
    ClusterSettings,
    OidcNames,
    Principal,
    Quota,
    TenantState,
    tenant_objects,
)
from provisioning.desired.yarn import (
    QueueShare,
    RuleViolation,
    StorageDir,
    YarnSettings,
    YarnTenant,
    desired_objects,
)
from provisioning.models import ClusterSyncStatus, TenantSync
from tenants import services as tenant_services
from tenants.models import Membership
from tests.clusters.hadoop import HadoopTestCluster
from tests.provisioning.cluster_acls import hdfs_acl, hdfs_script_calls, widenings, yarn_acl
from tests.provisioning.conftest import connect, drain
from tests.provisioning.test_kubernetes_arena import allowed, wait_for
from tests.provisioning.test_oidc import mark_provisioned, oidc_connection
from tests.provisioning.test_yarn_backend import JSON, rm, webhdfs
from tests.tenants.builders import TokenClient, spec

User = get_user_model()
INJECTION = "devs:rwx,default:other:"  # "group:<it>:rwx" reads as two entries, the second default:other::rwx


def legacy_group_role(tenant, name: str, role: str) -> Membership:
    """A role held by a group whose name was never checked: written as it was before issue 15 (the
    services refuse such a name now), so straight into the table."""
    group, _ = Group.objects.get_or_create(name=name)
    return Membership.objects.create(tenant=tenant, group=group, role=role)


def yarn_tenant(**names) -> YarnTenant:
    return YarnTenant(
        tenant_id=7,
        path="t1",
        group="t1",
        shares=(QueueShare("", Decimal(40), None),),
        directories=(StorageDir("t1"),),
        **names,
    )


def queue(objects: list[dict], path: str) -> dict:
    return next(o["spec"] for o in objects if o["metadata"]["name"] == path)


# --------------------------------------------------------------------------- pure renderers


@pytest.mark.parametrize("everyone", ["*", " *", "*,"])
def test_a_group_named_star_never_opens_a_queue_to_everyone(everyone):
    objects = desired_objects(
        [yarn_tenant(admin_groups=(everyone,), submit_groups=(everyone,))], YarnSettings()
    )
    for key in ("acl_submit_applications", "acl_administer_queue"):
        value = queue(objects, "root.t1")[key]
        assert value == " ", value  # nobody, rather than " *": everyone
        assert yarn_acl(value) == (False, set(), set())


def test_a_name_with_a_space_or_comma_does_not_add_names_to_a_queue_acl():
    objects = desired_objects(
        [yarn_tenant(submit_users=("bob", "eve ops"), submit_groups=("etl", "etl,wheel"))], YarnSettings()
    )
    assert yarn_acl(queue(objects, "root.t1")["acl_submit_applications"]) == (False, {"bob"}, {"etl"})


@pytest.mark.parametrize("name", [INJECTION, "devs,default:other::rwx", "x:r-x,mask:", "::", ""])
def test_a_group_name_never_adds_hdfs_acl_entries(name):
    objects = desired_objects([yarn_tenant(admin_groups=("etl", name), admin_users=("ann",))], YarnSettings())
    [directory] = [o for o in objects if o["kind"] == "HdfsDirectory"]
    entries = hdfs_acl(",".join(directory["spec"]["acl"]))
    assert {(kind, who) for _, kind, who, _ in entries} == {
        ("group", "t1"),
        ("user", "ann"),
        ("group", "etl"),
    }
    assert {permission for *_, permission in entries} == {"rwx"}


def test_an_oidc_cluster_never_binds_a_role_to_the_api_servers_own_groups():
    """With no groups prefix, a group named "system:authenticated" is everyone signed in to the cluster."""
    cluster = ClusterSettings(name="gpu", oidc=OidcNames(username_prefix="", groups_prefix=""))
    state = TenantState(
        tenant_id=3,
        path="dev1",
        level=1,
        namespace="dev1",
        quota=Quota(gpu=1),
        principals=(
            Principal("Group", "system:authenticated", "member"),
            Principal("Group", "ml-team", "member"),
            Principal("User", "system:anonymous", "viewer"),
        ),
    )
    objects = tenant_objects(cluster, state)
    subjects = [s for o in objects if o["kind"] == "RoleBinding" for s in o["subjects"]]
    assert subjects == [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "ml-team"}]
    for obj in objects:
        kubernetes_validate.validate(obj, "1.37", strict=True)


# --------------------------------------------------------------------------- the export files


def directory(path: str, **spec) -> dict:
    values = {
        "owner": "hdfs",
        "group": "t1",
        "permission": "750",
        "acl": ["group:t1:rwx"],
        "namespaceQuota": 10,
        "spaceQuota": -1,
    }
    return {"kind": "HdfsDirectory", "metadata": {"name": path}, "spec": {**values, **spec}}


def test_every_value_of_hdfs_setup_sh_reaches_hdfs_as_one_argument():
    """Run by /bin/sh with a stand-in `hdfs` that records its arguments: nothing in a path, the owner,
    the permission or the ACL runs a command or splits into two arguments."""
    path = "/tenant/it's $(touch pwned) `touch pwned`;\ntouch pwned"
    objects = [
        directory(path, permission="750; touch pwned", owner="hdfs", acl=["group:t1:rwx", "user:a b:rwx"])
    ]
    calls = hdfs_script_calls(hdfs_script(objects))
    assert calls == [
        ["dfs", "-mkdir", "-p", path],
        ["dfs", "-chown", "hdfs:t1", path],
        ["dfs", "-chmod", "750; touch pwned", path],
        ["dfs", "-setfacl", "-m", "group:t1:rwx,user:a b:rwx", path],
        ["dfsadmin", "-setQuota", "10", path],
        ["dfsadmin", "-clrSpaceQuota", path],
    ]


def test_capacity_scheduler_xml_escapes_what_it_can_and_refuses_what_xml_cannot_hold():
    objects = desired_objects([yarn_tenant(submit_users=("bob",))], YarnSettings())
    tricky = "a&b <c> ]]> \"d\" 'e'"
    for obj in objects:
        if obj["metadata"]["name"] == "root.t1":
            obj["spec"]["canopy-note"] = tricky
    parsed = ET.fromstring(capacity_scheduler_xml(objects))  # noqa: S314 # Canopy's own output
    values = {p.findtext("name"): p.findtext("value") for p in parsed.iter("property")}
    assert values["yarn.scheduler.capacity.root.t1.canopy-note"] == tricky
    assert values["yarn.scheduler.capacity.root.t1.acl_submit_applications"] == "bob"
    queue(objects, "root.t1")["canopy-note"] = "bell\x07"
    with pytest.raises(RuleViolation, match="Control characters"):
        capacity_scheduler_xml(objects)


# --------------------------------------------------------------------------- a push, from the database


@pytest.mark.django_db
def test_old_rows_are_left_out_of_a_push_and_the_status_says_why(yarn_world, settings, export_dir: Path):
    """The embedded default's export backend: capacity-scheduler.xml and hdfs-setup.sh as written."""
    w = yarn_world
    settings.CANOPY_PROVISIONING_DEFAULT_BACKEND = "export"
    etl = tenant_services.tenant_create(
        acting_user=w.admin, parent=w.t1, name="etl", allocations=[spec(w.pool, capacity_percent=Decimal(50))]
    )
    tenant_services.storage_create(
        acting_user=w.admin, tenant=w.t1, spec=tenant_services.StorageSpec(cluster=w.cluster, file_quota=100)
    )
    legacy_group_role(etl, "*", "member")
    legacy_group_role(w.t1, INJECTION, "admin")
    legacy_user = User.objects.create_user("eve ops")
    Membership.objects.create(tenant=w.t1, user=legacy_user, role="member")

    assert widenings() == []  # what any push would send names nobody without a role
    tenant_services.membership_grant(acting_user=w.admin, tenant=w.t1, group="ml-team", role="member")
    drain()

    statuses = {s.sync.tenant_path: s for s in ClusterSyncStatus.objects.select_related("sync")}
    assert statuses["t1/etl"].state == "synced"
    assert "A group of t1/etl is left out of its ACLs. '*' cannot be used" in statuses["t1/etl"].message
    assert statuses["t1"].state == "synced"
    assert f"{INJECTION!r} cannot be used" in statuses["t1"].message
    assert "'eve ops' cannot be used" in statuses["t1"].message
    assert "left out" not in statuses["t2"].message
    xml = (export_dir / w.cluster.name / "capacity-scheduler.xml").read_text()
    assert "<name>yarn.scheduler.capacity.root.t1.etl.acl_submit_applications</name><value> </value>" in xml
    assert "capacity.root.t1.default.acl_submit_applications</name><value>usera,userc ml-team<" in xml
    script = (export_dir / w.cluster.name / "hdfs-setup.sh").read_text()
    [setfacl] = [c for c in hdfs_script_calls(script) if c[1] == "-setfacl"]
    assert not [e for e in hdfs_acl(setfacl[3]) if e[1] not in ("user", "group") or e[2] in ("", "eve ops")]


# --------------------------------------------------------------------------- the real clusters


def connect_and_push(hadoop: HadoopTestCluster, w) -> None:
    services.hadoop_connection_set(
        acting_user=w.admin,
        cluster=w.cluster,
        spec=services.HadoopConnectionSpec(
            rm_urls=hadoop.rm_url, webhdfs_urls=hadoop.webhdfs_url, user=hadoop.user
        ),
    )
    try:
        drain()
    except AssertionError as stuck:
        failed = ClusterSyncStatus.objects.exclude(state="synced").values_list("sync__tenant_path", "message")
        raise AssertionError(f"pushes failed: {list(failed)}") from stuck


@pytest.mark.hadoop
@pytest.mark.django_db
def test_on_a_real_hadoop_cluster_a_group_named_star_opens_no_queue_to_everyone(
    hadoop: HadoopTestCluster, yarn_world
) -> None:
    w = yarn_world
    etl = tenant_services.tenant_create(
        acting_user=w.admin, parent=w.t1, name="etl", allocations=[spec(w.pool, capacity_percent=Decimal(50))]
    )
    legacy_group_role(etl, "*", "member")
    connect_and_push(hadoop, w)

    def may_submit(user: str, queue_path: str) -> bool:
        answer = rm(
            hadoop,
            "GET",
            f"/queues/{queue_path}/access",
            # Asked as t1's admin: the RM answers only someone who administers the queue.
            params={"user.name": "usera", "user": user, "queue-acl-type": "SUBMIT_APPLICATIONS"},
            headers=JSON,
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["allowed"]).lower() == "true"  # the RM answers "true" / "false"

    # The RM itself says who may submit: nobody outside the tenant (before issue 15: everyone).
    assert not may_submit("mallory", "root.t1.etl")
    assert may_submit("usera", "root.t1.etl")  # t1's admin: YARN ACLs hold down the tree
    assert "'*' cannot be used" in ClusterSyncStatus.objects.get(sync__tenant_id=etl.pk).message


@pytest.mark.hadoop
@pytest.mark.django_db
def test_on_a_real_hadoop_cluster_a_group_name_adds_no_hdfs_entry_and_fails_no_push(
    hadoop: HadoopTestCluster, yarn_world
) -> None:
    """Before issue 15 the NameNode refused the whole ACL ("multiple entries with same scope, type
    and name": the smuggled entry came twice, once from the group's `default:` twin), so the
    tenant's directories were never set up."""
    w = yarn_world
    tenant_services.storage_create(
        acting_user=w.admin, tenant=w.t1, spec=tenant_services.StorageSpec(cluster=w.cluster, file_quota=100)
    )
    legacy_group_role(w.t1, INJECTION, "admin")
    connect_and_push(hadoop, w)

    entries = webhdfs(hadoop, "GET", "/tenant/t1", "GETACLSTATUS").json()["AclStatus"]["entries"]
    # HDFS fills in the default mask and other entries itself (other from the permission, 750).
    assert [e for e in entries if "other" in e] == ["default:other::---"], entries
    assert not [e for e in entries if "devs" in e], entries
    assert {"default:group:t1:rwx", "user:usera:rwx"} <= set(entries)


@pytest.mark.kubernetes
@pytest.mark.django_db
def test_on_a_real_kubernetes_cluster_an_old_row_does_not_give_everyone_a_role(
    platform_admin, gpu_cluster, kube_cluster, proxy, canopy_token
):
    cluster, pool = gpu_cluster
    team = tenant_services.tenant_create(
        acting_user=platform_admin, parent=None, name="names-a", allocations=[spec(pool, gpu=1)]
    )
    legacy_group_role(team, "system:authenticated", "member")
    tenant_services.membership_grant(acting_user=platform_admin, tenant=team, group="ml-team", role="member")
    connect(
        platform_admin,
        cluster,
        kube_cluster,
        proxy,
        canopy_token,
        oidc_issuer_url="https://sso.example.com/realms/corp",
        oidc_client_id="kubernetes",
        oidc_groups_prefix="",
    )
    drain()
    namespace = TenantSync.objects.get(tenant_id=team.pk).namespace
    with kube_cluster.admin_client() as api:
        api.set_default_header("Impersonate-User", "alice")
        api.set_default_header("Impersonate-Group", "ml-team")
        wait_for(
            lambda: allowed(lambda: client.CoreV1Api(api).list_namespaced_pod(namespace)), "ml-team's binding"
        )
    with kube_cluster.admin_client() as api:  # anyone signed in to the cluster
        api.set_default_header("Impersonate-User", "mallory")
        api.set_default_header("Impersonate-Group", "system:authenticated")
        with pytest.raises(ApiException) as refused:
            client.CoreV1Api(api).list_namespaced_pod(namespace)
        assert refused.value.status == 403
    status = ClusterSyncStatus.objects.get(sync__tenant_id=team.pk, cluster=cluster)
    assert status.state == "synced"
    assert "A group of names-a is left out of its role bindings. 'system:authenticated'" in status.message


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("directory_owner", "hdfs:wheel"),
        ("directory_owner", "*"),
        ("user", "yarn admin"),
        ("remainder_queue", "x,y"),
        ("directory_permission", "750; touch pwned"),  # refused before issue 15 too
    ],
)
def test_names_in_a_hadoop_connection_follow_the_same_rule(yarn_world, field, value):
    """The directories' owner goes into `hdfs dfs -chown owner:group` and SETOWNER, the acting user
    into every call, the remainder queue into capacity-scheduler.xml's `queues` lists."""
    values = {"rm_urls": "http://rm:8088", "webhdfs_urls": "http://nn:9870", "user": "canopy", field: value}
    with pytest.raises(ValidationError) as refused:
        services.hadoop_connection_set(
            acting_user=yarn_world.admin,
            cluster=yarn_world.cluster,
            spec=services.HadoopConnectionSpec(**values),
        )
    assert field in refused.value.message_dict


@pytest.mark.django_db
def test_a_username_with_a_line_break_stays_in_the_kubeconfigs_comment(k8s_world):
    """An identity provider's username claim is not checked as a name (its owner can sign in and
    hold roles through groups): the kubeconfig's header comment names them, and a line break there
    would turn the rest of the username into YAML."""
    w = k8s_world
    oidc_connection(w)
    mark_provisioned(w, w.dev1)
    eve = User.objects.create_user("eve\ncurrent-context: attacker")
    team = Group.objects.create(name="eve-team")
    eve.groups.add(team)
    tenant_services.membership_grant(acting_user=w.admin, tenant=w.dev1, group=team, role="member")
    response = (
        TokenClient().as_user(eve).get(f"/api/v1/tenants/{w.dev1.pk}/kubeconfig/?cluster={w.cluster.pk}")
    )
    assert response.status_code == 200, response.content
    text = response.content.decode()
    assert all(line.startswith("#") for line in text.splitlines()[:3]), text
    config = yaml.safe_load(text)
    assert config["current-context"] == config["contexts"][0]["name"] != "attacker"
