"""Usage moved to its own app (issue 17) without moving a row: a database at the migrations before
the move, with usage rows in it, keeps every row, its content types (so the permissions and the
admin's history that point at them) and its admin pages; and the move goes back the same way."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import reverse

from usage.models import FlavorUsage, UsageCollection, UsageRollup, UsageSample, Workload

# Where main stood before usage had its own app.
BEFORE = [("tenants", "0011_kueue_usage"), ("provisioning", "0006_kubernetes_quota_engine")]
T0 = datetime.datetime(2026, 11, 20, 12, 0, tzinfo=datetime.UTC)
MOVED = {
    ("tenants", "usagesample"): UsageSample,
    ("tenants", "usagerollup"): UsageRollup,
    ("tenants", "workload"): Workload,
    ("tenants", "flavorusage"): FlavorUsage,
    ("provisioning", "usagecollection"): UsageCollection,
}


def migrate(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    ContentType.objects.clear_cache()  # the migrations relabel content types under the cache
    return executor


def latest() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def old_rows(apps) -> dict[tuple[str, str], list[dict]]:
    return {
        (label, name): list(apps.get_model(label, name).objects.order_by("pk").values())
        for label, name in MOVED
    }


def new_rows() -> dict[tuple[str, str], list[dict]]:
    return {key: list(model.objects.order_by("pk").values()) for key, model in MOVED.items()}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_database_from_before_the_move_keeps_its_usage_rows_content_types_and_admin_pages():
    executor = migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    cluster = old.get_model("tenants", "Cluster").objects.create(name="gpu", kind="kubernetes")
    pool = old.get_model("tenants", "ResourcePool").objects.create(cluster=cluster, name="default")
    tenant = old.get_model("tenants", "Tenant").objects.create(
        name="dept", name_path="dept", path="0009", depth=1
    )
    figures = {"gpu_used": 1.5, "gpu_allocated": 4.0, "gpu_borrowed": 0.5, "hdfs_files_used": 12.0}
    old.get_model("tenants", "UsageSample").objects.create(tenant=tenant, cluster=cluster, time=T0, **figures)
    old.get_model("tenants", "UsageRollup").objects.create(
        tenant=tenant, cluster=cluster, time=T0, resolution="hour", samples=60, **figures
    )
    workload = old.get_model("tenants", "Workload").objects.create(
        tenant=tenant,
        cluster=cluster,
        kind="Pod",
        namespace="dept",
        name="train-1",
        submitted_by="bob",
        username="bob",
        state="pending",
        gpu=1,
        seen_at=T0,
        queue_position=2,
        waiting_reason="couldn't assign flavors",
    )
    old.get_model("tenants", "FlavorUsage").objects.create(
        tenant=tenant, cluster=cluster, pool=pool, seen_at=T0, gpu_used=1, gpu_guaranteed=None
    )
    old.get_model("provisioning", "UsageCollection").objects.create(
        cluster=cluster, state="partial", message="HDFS left out", samples=1, workloads=1
    )
    before = old_rows(old)
    assert all(before.values())
    # Content types and permissions as a database from before the move has them: the tenants' and
    # provisioning's (this one was made from the migrations after it).
    ContentType.objects.filter(app_label="usage").delete()
    types = {}
    for label, model in MOVED:
        content_type, _ = ContentType.objects.get_or_create(app_label=label, model=model)
        for action in ("add", "change", "delete", "view"):
            Permission.objects.get_or_create(
                content_type=content_type,
                codename=f"{action}_{model}",
                defaults={"name": f"Can {action} {model}"},
            )
        types[(label, model)] = content_type.pk
    admin = get_user_model().objects.create_superuser("root", "root@example.org", "pw")
    auditor = get_user_model().objects.create_user("auditor")
    auditor.user_permissions.add(
        Permission.objects.get(content_type_id=types[("tenants", "workload")], codename="view_workload")
    )
    LogEntry.objects.create(
        user=admin,
        content_type_id=types[("tenants", "workload")],
        object_id=str(workload.pk),
        object_repr="Pod dept/train-1",
        action_flag=CHANGE,
    )

    migrate(latest())

    assert new_rows() == {key: rows for key, rows in before.items()}
    assert {key: ContentType.objects.get_for_model(model).pk for key, model in MOVED.items()} == types
    assert not ContentType.objects.filter(
        app_label__in=["tenants", "provisioning"], model__in=[m for _, m in MOVED]
    )
    assert get_user_model().objects.get(username="auditor").has_perm("usage.view_workload")
    moved = Workload.objects.get(pk=workload.pk)
    assert LogEntry.objects.get().get_edited_object() == moved
    client = Client()
    client.force_login(admin)
    collection = UsageCollection.objects.get()
    changelist = client.get(reverse("admin:usage_usagecollection_changelist"))
    assert changelist.status_code == 200 and "HDFS left out" in changelist.content.decode()
    change = client.get(reverse("admin:usage_usagecollection_change", args=[collection.pk]))
    assert change.status_code == 200

    # And back: the rows stay, the content types are the old apps' again.
    executor = migrate(BEFORE)
    assert old_rows(executor.loader.project_state(BEFORE).apps) == before
    assert {key: ContentType.objects.get(app_label=key[0], model=key[1]).pk for key in MOVED} == types
    migrate(latest())
