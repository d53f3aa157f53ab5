"""The Django admin, through its real pages: its forms call the services, so it refuses what the API
refuses, shows the service's message on the page, and audits what it writes."""

from __future__ import annotations

import html
from datetime import timedelta

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from tenants import services
from tenants.models import (
    Allocation,
    AuditEvent,
    Cluster,
    Membership,
    NfsShare,
    NfsShareGrant,
    QuotaPlan,
    Tenant,
    Volume,
    VolumeAttachment,
)
from tests.tenants.builders import GI, spec

PARENT_FULL = (
    "department1 has 3 GPUs in pool gpu-cluster/default; its sub-tenants hold 3 GPUs, so 0 GPUs is left."
)


@pytest.fixture
def admin_client_as_platform_admin(client, platform_admin):
    # Through the admin's sign-in page: the sign-in rate limit (django-axes) needs the request.
    response = client.post(
        reverse("admin:login"), {"username": platform_admin.username, "password": "not-a-secret-1"}
    )
    assert response.status_code == 302, response.content[:300]
    return client


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def management_form(prefix: str, initial: int = 0) -> dict:
    return {
        f"{prefix}-TOTAL_FORMS": str(initial),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def dev3_under(world) -> Tenant:
    return services.tenant_create(acting_user=world.admin, parent=world.department1, name="dev3")


def allocation_form(tenant: Tenant, pool, **amounts) -> dict:
    data = {
        "tenant": tenant.pk,
        "pool": pool.pk,
        "gpu": "",
        "cpu_millicores": "",
        "memory_bytes": "",
        "capacity_percent": "",
        "max_capacity_percent": "",
        "_save": "Save",
    }
    data.update({name: str(value) for name, value in amounts.items()})
    return data


def test_a_cluster_added_in_the_admin_goes_through_the_service(
    admin_client_as_platform_admin, platform_admin
):
    response = admin_client_as_platform_admin.post(
        admin_url(Cluster, "add"), {"name": "bigdata", "kind": "yarn", "description": "", "_save": "Save"}
    )
    assert response.status_code == 302
    cluster = Cluster.objects.get(name="bigdata")
    assert list(cluster.pools.values_list("name", flat=True)) == ["default"]
    event = AuditEvent.objects.get(action="CLUSTER_CREATED")
    assert event.actor == platform_admin and event.after == {
        "name": "bigdata",
        "kind": "yarn",
        "description": "",
    }


def test_a_wrong_cluster_name_in_the_admin_is_a_form_error(admin_client_as_platform_admin):
    response = admin_client_as_platform_admin.post(
        admin_url(Cluster, "add"), {"name": "Big Data", "kind": "yarn", "description": ""}
    )
    assert response.status_code == 200
    assert "DNS-1123 label" in response.context["adminform"].form.errors["name"][0]
    assert not Cluster.objects.exists()


def inline_pages(world) -> dict:
    allocation = Allocation.objects.get(tenant=world.dev1)
    return {
        "tenant-add": (
            admin_url(Tenant, "add"),
            {
                "parent": world.department1.pk,
                "name": "dev3",
                "display_name": "",
                "description": "",
                "plan": "",
                **management_form("allocations"),
            },
            lambda: Tenant.objects.filter(name_path="department1/dev3").exists(),
        ),
        "tenant-change": (
            admin_url(Tenant, "change", world.dev1.pk),
            {
                "display_name": "Bob's group",
                "description": "",
                **management_form("allocations", 1),
                "allocations-0-id": allocation.pk,
                "allocations-0-tenant": world.dev1.pk,
            },
            lambda: Tenant.objects.get(pk=world.dev1.pk).display_name == "Bob's group",
        ),
        "volume-add": (
            admin_url(Volume, "add"),
            {
                "name": "dev1-public",
                "description": "",
                "share": world.share.pk,
                "sub_path": "dev1",
                "capacity_bytes": str(100 * GI),
                "access_mode": "ReadWriteMany",
                "scope": "private",
                "attached_tenants": [world.dev1.pk],
                **management_form("attachments"),
            },
            lambda: Volume.objects.filter(name="dev1-public").exists(),
        ),
        "plan-add": (
            admin_url(QuotaPlan, "add"),
            {
                "name": "gpu-small",
                "description": "",
                **management_form("allocations"),
                **management_form("storage"),
            },
            lambda: QuotaPlan.objects.filter(name="gpu-small").exists(),
        ),
    }


@pytest.mark.parametrize("page", ["tenant-add", "tenant-change", "volume-add", "plan-add"])
def test_admin_pages_with_inlines_save_through_the_service(admin_client_as_platform_admin, k8s_world, page):
    client = admin_client_as_platform_admin
    client.raise_request_exception = False
    url, data, saved = inline_pages(k8s_world)[page]
    response = client.post(url, {**data, "_save": "Save"})
    assert response.status_code == 302
    assert saved()


def test_an_allocation_above_the_parent_is_a_form_error_and_creates_nothing(
    admin_client_as_platform_admin, k8s_world
):
    client, w = admin_client_as_platform_admin, k8s_world
    dev3 = dev3_under(w)
    allocations, events = Allocation.objects.count(), AuditEvent.objects.count()

    response = client.post(admin_url(Allocation, "add"), allocation_form(dev3, w.pool, gpu=1))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["gpu"] == [PARENT_FULL]
    assert html.escape(PARENT_FULL) in response.content.decode()
    assert Allocation.objects.count() == allocations
    assert not Allocation.objects.filter(tenant=dev3).exists()
    assert AuditEvent.objects.count() == events


def test_a_valid_allocation_added_in_the_admin_is_saved_and_audited(
    admin_client_as_platform_admin, k8s_world
):
    client, w = admin_client_as_platform_admin, k8s_world
    dev3 = dev3_under(w)

    response = client.post(
        admin_url(Allocation, "add"),
        allocation_form(dev3, w.pool, gpu=0, cpu_millicores=2000, memory_bytes=10 * GI),
    )

    assert response.status_code == 302 and response.headers["Location"] == admin_url(Allocation, "changelist")
    allocation = Allocation.objects.get(tenant=dev3, pool=w.pool)
    assert (allocation.gpu, allocation.cpu_millicores, allocation.memory_bytes) == (0, 2000, 10 * GI)
    event = AuditEvent.objects.get(action="ALLOCATION_CREATED", target_id=str(allocation.pk))
    assert event.actor == w.admin and event.tenant == dev3
    assert event.after["gpu"] == 0 and event.after["cpu_millicores"] == 2000
    assert event.after["memory_bytes"] == 10 * GI


def test_changing_an_allocation_in_the_admin_follows_the_same_rules(
    admin_client_as_platform_admin, k8s_world
):
    client, w = admin_client_as_platform_admin, k8s_world
    dev1_allocation = Allocation.objects.get(tenant=w.dev1)
    events = AuditEvent.objects.count()
    response = client.post(
        admin_url(Allocation, "change", dev1_allocation.pk),
        {
            "gpu": "2",
            "cpu_millicores": "",
            "memory_bytes": "",
            "capacity_percent": "",
            "max_capacity_percent": "",
        },
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["gpu"] == [
        "department1 has 3 GPUs in pool gpu-cluster/default; its sub-tenants hold 3 GPUs, "
        "so 0 GPUs is left and department1/dev1 may have at most 1 GPU."
    ]
    assert Allocation.objects.get(pk=dev1_allocation.pk).gpu == 1
    assert AuditEvent.objects.count() == events


def test_deleting_a_tenant_with_children_in_the_admin_deletes_the_subtree(
    admin_client_as_platform_admin, k8s_world
):
    client, w = admin_client_as_platform_admin, k8s_world
    url = admin_url(Tenant, "delete", w.department1.pk)
    confirmation = client.get(url)
    assert confirmation.status_code == 200
    assert "Are you sure you want to delete the tenant" in confirmation.content.decode()

    response = client.post(url, {"post": "yes"})

    assert response.status_code == 302 and response.headers["Location"] == admin_url(Tenant, "changelist")
    assert not Tenant.objects.filter(name_path__startswith="department1").exists()
    assert not Allocation.objects.filter(pool=w.pool).exists()
    assert not Membership.objects.filter(user__username__in=["bob", "tom", "dept-admin"]).exists()
    event = AuditEvent.objects.get(action="TENANT_DELETED")
    assert event.actor == w.admin
    assert event.before["sub_tenants"] == ["department1/dev1", "department1/dev2"]
    assert list(Tenant.objects.values_list("name_path", flat=True)) == ["default"]


def test_the_admin_delete_confirmation_names_the_sub_tenants_that_go_with_it(
    admin_client_as_platform_admin, k8s_world
):
    page = admin_client_as_platform_admin.get(admin_url(Tenant, "delete", k8s_world.department1.pk))
    text = page.content.decode()
    assert "department1/dev1" in text and "department1/dev2" in text


def test_bulk_deleting_a_parent_and_its_child_in_the_admin_works(admin_client_as_platform_admin, k8s_world):
    client, w = admin_client_as_platform_admin, k8s_world
    client.raise_request_exception = False
    response = client.post(
        admin_url(Tenant, "changelist"),
        {"action": "delete_selected", "_selected_action": [w.department1.pk, w.dev1.pk], "post": "yes"},
    )
    assert not Tenant.objects.filter(name_path__startswith="department1").exists()
    assert response.status_code == 302


@pytest.fixture
def populated(k8s_world, yarn_world):
    """Both documents' worlds plus a volume, a plan and an HDFS directory: a row for every model."""
    w = k8s_world
    services.volume_create(
        acting_user=w.admin,
        spec=services.VolumeSpec(
            share=w.share,
            sub_path="department1",
            name="department1-public",
            capacity_bytes=100 * GI,
            scope="shared",
            tenants=[w.dev1, w.dev2],
        ),
    )
    services.plan_create(
        acting_user=w.admin,
        name="gpu-small",
        allocations=[spec(w.pool, gpu=1)],
        storage=[services.StorageSpec(cluster=yarn_world.cluster, file_quota=1_000_000)],
    )
    services.storage_create(
        acting_user=w.admin,
        tenant=yarn_world.t1,
        spec=services.StorageSpec(cluster=yarn_world.cluster, space_quota_bytes=10 * 1024 * GI),
    )
    # A time-bound grant: dev1 without its GPU until tomorrow.
    services.allocation_set(
        acting_user=w.admin,
        tenant=w.dev1,
        spec=spec(w.pool, gpu=0),
        ends_at=timezone.now() + timedelta(days=1),
    )
    return w


REGISTERED = sorted(admin.site._registry, key=lambda model: model._meta.label)


@pytest.mark.parametrize("model", REGISTERED, ids=[model._meta.label for model in REGISTERED])
def test_every_registered_models_changelist_and_change_page_return_200(
    admin_client_as_platform_admin, populated, model
):
    response = admin_client_as_platform_admin.get(admin_url(model, "changelist"))
    assert response.status_code == 200
    rows = model._default_manager.all()
    if model._meta.label.startswith("tenants."):
        assert rows.exists(), f"the populated worlds have no {model._meta.label} row"
    for obj in rows[:3]:
        assert admin_client_as_platform_admin.get(admin_url(model, "change", obj.pk)).status_code == 200


def test_the_changelists_show_the_worlds_rows(admin_client_as_platform_admin, populated):
    client = admin_client_as_platform_admin
    tenants = client.get(admin_url(Tenant, "changelist")).content.decode()
    for path in ("department1/dev1", "department1/dev2", "t1", "t3"):
        assert f">{path}<" in tenants
    volumes = client.get(admin_url(Volume, "changelist")).content.decode()
    assert "department1-public" in volumes
    claims = client.get(admin_url(VolumeAttachment, "changelist")).content.decode()
    assert "department1-public-dev1" in claims and "department1-public-dev2" in claims


def test_nfs_shares_and_grants_in_the_admin_go_through_the_services(
    admin_client_as_platform_admin, k8s_world
):
    """Issue 15: shares and grants are the platform's, in the admin as everywhere: registered,
    granted and refused by the services, with their messages on the page."""
    w = k8s_world
    client = admin_client_as_platform_admin
    added = client.post(
        admin_url(NfsShare, "add"),
        {
            "cluster": w.cluster.pk,
            "name": "lab-nas",
            "server": "10.0.0.9",
            "base_path": "/exports/lab/",
            "description": "",
            **management_form("grants"),
            "_save": "Save",
        },
    )
    assert added.status_code == 200
    assert "plain form (/exports/lab)" in added.context["adminform"].form.errors["base_path"][0]
    assert not NfsShare.objects.filter(name="lab-nas").exists()
    added = client.post(
        admin_url(NfsShare, "add"),
        {
            "cluster": w.cluster.pk,
            "name": "lab-nas",
            "server": "10.0.0.9",
            "base_path": "/exports/lab",
            "description": "",
            **management_form("grants"),
            "_save": "Save",
        },
    )
    assert added.status_code == 302
    share = NfsShare.objects.get(name="lab-nas")
    granted = client.post(
        admin_url(NfsShareGrant, "add"), {"share": share.pk, "tenant": w.dev1.pk, "_save": "Save"}
    )
    assert granted.status_code == 302
    assert AuditEvent.objects.filter(action="NFS_SHARE_GRANTED", tenant=w.dev1).exists()
    services.volume_create(
        acting_user=w.admin,
        spec=services.VolumeSpec(
            share=share, sub_path="x", name="lab-x", capacity_bytes=GI, tenants=[w.dev1]
        ),
    )
    grant = NfsShareGrant.objects.get(share=share)
    response = client.post(admin_url(NfsShareGrant, "delete", grant.pk), {"post": "yes"}, follow=True)
    assert "Not deleted: Volumes lab-x of share lab-nas" in html.unescape(response.content.decode())
    # A share in use: the admin's own protection names the volume before the service is asked.
    response = client.post(admin_url(NfsShare, "delete", share.pk), {"post": "yes"}, follow=True)
    assert "Cannot delete nfs share" in response.content.decode() and "lab-x" in response.content.decode()
    assert (
        NfsShareGrant.objects.filter(pk=grant.pk).exists() and NfsShare.objects.filter(pk=share.pk).exists()
    )
