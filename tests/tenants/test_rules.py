"""tenants.rules: the allocation rules as pure functions, and the one meaning of "left" (a parent's
allocation minus what its sub-tenants hold; for the tenant being edited, the most it may have is
what it holds plus that) on every surface: the service's refusal, the form's hint, the Resources
tab, My access, the API, the Pools page and the clusters' quota (issue 18, point 2)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from provisioning.models import TenantSync
from provisioning.selectors import tenant_state
from tenants import rules, services
from tenants.amounts import RESOURCE_BY_NAME, percent_human
from tenants.models import Tenant
from tests.tenants.builders import GI, spec

CPU = RESOURCE_BY_NAME["cpu"]
GPU = RESOURCE_BY_NAME["gpu"]


def amounts(**given) -> dict:
    """Allocation columns, unset ones None (unlimited, no burst)."""
    columns = ("gpu", "cpu_millicores", "memory_bytes", "capacity_percent", "max_capacity_percent")
    values = dict.fromkeys((*columns, "gpu_burst", "cpu_millicores_burst", "memory_bytes_burst"))
    values.update(given)
    return values


# ---------------------------------------------------------------------------------------------
# Pure figures


def test_left_is_the_limit_minus_what_is_held_never_below_nothing_and_none_when_unlimited():
    assert rules.left(12_000, 10_000) == 2_000
    assert rules.left(3, 3) == 0
    assert rules.left(3, 5) == 0  # never shown as a negative amount
    assert rules.left(None, 5) is None
    assert rules.left(Decimal(100), Decimal("60.5")) == Decimal("39.5")
    assert rules.left(Decimal(100), Decimal(120)) == Decimal(0) and isinstance(
        rules.left(Decimal(100), 120), Decimal
    )


def test_the_most_a_tenant_may_have_is_what_it_holds_plus_what_is_left():
    assert rules.most(8_000, 2_000) == 10_000
    assert rules.most(0, 2_000) == 2_000
    assert rules.most(5, None) is None
    assert rules.may_have("dev2", 8_000, 2_000, CPU.exactly) == " and dev2 may have at most 10 CPU"
    assert rules.may_have("dev3", 0, 2_000, CPU.exactly) == ""  # what is left is then the most


def test_a_place_under_a_parent_names_the_parent_what_is_held_and_what_is_left():
    place = rules.Place(
        pool="gpu-cluster/default",
        yarn=False,
        capacity={"gpu": 3, "cpu": 12_000, "memory": 90 * GI},
        parent="department1",
        parent_holding=rules.Holding("department1", amounts(gpu=3, cpu_millicores=12_000)),
        held={"gpu": 3, "cpu_millicores": 10_000},
        holds={"gpu": 2, "cpu_millicores": 8_000},
    )
    errors = rules.allocation_errors("department1/dev2", amounts(gpu=2, cpu_millicores=10_001), place)
    assert dict(errors) == {
        "cpu": [
            "department1 has 12 CPU in pool gpu-cluster/default; its sub-tenants hold 10 CPU, "
            "so 2 CPU is left and department1/dev2 may have at most 10 CPU."
        ]
    }
    assert not rules.allocation_errors("department1/dev2", amounts(gpu=2, cpu_millicores=10_000), place)


def test_level_1_is_held_by_the_pool_and_a_yarn_queue_by_its_100_percent():
    level1 = rules.Place(
        pool="gpu-cluster/default",
        yarn=False,
        capacity={"gpu": 3, "cpu": 12_000, "memory": 90 * GI},
        held={"gpu": 3},
    )
    assert dict(rules.allocation_errors("t9", amounts(gpu=1), level1)) == {
        "gpu": ["Pool gpu-cluster/default has 3 GPUs; level-1 tenants hold 3 GPUs, so 0 GPUs is left."]
    }
    queue = rules.Place(
        pool="bigdata/default",
        yarn=True,
        capacity={"gpu": 0, "cpu": 64_000, "memory": 256 * GI},
        parent="t1",
        parent_holding=rules.Holding("t1", amounts(capacity_percent=Decimal(40))),
        held={"capacity_percent": Decimal(60)},
    )
    assert dict(rules.allocation_errors("t1/adhoc", amounts(capacity_percent=Decimal(41)), queue)) == {
        "capacity": [
            "The queues under t1 hold 60 % in pool bigdata/default; their capacities cannot exceed 100 %, "
            "so 40 % is left."
        ]
    }


def test_a_plans_rows_keep_the_rules_an_allocation_keeps_by_itself():
    assert rules.entry_errors("bigdata/default", True, amounts(gpu=1)) == [
        "Pool bigdata/default: YARN pools are shared by capacity percent; leave GPU, CPU and memory empty.",
        "Pool bigdata/default: Required for a YARN pool: the guaranteed percent of the parent queue.",
    ]
    assert rules.entry_errors(
        "bigdata/default", True, amounts(capacity_percent=Decimal(50), max_capacity_percent=Decimal(40))
    ) == ["Pool bigdata/default: The maximum capacity (40 %) cannot be below the capacity (50 %)."]
    assert rules.entry_errors("gpu-cluster/default", False, amounts(gpu=2, gpu_burst=1)) == [
        "Pool gpu-cluster/default: Burst must not be below the guaranteed 2 GPUs."
    ]
    assert rules.entry_errors("gpu-cluster/default", False, amounts(gpu=2, gpu_burst=4)) == []


def test_a_pool_never_goes_below_what_its_level_1_tenants_hold():
    pool = rules.PoolFigures("gpu-cluster/default", False, {"gpu": 2, "cpu": 12_000, "memory": 90 * GI})
    level1 = [
        rules.Holding("a", amounts(gpu=2, gpu_burst=3)),
        rules.Holding("b", amounts(gpu=1)),
        rules.Holding("c", amounts(gpu=None)),
    ]
    assert dict(rules.pool_errors(pool, level1)) == {
        "gpu_capacity": [
            "Level-1 tenants hold 3 GPUs of pool gpu-cluster/default: a (2 GPUs), b (1 GPU). "
            "Lower their allocations before the pool goes below that.",
            "Level-1 tenants may burst above 2 GPUs in pool gpu-cluster/default: a (3 GPUs). "
            "Lower their burst before the pool goes below that.",
        ]
    }


# ---------------------------------------------------------------------------------------------
# The same figure on every surface


@pytest.fixture
def two_cpu_left(k8s_world):
    """department1 has 12 CPU (all of the pool); dev1 holds 2 CPU and dev2 8 CPU: 2 CPU is left under
    department1, none in the pool, and dev2 may have at most 10 CPU."""
    w = k8s_world
    services.allocation_set(acting_user=w.admin, tenant=w.dev1, spec=spec(w.pool, gpu=1, cpu_millicores=2000))
    services.allocation_set(
        acting_user=w.admin, tenant=w.department1, spec=spec(w.pool, gpu=3, cpu_millicores=12_000)
    )
    return w


def page(world, who, url: str) -> str:
    client = Client()
    client.force_login(who)
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def test_the_refusal_the_hints_the_tabs_my_access_and_the_api_say_the_same_2_cpu_left(api, two_cpu_left):
    w = two_cpu_left
    # The service's refusals: for dev2, the most it may have; for a new sub-tenant, what is left.
    with pytest.raises(ValidationError) as edit:
        services.allocation_set(
            acting_user=w.admin,
            tenant=w.dev2,
            spec=spec(w.pool, gpu=2, cpu_millicores=10_001, memory_bytes=60 * GI),
        )
    assert edit.value.message_dict == {
        "cpu": [
            "department1 has 12 CPU in pool gpu-cluster/default; its sub-tenants hold 10 CPU, "
            "so 2 CPU is left and department1/dev2 may have at most 10 CPU."
        ]
    }
    with pytest.raises(ValidationError) as create:
        services.tenant_create(
            acting_user=w.admin,
            parent=w.department1,
            name="dev3",
            allocations=[spec(w.pool, gpu=0, cpu_millicores=2001)],
        )
    assert create.value.message_dict["cpu"] == [
        "department1 has 12 CPU in pool gpu-cluster/default; its sub-tenants hold 10 CPU, so 2 CPU is left."
    ]
    # What they say may be had is accepted (and dev2 goes back to its 8 CPU).
    for cpu in (10_000, 8_000):
        given = spec(w.pool, gpu=2, cpu_millicores=cpu, memory_bytes=60 * GI)
        services.allocation_set(acting_user=w.admin, tenant=w.dev2, spec=given)

    # The hints beside the fields, in the same words and units.
    dept_admin = w.people.dept_admin
    assert "department1 has 2 CPU left and dev2 may have at most 10 CPU" in page(
        w, dept_admin, f"/tenants/{w.dev2.pk}/allocations/"
    )
    new_child = page(w, dept_admin, f"/tenants/new/?parent={w.department1.pk}")
    assert "department1 has 2 CPU left<" in new_child and "may have at most" not in new_child

    # The Resources tab and My access: left for sub-tenants, and usage's own word beside it.
    for html in (
        page(w, dept_admin, f"/tenants/{w.department1.pk}/?tab=resources"),
        page(w, dept_admin, "/me/"),
    ):
        assert "Left for sub-tenants: 2 CPU" in html and "Remaining" not in html

    # The API's figure.
    body = api.as_user(dept_admin).get(f"/api/v1/tenants/{w.department1.pk}/").json()
    [allocation] = body["allocations"]
    assert allocation["remaining"]["cpu"] == "2"

    # The clusters: department1's own namespace may use what is left, 2 CPU.
    sync = TenantSync.objects.get(tenant_id=w.department1.pk)
    assert tenant_state(w.department1, sync, w.cluster).quota.cpu_millicores == 2000


def test_at_level_1_the_pool_page_the_hint_the_api_and_the_refusal_say_the_same(api, two_cpu_left):
    w = two_cpu_left
    with pytest.raises(ValidationError) as refused:
        services.tenant_create(
            acting_user=w.admin,
            parent=None,
            name="department2",
            allocations=[spec(w.pool, gpu=0, cpu_millicores=1)],
        )
    assert refused.value.message_dict["cpu"] == [
        "Pool gpu-cluster/default has 12 CPU; level-1 tenants hold 12 CPU, so 0 CPU is left."
    ]
    assert not Tenant.objects.filter(name="department2").exists()
    assert "Pool gpu-cluster/default has 0 CPU left" in page(w, w.admin, "/tenants/new/")
    pools = page(w, w.admin, "/pools/")
    assert '<th class="num">Left</th>' in pools and "Free" not in pools
    assert api.as_user(w.admin).get(f"/api/v1/pools/{w.pool.pk}/").json()["free"]["cpu"] == "0"


def test_a_yarn_queue_says_what_is_left_of_it_in_the_refusal_and_the_hint(yarn_world):
    w = yarn_world
    services.tenant_create(
        acting_user=w.admin, parent=w.t1, name="etl", allocations=[spec(w.pool, capacity_percent=Decimal(60))]
    )
    etl = Tenant.objects.get(name_path="t1/etl")
    html = page(w, w.admin, f"/tenants/{etl.pk}/allocations/")
    assert "t1 has 40 % of its queue left and etl may have at most 100 %" in html
    assert percent_human(rules.left(Decimal(100), Decimal(60))) == "40 %"
