"""Tenant services (MRS's tenant service association): Hive databases linked to a tenant on a Hadoop
cluster. The name's rule, one owner per name on a cluster, who may link and unlink, what the
export files and the console show. The push to the real mini cluster is
tests/provisioning/test_tenant_services_push.py."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from provisioning import services as provisioning_services
from provisioning.models import ProvisioningIntent
from tenants import services
from tenants.models import AuditEvent, Cluster, TenantService
from tests.provisioning.cluster_acls import hdfs_script_calls, widenings
from tests.tenants.builders import TokenClient
from tests.tenants.test_storage_rules import sub_tenant

pytestmark = pytest.mark.django_db

WAREHOUSE = "/warehouse/tablespace/managed/hive"


def service_state() -> tuple:
    return (
        list(
            TenantService.objects.order_by("pk").values_list("pk", "tenant_id", "cluster_id", "kind", "name")
        ),
        AuditEvent.objects.count(),
        ProvisioningIntent.objects.count(),
    )


def post_service(user, tenant, cluster, name: str):
    body = {"tenant": tenant.pk, "cluster": cluster.pk, "kind": "hive_database", "name": name}
    return TokenClient().as_user(user).post("/api/v1/tenant-services/", body, format="json")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Sales", "A Hive database name is 1 to 128 lower-case letters"),
        ("sales-eu", "A Hive database name is 1 to 128 lower-case letters"),
        ("1sales", "A Hive database name is 1 to 128 lower-case letters"),
        ("../t3", "A Hive database name is 1 to 128 lower-case letters"),
        ("sales\n", "A Hive database name is 1 to 128 lower-case letters"),
        ("s" * 129, "A Hive database name is 1 to 128 lower-case letters"),
        ("default", "default is one of Hive's own databases"),
        ("information_schema", "information_schema is one of Hive's own databases"),
    ],
)
def test_a_hive_database_name_follows_hives_rule(yarn_world, name, message):
    w = yarn_world
    before = service_state()
    response = post_service(w.admin, w.t1, w.cluster, name)
    assert response.status_code == 400, response.content
    assert list(response.json()) == ["name"]
    assert response.json()["name"][0].startswith(message)
    assert service_state() == before


def test_a_name_has_one_owner_on_a_cluster(yarn_world):
    w = yarn_world
    created = post_service(w.admin, w.t1, w.cluster, "sales")
    assert created.status_code == 201, created.content
    assert created.json()["path"] == f"{WAREHOUSE}/sales.db"
    assert created.json()["tenant_path"] == "t1"
    before = service_state()
    taken = post_service(w.admin, w.t3, w.cluster, "sales")
    assert taken.status_code == 400
    assert taken.json() == {"name": ["sales is already a Hive database on bigdata."]}
    assert service_state() == before
    # Another Hadoop cluster has its own Hive.
    other = services.cluster_create(acting_user=w.admin, name="bigdata2", kind=Cluster.Kind.YARN)
    assert post_service(w.admin, w.t3, other, "sales").status_code == 201


def test_only_hadoop_clusters_hold_hive_databases(yarn_world, k8s_world):
    before = service_state()
    response = post_service(yarn_world.admin, yarn_world.t1, k8s_world.cluster, "sales")
    assert response.status_code == 400
    assert list(response.json()) == ["cluster"]
    assert service_state() == before


def test_who_may_link_a_database(yarn_world):
    """Those who manage the tenant's storage (admins above it). A (admin of t1 and t2) links one for
    her sub-tenant t1/etl, not for t1 itself (its resources come from above); B (t3's admin) does not
    see t1/etl at all, and nothing changes."""
    w = yarn_world
    etl = sub_tenant(w, w.t1, "etl")
    before = service_state()
    assert post_service(w.a, w.t1, w.cluster, "sales").status_code == 403
    outsider = post_service(w.b, etl, w.cluster, "sales")
    assert outsider.status_code == 400 and b"etl" not in outsider.content
    assert service_state() == before

    response = post_service(w.a, etl, w.cluster, "etl_staging")
    assert response.status_code == 201, response.content
    service = TenantService.objects.get(pk=response.json()["id"])
    event = AuditEvent.objects.filter(action="TENANT_SERVICE_CREATED").latest("pk")
    assert (event.actor, event.tenant, event.after) == (
        w.a,
        etl,
        {"kind": "hive_database", "name": "etl_staging"},
    )
    assert ProvisioningIntent.objects.filter(tenant_id=etl.pk, reason="TENANT_SERVICE_CREATED").exists()

    # B neither lists nor reads nor removes it.
    b = TokenClient().as_user(w.b)
    assert b.get("/api/v1/tenant-services/").json()["count"] == 0
    assert b.get(f"/api/v1/tenant-services/{service.pk}/").status_code == 404
    assert b.delete(f"/api/v1/tenant-services/{service.pk}/").status_code == 404
    # C, admin of t1, reads it; it cannot be changed in place, only removed.
    c = TokenClient().as_user(w.c)
    assert c.get(f"/api/v1/tenant-services/?tenant={etl.pk}").json()["count"] == 1
    assert c.patch(f"/api/v1/tenant-services/{service.pk}/", {"name": "x"}, format="json").status_code == 405
    assert c.delete(f"/api/v1/tenant-services/{service.pk}/").status_code == 204
    assert not TenantService.objects.filter(pk=service.pk).exists()
    assert AuditEvent.objects.filter(action="TENANT_SERVICE_DELETED", tenant=etl).count() == 1


def test_a_cluster_in_use_by_a_database_is_not_deleted(yarn_world):
    w = yarn_world
    other = services.cluster_create(acting_user=w.admin, name="bigdata2", kind=Cluster.Kind.YARN)
    services.tenant_service_create(
        acting_user=w.admin, tenant=w.t2, cluster=other, kind="hive_database", name="sales"
    )
    with pytest.raises(ValidationError) as refused:
        services.cluster_delete(acting_user=w.admin, cluster=other)
    assert refused.value.message_dict == {
        "cluster": ["Cluster bigdata2 is still used by Hive databases sales (t2); remove those first."]
    }


def test_the_export_script_makes_the_warehouse_directory_with_the_tenants_acls(yarn_world):
    w = yarn_world
    services.tenant_service_create(
        acting_user=w.admin, tenant=w.t3, cluster=w.cluster, kind="hive_database", name="sales"
    )
    script = provisioning_services.hadoop_files_render(acting_user=w.admin, cluster=w.cluster)[
        "hdfs-setup.sh"
    ]
    calls = hdfs_script_calls(script)
    path = f"{WAREHOUSE}/sales.db"
    assert ["dfs", "-mkdir", "-p", path] in calls
    assert ["dfs", "-chown", "hdfs:t3", path] in calls
    [acl] = [call for call in calls if call[:3] == ["dfs", "-setfacl", "-m"] and call[-1] == path]
    assert {"group:t3:rwx", "user:userb:rwx", "default:group:t3:rwx"} <= set(acl[3].split(","))
    assert "userc" not in acl[3] and "usera" not in acl[3]
    assert widenings() == []


def test_the_services_tab_lists_and_links_databases(yarn_world, settings):
    settings.CANOPY_HIVE_WAREHOUSE_ROOT = "/hive/warehouse/"
    w = yarn_world
    etl = sub_tenant(w, w.t1, "etl")
    admin = Client()
    admin.force_login(w.a)

    page = admin.get(f"/tenants/{etl.pk}/?tab=services", HTTP_HX_REQUEST="true").content.decode()
    assert "No services linked." in page and 'id="add-service"' in page

    # A refusal keeps what was typed and says why.
    refused = admin.post(
        f"/tenants/{etl.pk}/services/", {"cluster": w.cluster.pk, "kind": "hive_database", "name": "Etl"}
    )
    assert refused.status_code == 302 and not TenantService.objects.exists()
    again = admin.get(refused["Location"]).content.decode()
    assert 'value="Etl"' in again and "A Hive database name is" in again

    done = admin.post(
        f"/tenants/{etl.pk}/services/", {"cluster": w.cluster.pk, "kind": "hive_database", "name": "etl"}
    )
    assert done.status_code == 302
    page = admin.get(done["Location"]).content.decode()
    assert "<code>/hive/warehouse/etl.db</code>" in page and 'data-service="hive_database:etl"' in page

    # C, admin of t1, gets no form on t1 itself (its storage is managed from above) but removes etl's.
    own = Client()
    own.force_login(w.c)
    page = own.get(f"/tenants/{w.t1.pk}/?tab=services", HTTP_HX_REQUEST="true").content.decode()
    assert 'id="add-service"' not in page
    service = TenantService.objects.get()
    assert own.post(f"/tenant-services/{service.pk}/remove/").status_code == 302
    assert not TenantService.objects.exists()
