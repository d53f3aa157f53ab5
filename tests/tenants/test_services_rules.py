"""The allocation rules, enforced in the service layer for every writer."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from tenants import services
from tenants.models import Allocation, AuditEvent, ResourcePool, Tenant
from tests.tenants.builders import GI, spec


def messages(exc_info, field):
    return " ".join(exc_info.value.message_dict[field])


def test_children_never_sum_above_their_parent(k8s_world):
    w = k8s_world
    # department1 has 3 GPUs; dev1 holds 1 and dev2 holds 2, so nothing is left for a third child.
    with pytest.raises(ValidationError) as exc:
        services.tenant_create(
            acting_user=w.admin, parent=w.department1, name="dev3", allocations=[spec(w.pool, gpu=1)]
        )
    text = messages(exc, "gpu")
    assert "department1 has 3 GPUs" in text and "hold 3 GPUs" in text and "so 0 GPUs is left." in text
    assert not Tenant.objects.filter(name="dev3").exists()


def test_children_sum_is_checked_per_resource(k8s_world):
    w = k8s_world
    services.allocation_set(
        acting_user=w.admin,
        tenant=w.dev1,
        spec=spec(w.pool, gpu=1, cpu_millicores=2000, memory_bytes=10 * GI),
    )
    services.allocation_set(
        acting_user=w.admin,
        tenant=w.department1,
        spec=spec(w.pool, gpu=3, cpu_millicores=12_000, memory_bytes=90 * GI),
    )
    with pytest.raises(ValidationError) as exc:
        services.allocation_set(
            acting_user=w.admin,
            tenant=w.dev2,
            spec=spec(w.pool, gpu=2, cpu_millicores=10_001, memory_bytes=60 * GI),
        )
    assert set(exc.value.message_dict) == {"cpu"}
    assert messages(exc, "cpu") == (
        "department1 has 12 CPU in pool gpu-cluster/default; its sub-tenants hold 10 CPU, "
        "so 2 CPU is left and department1/dev2 may have at most 10 CPU."
    )
    services.allocation_set(
        acting_user=w.admin,
        tenant=w.dev2,
        spec=spec(w.pool, gpu=2, cpu_millicores=10_000, memory_bytes=80 * GI),
    )


def test_a_child_is_never_unlimited_where_its_parent_is_limited(k8s_world):
    w = k8s_world
    with pytest.raises(ValidationError) as exc:
        services.allocation_set(acting_user=w.admin, tenant=w.dev1, spec=spec(w.pool, gpu=None))
    assert "cannot be unlimited" in messages(exc, "gpu")
    assert Allocation.objects.get(tenant=w.dev1).gpu == 1


def test_unlimited_parent_allows_any_child_amount(k8s_world):
    w = k8s_world
    # department1 is unlimited in CPU and memory: dev2 may take 8 CPUs, dev1 may stay unlimited.
    allocation = services.allocation_set(
        acting_user=w.admin, tenant=w.dev1, spec=spec(w.pool, gpu=1, cpu_millicores=100_000_000)
    )
    assert allocation.cpu_millicores == 100_000_000


def test_limiting_a_parent_with_unlimited_children_names_them(k8s_world):
    w = k8s_world
    with pytest.raises(ValidationError) as exc:
        services.allocation_set(
            acting_user=w.admin, tenant=w.department1, spec=spec(w.pool, gpu=3, cpu_millicores=12_000)
        )
    assert "department1/dev1" in messages(exc, "cpu")


def test_level1_allocations_never_exceed_the_pool(k8s_world):
    w = k8s_world
    with pytest.raises(ValidationError) as exc:
        services.tenant_create(
            acting_user=w.admin, parent=None, name="department2", allocations=[spec(w.pool, gpu=1)]
        )
    assert "Pool gpu-cluster/default has 3 GPUs" in messages(exc, "gpu")
    # Unlimited means no reservation: a level-1 tenant may be unlimited beside a full pool.
    services.tenant_create(
        acting_user=w.admin, parent=None, name="department2", allocations=[spec(w.pool, gpu=0)]
    )


def test_lowering_a_parent_below_its_children_is_refused_and_names_them(k8s_world):
    w = k8s_world
    with pytest.raises(ValidationError) as exc:
        services.allocation_set(acting_user=w.admin, tenant=w.department1, spec=spec(w.pool, gpu=2))
    text = messages(exc, "gpu")
    assert "department1/dev1 (1 GPU)" in text and "department1/dev2 (2 GPUs)" in text
    assert Allocation.objects.get(tenant=w.department1).gpu == 3


def test_lowering_a_pool_below_what_is_allocated_names_the_tenants(k8s_world):
    w = k8s_world
    with pytest.raises(ValidationError) as exc:
        services.pool_update(acting_user=w.admin, pool=w.pool, gpu_capacity=2)
    assert "department1 (3 GPUs)" in messages(exc, "gpu_capacity")
    assert ResourcePool.objects.get(pk=w.pool.pk).gpu_capacity == 3


def test_a_child_needs_its_parent_to_hold_the_pool(k8s_world, platform_admin):
    w = k8s_world
    other = services.pool_create(acting_user=w.admin, cluster=w.cluster, name="a100", gpu_capacity=8)
    with pytest.raises(ValidationError) as exc:
        services.allocation_set(acting_user=w.admin, tenant=w.dev1, spec=spec(other, gpu=1))
    assert "department1 has no allocation in pool gpu-cluster/a100" in messages(exc, "pool")


def test_yarn_children_capacities_never_exceed_100_percent(yarn_world):
    w = yarn_world
    services.tenant_create(
        acting_user=w.admin, parent=w.t1, name="etl", allocations=[spec(w.pool, capacity_percent=Decimal(60))]
    )
    with pytest.raises(ValidationError) as exc:
        services.tenant_create(
            acting_user=w.admin,
            parent=w.t1,
            name="adhoc",
            allocations=[spec(w.pool, capacity_percent=Decimal(41))],
        )
    assert "cannot exceed 100 %" in messages(exc, "capacity") and "so 40 % is left." in messages(
        exc, "capacity"
    )
    # Level-1 queues share the root: t1 40 + t2 30 + t3 20 leave 10 %.
    with pytest.raises(ValidationError):
        services.tenant_create(
            acting_user=w.admin,
            parent=None,
            name="t4",
            allocations=[spec(w.pool, capacity_percent=Decimal(11))],
        )
    services.tenant_create(
        acting_user=w.admin, parent=None, name="t4", allocations=[spec(w.pool, capacity_percent=Decimal(10))]
    )


def test_yarn_maximum_capacity_is_not_below_capacity(yarn_world):
    w = yarn_world
    with pytest.raises(ValidationError) as exc:
        services.allocation_set(
            acting_user=w.admin,
            tenant=w.t2,
            spec=spec(w.pool, capacity_percent=Decimal(30), max_capacity_percent=Decimal(20)),
        )
    assert "cannot be below the capacity" in messages(exc, "max_capacity")


def test_yarn_pools_take_percent_and_kubernetes_pools_take_quantities(yarn_world, k8s_world):
    with pytest.raises(ValidationError) as exc:
        services.allocation_set(
            acting_user=yarn_world.admin, tenant=yarn_world.t2, spec=spec(yarn_world.pool, gpu=1)
        )
    assert "gpu" in exc.value.message_dict and "capacity" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.allocation_set(
            acting_user=k8s_world.admin,
            tenant=k8s_world.dev1,
            spec=spec(k8s_world.pool, gpu=1, capacity_percent=Decimal(5)),
        )
    assert "capacity" in exc.value.message_dict


def test_names_are_dns_labels_unique_among_siblings(k8s_world):
    w = k8s_world
    for bad in ("Dev3", "dev_3", "-dev", "x" * 64, ""):
        with pytest.raises(ValidationError) as exc:
            services.tenant_create(acting_user=w.admin, parent=w.department1, name=bad)
        assert "name" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.tenant_create(acting_user=w.admin, parent=w.department1, name="dev1")
    assert "already exists under department1" in messages(exc, "name")
    # The same name under another parent is fine.
    services.tenant_create(acting_user=w.admin, parent=None, name="dev1")


def test_leaf_tenants_have_no_children(k8s_world):
    w = k8s_world
    leaf = services.tenant_create(acting_user=w.admin, parent=w.department1, name="leafy", is_leaf=True)
    with pytest.raises(ValidationError) as exc:
        services.tenant_create(acting_user=w.admin, parent=leaf, name="child")
    assert "leaf" in messages(exc, "parent")
    with pytest.raises(ValidationError):
        services.tenant_update(acting_user=w.admin, tenant=w.department1, is_leaf=True)


def test_depth_is_limited_by_the_setting(platform_admin, settings):
    settings.CANOPY_MAX_TENANT_DEPTH = 3
    parent = None
    for level in range(1, 4):
        parent = services.tenant_create(acting_user=platform_admin, parent=parent, name=f"level{level}")
    assert parent.depth == 3 and parent.name_path == "level1/level2/level3"
    with pytest.raises(ValidationError) as exc:
        services.tenant_create(acting_user=platform_admin, parent=parent, name="level4")
    assert "at most 3 levels" in messages(exc, "parent")


def test_move_rewrites_paths_and_refuses_cycles(k8s_world):
    w = k8s_world
    team = services.tenant_create(acting_user=w.admin, parent=w.dev1, name="team")
    with pytest.raises(ValidationError) as exc:
        services.tenant_move(acting_user=w.admin, tenant=w.department1, new_parent=team)
    assert "cannot move under itself" in messages(exc, "parent")
    # At level 1, dev1's GPU would come from the pool, which department1 already fills.
    with pytest.raises(ValidationError) as exc:
        services.tenant_move(acting_user=w.admin, tenant=w.dev1, new_parent=None)
    assert "level-1 tenants hold 3 GPUs, so 0 GPUs is left." in messages(exc, "gpu")
    services.pool_update(acting_user=w.admin, pool=w.pool, gpu_capacity=4)
    moved = services.tenant_move(acting_user=w.admin, tenant=w.dev1, new_parent=None)
    assert moved.depth == 1 and moved.name_path == "dev1"
    assert Tenant.objects.get(pk=team.pk).name_path == "dev1/team"
    assert Tenant.objects.get(pk=w.department1.pk).numchild == 1
    assert AuditEvent.objects.filter(action="TENANT_MOVED", target_id=str(w.dev1.pk)).exists()


def test_move_refuses_allocations_that_do_not_fit_the_new_parent(k8s_world):
    w = k8s_world
    small = services.tenant_create(
        acting_user=w.admin, parent=None, name="small", allocations=[spec(w.pool, gpu=0)]
    )
    with pytest.raises(ValidationError) as exc:
        services.tenant_move(acting_user=w.admin, tenant=w.dev2, new_parent=small)
    assert "small has 0 GPUs" in messages(exc, "gpu")
    assert Tenant.objects.get(pk=w.dev2.pk).name_path == "department1/dev2"


def test_delete_asks_for_confirmation_and_lists_what_goes(k8s_world):
    w = k8s_world
    with pytest.raises(ValidationError) as exc:
        services.tenant_delete(acting_user=w.admin, tenant=w.department1)
    text = messages(exc, "confirm")
    assert "department1/dev1" in text and "department1/dev2" in text and "membership" in text
    assert Tenant.objects.filter(pk=w.department1.pk).exists()
    services.tenant_delete(acting_user=w.admin, tenant=w.department1, confirm=True)
    assert not Tenant.objects.filter(name_path__startswith="department1").exists()
    assert not Allocation.objects.filter(pool=w.pool).exists()
    event = AuditEvent.objects.get(action="TENANT_DELETED")
    assert event.before["sub_tenants"] == ["department1/dev1", "department1/dev2"]


def test_the_default_tenant_stays(platform_admin):
    default = Tenant.objects.get(name_path="default")
    with pytest.raises(ValidationError):
        services.tenant_delete(acting_user=platform_admin, tenant=default, confirm=True)


def test_deleting_an_empty_tenant_needs_no_confirmation_and_frees_its_allocation(k8s_world):
    w = k8s_world
    services.tenant_delete(acting_user=w.admin, tenant=w.dev2, confirm=True)
    services.tenant_create(
        acting_user=w.admin, parent=w.department1, name="dev3", allocations=[spec(w.pool, gpu=2)]
    )
    empty = services.tenant_create(acting_user=w.admin, parent=w.department1, name="empty")
    services.tenant_delete(acting_user=w.admin, tenant=empty)
    assert Tenant.objects.get(pk=w.department1.pk).numchild == 2


def test_suspend_and_resume_cover_the_subtree(k8s_world):
    w = k8s_world
    services.tenant_set_state(acting_user=w.admin, tenant=w.department1, state=Tenant.State.SUSPENDED)
    assert set(
        Tenant.objects.filter(name_path__startswith="department1").values_list("state", flat=True)
    ) == {"suspended"}
    services.tenant_set_state(acting_user=w.admin, tenant=w.department1, state=Tenant.State.ACTIVE)
    assert set(
        Tenant.objects.filter(name_path__startswith="department1").values_list("state", flat=True)
    ) == {"active"}


def test_plans_are_copied_and_later_edits_do_not_touch_tenants(k8s_world):
    w = k8s_world
    services.allocation_set(
        acting_user=w.admin,
        tenant=w.dev2,
        spec=spec(w.pool, gpu=1, cpu_millicores=8000, memory_bytes=60 * GI),
    )
    plan = services.plan_create(
        acting_user=w.admin,
        name="gpu-small",
        description="1 GPU, CPU and memory unlimited",
        allocations=[spec(w.pool, gpu=1)],
    )
    tenant = services.tenant_create(acting_user=w.admin, parent=w.department1, name="dev3", plan=plan)
    assert Allocation.objects.get(tenant=tenant).gpu == 1
    assert tenant.plan == plan
    services.plan_update(acting_user=w.admin, plan=plan, allocations=[spec(w.pool, gpu=0)])
    assert Allocation.objects.get(tenant=tenant).gpu == 1


def test_storage_directories_live_under_the_root_with_optional_quotas(yarn_world, settings):
    w = yarn_world
    directory = services.storage_create(
        acting_user=w.admin,
        tenant=w.t1,
        spec=services.StorageSpec(cluster=w.cluster, space_quota_bytes=10 * GI),
    )
    assert directory.path == "/tenant/t1" and directory.file_quota is None
    for bad in ("/data/t1", "tenant/t1", "/tenant/../etc", "/tenant/t1/"):
        with pytest.raises(ValidationError) as exc:
            services.storage_create(
                acting_user=w.admin, tenant=w.t1, spec=services.StorageSpec(cluster=w.cluster, path=bad)
            )
        assert "path" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.storage_create(
            acting_user=w.admin, tenant=w.t1, spec=services.StorageSpec(cluster=w.cluster, path="/tenant/t1")
        )
    assert "already a tenant directory" in messages(exc, "path")
    # Another tenant's directory is outside t2's root (issue 15; see test_storage_rules.py).
    with pytest.raises(ValidationError) as exc:
        services.storage_create(
            acting_user=w.admin, tenant=w.t2, spec=services.StorageSpec(cluster=w.cluster, path="/tenant/t1")
        )
    assert "live at or below its root /tenant/t2" in messages(exc, "path")


def test_shared_volume_gets_one_claim_per_tenant_on_one_directory(k8s_world):
    w = k8s_world
    shared = services.volume_create(
        acting_user=w.admin,
        spec=services.VolumeSpec(
            share=w.share,
            sub_path="d1",
            name="department1-public",
            capacity_bytes=100 * GI,
            scope="shared",
            tenants=[w.dev1, w.dev2],
        ),
    )
    claims = dict(shared.attachments.values_list("tenant__name", "claim_name"))
    assert claims == {"dev1": "department1-public-dev1", "dev2": "department1-public-dev2"}
    with pytest.raises(ValidationError) as exc:
        services.volume_create(
            acting_user=w.admin,
            spec=services.VolumeSpec(
                share=w.share,
                sub_path="dev1",
                name="dev1-public",
                capacity_bytes=GI,
                scope="private",
                tenants=[w.dev1, w.dev2],
            ),
        )
    assert "exactly one tenant" in messages(exc, "tenants")


def test_every_write_leaves_one_audit_row_with_before_and_after(k8s_world):
    w = k8s_world
    before_count = AuditEvent.objects.count()
    services.allocation_set(
        acting_user=w.admin,
        tenant=w.dev2,
        spec=spec(w.pool, gpu=1, cpu_millicores=4000, memory_bytes=30 * GI),
    )
    assert AuditEvent.objects.count() == before_count + 1
    event = AuditEvent.objects.first()
    assert event.action == "ALLOCATION_UPDATED" and event.actor == w.admin and event.tenant == w.dev2
    assert event.before["gpu"] == 2 and event.after["gpu"] == 1
    assert event.before["cpu_millicores"] == 8000 and event.after["cpu_millicores"] == 4000


def test_a_name_with_a_final_newline_is_no_dns_label(k8s_world):
    """Issue 15: the DNS-label pattern ended in `$`, which also matches before a final newline, so a
    writer that does not trim (a service call, a command) could make tenant `dev3\\n`, whose name
    then reaches HDFS paths, queue names and namespaces."""
    w = k8s_world
    for name in ("dev3\n", "dev3\r\n", "dev\n3"):
        with pytest.raises(ValidationError) as exc:
            services.tenant_create(acting_user=w.admin, parent=w.department1, name=name)
        assert "DNS-1123 label" in messages(exc, "name")
    assert not Tenant.objects.filter(name__startswith="dev3").exists()
