"""Where a tenant's HDFS directories may be (issue 15, point 1), for every writer: the API, the admin,
tenant creation and plans, through the services. A tenant's directories lie at or below its own root
(CANOPY_HDFS_ROOT/<tenant path>), outside its sub-tenants' roots and never at, inside or around a
directory of a tenant that is not its ancestor (around it) or descendant (inside it); paths are
taken in their plain form only, without control characters, and at most 1024 characters long."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from provisioning import services as provisioning_services
from provisioning.models import ProvisioningIntent
from tenants import services
from tenants.models import AuditEvent, StorageDirectory, Tenant
from tests.tenants.builders import TokenClient, spec

pytestmark = pytest.mark.django_db


def storage_state() -> tuple:
    return (
        list(StorageDirectory.objects.order_by("pk").values_list("pk", "tenant_id", "cluster_id", "path")),
        AuditEvent.objects.count(),
        ProvisioningIntent.objects.count(),
    )


def sub_tenant(world, parent: Tenant, name: str, *, leaf: bool = False) -> Tenant:
    """A sub-tenant added by user A, t1's and t2's tenant admin, as she would."""
    return services.tenant_create(
        acting_user=world.a,
        parent=parent,
        name=name,
        is_leaf=leaf,
        allocations=[spec(world.pool, capacity_percent=50)],
    )


def post_directory(world, user, tenant: Tenant, path: str | None):
    body = {"tenant": tenant.pk, "cluster": world.cluster.pk}
    if path is not None:
        body["path"] = path
    return TokenClient().as_user(user).post("/api/v1/storage/", body, format="json")


def test_a_tenant_admin_cannot_put_a_directory_under_another_tenants(yarn_world):
    """The outside probe: A (tenant admin of t1 and t2) made an HDFS directory for her sub-tenant at
    /tenant/t3/data (201), and the exported hdfs-setup.sh gave it to her tenant's group."""
    w = yarn_world
    etl = sub_tenant(w, w.t1, "etl", leaf=True)
    services.storage_create(acting_user=w.admin, tenant=w.t3, spec=services.StorageSpec(cluster=w.cluster))
    before = storage_state()

    response = post_directory(w, w.a, etl, "/tenant/t3/data")

    assert response.status_code == 400, response.content
    assert list(response.json()) == ["path"]
    assert response.json()["path"] == [
        "t1/etl's HDFS directories live at or below its root /tenant/t1/etl (CANOPY_HDFS_ROOT/<tenant path>); "
        "/tenant/t3/data is outside it."
    ]
    assert storage_state() == before
    script = provisioning_services.hadoop_files_render(acting_user=w.admin, cluster=w.cluster)[
        "hdfs-setup.sh"
    ]
    assert "/tenant/t3/data" not in script
    # Her own tenants' roots are hers to use.
    assert post_directory(w, w.a, etl, "/tenant/t1/etl/data").status_code == 201
    assert post_directory(w, w.a, etl, None).json()["path"] == "/tenant/t1/etl"


def test_a_tenant_admin_cannot_reach_into_the_root_of_a_sub_tenant(yarn_world):
    """t1/dept's directories stay out of /tenant/t1/dept/team: that is team's namespace."""
    w = yarn_world
    dept = sub_tenant(w, w.t1, "dept")
    team = services.tenant_create(
        acting_user=w.a,
        parent=dept,
        name="team",
        allocations=[spec(w.pool, capacity_percent=100)],
    )
    before = storage_state()
    for path in ("/tenant/t1/dept/team", "/tenant/t1/dept/team/x"):
        response = post_directory(w, w.a, dept, path)
        assert response.status_code == 400, (path, response.content)
        assert "the root of sub-tenant t1/dept/team" in response.json()["path"][0]
        assert "t1/dept's go elsewhere below /tenant/t1/dept" in response.json()["path"][0]
    assert storage_state() == before
    # Not even a platform admin puts a tenant's directory in its sub-tenant's root; the sub-tenant's own
    # directories go there, and the parent's elsewhere in its root.
    with pytest.raises(ValidationError):
        services.storage_create(
            acting_user=w.admin,
            tenant=w.t1,
            spec=services.StorageSpec(cluster=w.cluster, path="/tenant/t1/dept/x"),
        )
    assert post_directory(w, w.a, team, "/tenant/t1/dept/team/x").status_code == 201
    assert post_directory(w, w.a, dept, "/tenant/t1/dept/shared").status_code == 201
    # An ancestor's directory around a descendant's is the hierarchy as it should be.
    assert post_directory(w, w.admin, w.t1, None).status_code == 201


@pytest.mark.parametrize(
    "path, message",
    [
        ("/tenant/t1/etl/../../t3", "plain form (/tenant/t3)"),
        ("/tenant/t1/etl/./data", "plain form (/tenant/t1/etl/data)"),
        ("//tenant/t1/etl", "plain form (/tenant/t1/etl)"),
        ("/tenant/t1//etl", "plain form (/tenant/t1/etl)"),
        ("/tenant/t1/etl/", "plain form (/tenant/t1/etl)"),
        ("tenant/t1/etl", "is absolute, e.g. /tenant/t1/etl"),
        ("/tenant/t1/etl/a\nb", "newlines or other control characters"),
        ("/tenant/t1/etl/data\n", "newlines or other control characters"),
        ("/tenant/t1/etl/a\u200bb", "newlines or other control characters"),
        ("/tenant/t1/etl/a:b", "cannot contain ':'"),
        ("/tenant/t1/etl/" + "d" * 1010, "at most 1024 characters; this one has 1025"),
        ("/tenant/t1/etl/" + "d" * 5000, "at most 1024 characters; this one has 5015"),
    ],
)
def test_paths_are_plain_and_bounded_with_a_field_error(yarn_world, path, message):
    w = yarn_world
    etl = sub_tenant(w, w.t1, "etl", leaf=True)
    before = storage_state()
    response = post_directory(w, w.a, etl, path)
    assert response.status_code == 400, response.content
    assert list(response.json()) == ["path"] and message in response.json()["path"][0]
    assert storage_state() == before


def test_no_directory_inside_or_around_another_tenants(yarn_world):
    """A tenant that moves keeps its directories where they are (HDFS data does not move): t1/sub's
    /tenant/t1/sub then belongs to t2/sub. t1 may not reach inside it nor take a directory around it."""
    w = yarn_world
    sub = sub_tenant(w, w.t1, "sub")
    services.storage_create(acting_user=w.a, tenant=sub, spec=services.StorageSpec(cluster=w.cluster))
    services.tenant_move(acting_user=w.a, tenant=sub, new_parent=w.t2)
    assert StorageDirectory.objects.get(tenant=sub).path == "/tenant/t1/sub"
    before = storage_state()
    for tenant, path, expected in (
        (w.t1, "/tenant/t1/sub/x", "would lie inside /tenant/t1/sub, a directory of another tenant"),
        (w.t1, "/tenant/t1/sub", "is already a tenant directory"),
        (w.t1, "/tenant/t1", "would contain /tenant/t1/sub, a directory of another tenant"),
    ):
        with pytest.raises(ValidationError) as refused:
            services.storage_create(
                acting_user=w.admin, tenant=tenant, spec=services.StorageSpec(cluster=w.cluster, path=path)
            )
        assert expected in refused.value.message_dict["path"][0], path
    assert storage_state() == before
    # Nor through a plan, which gives t1 its root: around the moved directory.
    plan = services.plan_create(
        acting_user=w.admin, name="hdfs", storage=[services.StorageSpec(cluster=w.cluster, file_quota=10)]
    )
    with pytest.raises(ValidationError) as refused:
        services.tenant_apply_plan(acting_user=w.admin, tenant=w.t1, plan=plan)
    assert "would contain /tenant/t1/sub" in refused.value.message_dict["path"][0]
    assert storage_state()[0] == before[0]
    # Inside its own tree, the moved tenant's directories go below its new root.
    services.storage_create(
        acting_user=w.a, tenant=sub, spec=services.StorageSpec(cluster=w.cluster, path="/tenant/t2/sub")
    )


def test_a_tenant_created_with_storage_and_a_plan_follow_the_same_rules(yarn_world):
    w = yarn_world
    before = storage_state()
    with pytest.raises(ValidationError) as refused:
        services.tenant_create(
            acting_user=w.a,
            parent=w.t1,
            name="etl",
            storage=[services.StorageSpec(cluster=w.cluster, path="/tenant/t3/etl")],
        )
    assert "its root /tenant/t1/etl" in refused.value.message_dict["path"][0]
    assert storage_state() == before and not Tenant.objects.filter(name="etl").exists()
    response = (
        TokenClient()
        .as_user(w.a)
        .post(
            "/api/v1/tenants/",
            {"parent": w.t1.pk, "name": "etl", "storage": [{"cluster": w.cluster.pk, "path": "/tenant/t2"}]},
            format="json",
        )
    )
    assert response.status_code == 400 and "its root /tenant/t1/etl" in response.json()["path"][0]
    assert storage_state() == before


def test_the_directories_of_other_clusters_do_not_count(yarn_world):
    w = yarn_world
    other = services.cluster_create(acting_user=w.admin, name="bigdata2", kind="yarn")
    services.storage_create(acting_user=w.admin, tenant=w.t1, spec=services.StorageSpec(cluster=other))
    directory = services.storage_create(
        acting_user=w.admin, tenant=w.t1, spec=services.StorageSpec(cluster=w.cluster)
    )
    assert directory.path == "/tenant/t1"


def test_the_root_setting_is_read_in_its_plain_form(yarn_world, settings):
    w = yarn_world
    settings.CANOPY_HDFS_ROOT = "/data/tenants/"
    etl = sub_tenant(w, w.t1, "etl", leaf=True)
    assert post_directory(w, w.a, etl, None).json()["path"] == "/data/tenants/t1/etl"
    response = post_directory(w, w.a, etl, "/tenant/t1/etl")
    assert "its root /data/tenants/t1/etl" in response.json()["path"][0]


def test_the_admin_refuses_the_same_paths(admin_client, yarn_world):
    w = yarn_world
    etl = sub_tenant(w, w.t1, "etl", leaf=True)
    before = storage_state()
    response = admin_client.post(
        "/admin/tenants/storagedirectory/add/",
        {"tenant": etl.pk, "cluster": w.cluster.pk, "path": "/tenant/t3/data", "_save": "Save"},
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "/tenant/t3/data is outside it" in errors["path"][0]
    assert storage_state() == before


def test_whether_a_path_is_taken_is_not_told_before_the_right_to_write_there(yarn_world):
    """Found by the property test: the API's unique (cluster, path) check answered "must make a unique
    set" before the service asked whether the caller may write to the tenant, so anyone who could see
    a tenant learned which paths exist on every cluster."""
    w = yarn_world
    services.storage_create(acting_user=w.admin, tenant=w.t1, spec=services.StorageSpec(cluster=w.cluster))
    before = storage_state()
    response = post_directory(w, w.b, w.t3, "/tenant/t1")  # B administers t3; its storage is set from above
    assert response.status_code == 403, response.content
    assert b"unique" not in response.content and b"/tenant/t1" not in response.content
    assert storage_state() == before
