"""Guaranteed and burst (issue 16, point 2): each allocation in a Kubernetes pool may burst above its
guaranteed amount, up to its parent's maximum (or the pool at level 1). The rules hold for every
writer (services, API, pages, plans); each refusal is a field error that names the rule and loses
nothing."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from tenants import services
from tenants.models import Allocation, AuditEvent, QuotaPlan, Tenant
from tests.tenants.builders import GI, spec
from tests.tenants.test_api_permissions import person


def refusal(exc_info: pytest.ExceptionInfo, field: str) -> str:
    return " ".join(exc_info.value.message_dict[field])


def amounts(tenant: Tenant) -> tuple:
    row = Allocation.objects.get(tenant=tenant)
    return (row.gpu, row.gpu_burst, row.cpu_millicores, row.cpu_millicores_burst, row.memory_bytes_burst)


@pytest.fixture
def six_gpus(k8s_world):
    """The Arena world with a pool of 6 GPUs, 24 CPUs, 180 GiB: department1 (3 GPUs, may burst to 5) >
    dev1 (1, may burst to 4) > dev1/job (1, may burst to 4): the 3-level tree."""
    w = k8s_world
    w.pool = services.pool_update(
        acting_user=w.admin,
        pool=w.pool,
        gpu_capacity=6,
        cpu_capacity_millicores=24_000,
        memory_capacity_bytes=180 * GI,
    )
    services.allocation_set(acting_user=w.admin, tenant=w.department1, spec=spec(w.pool, gpu=3, gpu_burst=5))
    services.allocation_set(acting_user=w.admin, tenant=w.dev1, spec=spec(w.pool, gpu=1, gpu_burst=4))
    w.job = services.tenant_create(
        acting_user=w.admin, parent=w.dev1, name="job", allocations=[spec(w.pool, gpu=1, gpu_burst=4)]
    )
    return w


# ---------------------------------------------------------------------------------------------
# The rules, in the services


def test_a_burst_is_stored_beside_the_guaranteed_amount_and_audited(k8s_world):
    w = k8s_world
    allocation = services.allocation_set(
        acting_user=w.admin,
        tenant=w.dev2,
        spec=spec(
            w.pool, gpu=2, gpu_burst=3, cpu_millicores=8000, cpu_millicores_burst=10_000, memory_bytes=60 * GI
        ),
    )
    assert (allocation.gpu, allocation.gpu_burst, allocation.cpu_millicores_burst) == (2, 3, 10_000)
    assert allocation.memory_bytes_burst is None  # no burst: 60 GiB is also the most
    event = AuditEvent.objects.filter(action="ALLOCATION_UPDATED", tenant=w.dev2).latest("pk")
    assert event.before["gpu_burst"] is None and event.after["gpu_burst"] == 3
    assert event.after["cpu_millicores_burst"] == 10_000 and event.after["memory_bytes_burst"] is None


@pytest.mark.parametrize(
    ("amounts_sent", "field", "message"),
    [
        ({"gpu": 2, "gpu_burst": 1}, "gpu_burst", "Burst must not be below the guaranteed 2 GPUs."),
        (
            {"gpu": 2, "cpu_millicores": 8000, "cpu_millicores_burst": 7500},
            "cpu_burst",
            "Burst must not be below the guaranteed 8 CPU.",
        ),
        (
            {"gpu": 2, "memory_bytes": 60 * GI, "memory_bytes_burst": 59 * GI},
            "memory_burst",
            "Burst must not be below the guaranteed 60 GiB.",
        ),
    ],
)
def test_a_burst_is_never_below_the_guaranteed_amount(k8s_world, amounts_sent, field, message):
    w = k8s_world
    before = amounts(w.dev2)
    with pytest.raises(ValidationError) as exc:
        services.allocation_set(acting_user=w.admin, tenant=w.dev2, spec=spec(w.pool, **amounts_sent))
    assert list(exc.value.message_dict) == [field]
    assert refusal(exc, field) == message
    assert amounts(w.dev2) == before


def test_a_burst_needs_a_guaranteed_amount(k8s_world):
    w = k8s_world
    # dev1 is unlimited in CPU (department1 is too): unlimited has no maximum to raise.
    with pytest.raises(ValidationError) as exc:
        services.allocation_set(
            acting_user=w.admin, tenant=w.dev1, spec=spec(w.pool, gpu=1, cpu_millicores_burst=4000)
        )
    assert list(exc.value.message_dict) == ["cpu_burst"]
    assert refusal(exc, "cpu_burst").startswith(
        "Burst needs a guaranteed amount: unlimited CPU has no maximum"
    )
    assert Allocation.objects.get(tenant=w.dev1).cpu_millicores_burst is None


def test_yarn_pools_take_no_burst(yarn_world):
    w = yarn_world
    with pytest.raises(ValidationError) as exc:
        services.allocation_set(
            acting_user=w.admin, tenant=w.t1, spec=spec(w.pool, capacity_percent=40, gpu_burst=1)
        )
    assert "Burst applies to Kubernetes pools; a YARN queue bursts to its maximum capacity." in refusal(
        exc, "gpu_burst"
    )


def test_a_level1_burst_is_never_above_the_pool(k8s_world):
    w = k8s_world
    # department1 holds all 3 GPUs; a new level-1 tenant is guaranteed none and may borrow them all.
    lab = services.tenant_create(
        acting_user=w.admin, parent=None, name="lab", allocations=[spec(w.pool, gpu=0, gpu_burst=3)]
    )
    assert Allocation.objects.get(tenant=lab).gpu_burst == 3
    with pytest.raises(ValidationError) as exc:
        services.allocation_set(acting_user=w.admin, tenant=lab, spec=spec(w.pool, gpu=0, gpu_burst=4))
    assert (
        refusal(exc, "gpu_burst") == "Burst must not be above pool gpu-cluster/default's capacity of 3 GPUs."
    )
    assert Allocation.objects.get(tenant=lab).gpu_burst == 3


def test_a_burst_is_never_above_the_parents_maximum(k8s_world):
    w = k8s_world
    # department1 has 3 GPUs and no burst: 3 is its maximum.
    services.allocation_set(acting_user=w.admin, tenant=w.dev1, spec=spec(w.pool, gpu=1, gpu_burst=3))
    with pytest.raises(ValidationError) as exc:
        services.allocation_set(acting_user=w.admin, tenant=w.dev1, spec=spec(w.pool, gpu=1, gpu_burst=4))
    assert refusal(exc, "gpu_burst") == (
        "Burst must not be above department1's maximum of 3 GPUs in pool gpu-cluster/default."
    )
    assert Allocation.objects.get(tenant=w.dev1).gpu_burst == 3


def test_the_three_level_tree_bursts_within_each_parent(six_gpus):
    w = six_gpus
    assert amounts(w.job)[:2] == (1, 4)
    # department1 may use 5: dev1 may burst to 5, not 6; job within dev1's 4.
    with pytest.raises(ValidationError) as exc:
        services.allocation_set(acting_user=w.admin, tenant=w.dev1, spec=spec(w.pool, gpu=1, gpu_burst=6))
    assert "department1's maximum of 5 GPUs" in refusal(exc, "gpu_burst")
    with pytest.raises(ValidationError) as exc:
        services.allocation_set(acting_user=w.admin, tenant=w.job, spec=spec(w.pool, gpu=1, gpu_burst=5))
    assert "department1/dev1's maximum of 4 GPUs" in refusal(exc, "gpu_burst")
    # A guaranteed-only parent caps by its guaranteed amount: dev2 (2 GPUs) > its child at most 2.
    child = services.tenant_create(
        acting_user=w.admin,
        parent=w.dev2,
        name="batch",
        allocations=[spec(w.pool, gpu=0, gpu_burst=2, cpu_millicores=0, memory_bytes=0)],
    )
    with pytest.raises(ValidationError) as exc:
        services.allocation_set(
            acting_user=w.admin,
            tenant=child,
            spec=spec(w.pool, gpu=0, gpu_burst=3, cpu_millicores=0, memory_bytes=0),
        )
    assert "department1/dev2's maximum of 2 GPUs" in refusal(exc, "gpu_burst")


def test_lowering_a_parents_burst_or_guaranteed_below_a_childs_burst_is_refused(six_gpus):
    w = six_gpus
    with pytest.raises(ValidationError) as exc:
        services.allocation_set(
            acting_user=w.admin, tenant=w.department1, spec=spec(w.pool, gpu=3, gpu_burst=3)
        )
    assert refusal(exc, "gpu_burst") == (
        "Sub-tenants department1/dev1 (4 GPUs) may burst above 3 GPUs, the maximum department1 would have "
        "in pool gpu-cluster/default; lower their burst first."
    )
    # Dropping dev1's burst leaves its guaranteed 1 GPU as the most: below job's burst, on "gpu".
    with pytest.raises(ValidationError) as exc:
        services.allocation_set(acting_user=w.admin, tenant=w.dev1, spec=spec(w.pool, gpu=1))
    assert list(exc.value.message_dict) == ["gpu"]
    assert "Sub-tenants department1/dev1/job (4 GPUs) may burst above 1 GPU" in refusal(exc, "gpu")
    assert amounts(w.department1)[:2] == (3, 5) and amounts(w.dev1)[:2] == (1, 4)
    # From the bottom up it goes: the job first, then dev1.
    services.allocation_set(acting_user=w.admin, tenant=w.job, spec=spec(w.pool, gpu=1))
    services.allocation_set(acting_user=w.admin, tenant=w.dev1, spec=spec(w.pool, gpu=1))
    assert amounts(w.dev1)[:2] == (1, None)


def test_a_pool_never_goes_below_a_level1_burst(six_gpus):
    w = six_gpus
    with pytest.raises(ValidationError) as exc:
        services.pool_update(acting_user=w.admin, pool=w.pool, gpu_capacity=4)
    assert refusal(exc, "gpu_capacity") == (
        "Level-1 tenants may burst above 4 GPUs in pool gpu-cluster/default: department1 (5 GPUs). "
        "Lower their burst before the pool goes below that."
    )
    w.pool.refresh_from_db()
    assert w.pool.gpu_capacity == 6


def test_a_move_checks_bursts_against_the_new_parent(six_gpus):
    w = six_gpus
    lab = services.tenant_create(
        acting_user=w.admin, parent=None, name="lab", allocations=[spec(w.pool, gpu=2)]
    )
    with pytest.raises(ValidationError) as exc:
        services.tenant_move(acting_user=w.admin, tenant=w.job, new_parent=lab)
    assert "Burst must not be above lab's maximum of 2 GPUs" in refusal(exc, "gpu_burst")
    assert Tenant.objects.get(pk=w.job.pk).name_path == "department1/dev1/job"


# ---------------------------------------------------------------------------------------------
# Plans carry bursts; applying one checks the same rules


def test_plans_refuse_a_burst_that_breaks_its_own_rules(k8s_world, yarn_world):
    w = k8s_world
    bad = [
        (
            spec(w.pool, gpu=2, gpu_burst=1),
            "Pool gpu-cluster/default: Burst must not be below the guaranteed 2 GPUs.",
        ),
        (spec(w.pool, memory_bytes_burst=GI), "Pool gpu-cluster/default: Burst needs a guaranteed amount"),
        (
            spec(yarn_world.pool, capacity_percent=10, cpu_millicores_burst=1000),
            "Burst applies to Kubernetes pools",
        ),
    ]
    for allocation, message in bad:
        with pytest.raises(ValidationError) as exc:
            services.plan_create(acting_user=w.admin, name="bursty", allocations=[allocation])
        assert message in refusal(exc, "allocations")
        assert not QuotaPlan.objects.filter(name="bursty").exists()


def test_a_plan_carries_its_burst_and_applying_it_checks_the_tree(k8s_world):
    w = k8s_world
    plan = services.plan_create(
        acting_user=w.admin, name="gpu-burst", allocations=[spec(w.pool, gpu=1, gpu_burst=2)]
    )
    row = plan.allocations.get()
    assert (row.gpu, row.gpu_burst) == (1, 2)
    assert AuditEvent.objects.get(action="PLAN_CREATED").after["allocations"][0]["gpu_burst"] == 2
    services.tenant_apply_plan(acting_user=w.admin, tenant=w.dev1, plan=plan)
    assert amounts(w.dev1)[:2] == (1, 2)
    # A burst above the parent's maximum (department1: 3 GPUs) is refused when the plan is applied.
    services.plan_update(acting_user=w.admin, plan=plan, allocations=[spec(w.pool, gpu=1, gpu_burst=4)])
    with pytest.raises(ValidationError) as exc:
        services.tenant_apply_plan(acting_user=w.admin, tenant=w.dev1, plan=plan)
    assert "department1's maximum of 3 GPUs" in refusal(exc, "gpu_burst")
    assert amounts(w.dev1)[:2] == (1, 2)


# ---------------------------------------------------------------------------------------------
# The API


def allocation_url(tenant: Tenant) -> str:
    return f"/api/v1/allocations/{Allocation.objects.get(tenant=tenant).pk}/"


def test_the_api_reads_and_writes_bursts_as_quantities(k8s_world, api):
    w = k8s_world
    admin = api.as_user(w.admin)
    url = allocation_url(w.dev2)
    answer = admin.patch(url, {"gpu_burst": 3, "cpu_burst": "9500m", "memory_burst": "64Gi"}, format="json")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert (body["gpu"], body["gpu_burst"], body["cpu_burst"], body["memory_burst"]) == (
        2,
        3,
        "9500m",
        "64Gi",
    )
    # A PATCH of another field keeps the bursts; null removes one.
    assert admin.patch(url, {"cpu": "8"}, format="json").json()["gpu_burst"] == 3
    assert admin.patch(url, {"cpu_burst": None}, format="json").json()["cpu_burst"] is None
    tenant = admin.get(f"/api/v1/tenants/{w.dev2.pk}/").json()
    row = tenant["allocations"][0]
    assert (row["gpu"], row["gpu_burst"], row["cpu_burst"], row["memory_burst"]) == (2, 3, None, "64Gi")


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"gpu_burst": 1}, "gpu_burst", "Burst must not be below the guaranteed 2 GPUs."),
        ({"gpu_burst": 4}, "gpu_burst", "Burst must not be above department1's maximum of 3 GPUs"),
        ({"gpu_burst": "1.5"}, "gpu_burst", "GPUs are counted in whole units."),
        ({"memory_burst": "60GB"}, "memory_burst", "'60GB' is not a Kubernetes quantity"),
        ({"memory_burst": "\u0662Gi"}, "memory_burst", "(U+0662 ARABIC-INDIC DIGIT TWO) is not allowed"),
        ({"gpu_burst": "\uff13"}, "gpu_burst", "(U+FF13 FULLWIDTH DIGIT THREE) is not allowed"),
        ({"cpu_burst": "unlimited"}, "cpu_burst", '"unlimited" is not one'),
        ({"cpu_burst": ""}, "cpu_burst", '"unlimited" is not one'),
    ],
)
def test_a_refused_burst_is_a_400_naming_the_field_and_nothing_changes(k8s_world, api, body, field, message):
    w = k8s_world
    admin = api.as_user(w.admin)
    url = allocation_url(w.dev2)
    before, events = admin.get(url).json(), AuditEvent.objects.count()
    answer = admin.patch(url, body, format="json")
    assert answer.status_code == 400, answer.content
    assert list(answer.json()) == [field] and message in answer.json()[field][0]
    assert admin.get(url).json() == before and AuditEvent.objects.count() == events


def test_a_new_tenant_or_plan_with_a_bad_burst_is_a_400(k8s_world, api):
    w = k8s_world
    admin = api.as_user(w.admin)
    created = admin.post(
        "/api/v1/tenants/",
        {
            "parent": w.department1.pk,
            "name": "dev3",
            "allocations": [{"pool": w.pool.pk, "gpu": 0, "gpu_burst": 9}],
        },
        format="json",
    )
    assert created.status_code == 400
    assert created.json() == {
        "gpu_burst": ["Burst must not be above department1's maximum of 3 GPUs in pool gpu-cluster/default."]
    }
    assert not Tenant.objects.filter(name="dev3").exists()
    plan = admin.post(
        "/api/v1/plans/",
        {"name": "p", "allocations": [{"pool": w.pool.pk, "gpu": 2, "gpu_burst": 1}]},
        format="json",
    )
    assert plan.status_code == 400
    assert plan.json() == {
        "allocations": ["Pool gpu-cluster/default: Burst must not be below the guaranteed 2 GPUs."]
    }
    plan = admin.post(
        "/api/v1/plans/",
        {"name": "p", "allocations": [{"pool": w.pool.pk, "gpu": 1, "gpu_burst": 2}]},
        format="json",
    )
    assert plan.status_code == 201 and plan.json()["allocations"][0]["gpu_burst"] == 2


def test_the_openapi_document_describes_the_burst_fields(anonymous_api, db):
    schema = json.loads(anonymous_api.get("/api/schema/", {"format": "json"}).content)
    components = schema["components"]["schemas"]
    for name in ("Allocation", "PatchedAllocationRequest", "AllocationInputRequest", "PlanAllocation"):
        properties = components[name]["properties"]
        for field, other in (("gpu_burst", "gpu"), ("cpu_burst", "cpu"), ("memory_burst", "memory")):
            assert field in properties, (name, field)
            description = properties[field]["description"]
            assert "the most" in description and f"Never below {other}" in description, (name, field)
            assert f"Null or omitted: no burst, {other} is also the most." in description
    read = components["TenantAllocation"]["properties"]
    assert {"gpu_burst", "cpu_burst", "memory_burst"} <= set(read)
    assert "null: no burst" in read["gpu_burst"]["description"]


# ---------------------------------------------------------------------------------------------
# The pages


def console(world, who: str) -> Client:
    client = Client()
    client.force_login(world.tom if who == "tom" else person(world, who))
    return client


def test_the_allocations_form_shows_a_refused_burst_and_keeps_what_was_typed(k8s_world):
    w = k8s_world
    client = console(w, "dept_admin")
    url = f"/tenants/{w.dev2.pk}/allocations/"
    page = client.get(url).content.decode()
    assert f'name="pool_{w.pool.pk}_gpu_burst"' in page and "GPUs may burst to" in page
    assert "Empty: no burst; at most 3 GPUs, department1&#x27;s maximum" in page
    form = {
        f"pool_{w.pool.pk}_on": "on",
        f"pool_{w.pool.pk}_gpu": "2",
        f"pool_{w.pool.pk}_gpu_burst": "1",
        f"pool_{w.pool.pk}_cpu": "8",
        f"pool_{w.pool.pk}_cpu_burst": "10",
        f"pool_{w.pool.pk}_memory": "60Gi",
        f"pool_{w.pool.pk}_memory_burst": "",
    }
    refused = client.post(url, form)
    html = refused.content.decode()
    assert refused.status_code == 200
    assert "Burst must not be below the guaranteed 2 GPUs." in html
    assert f'name="pool_{w.pool.pk}_gpu_burst" value="1"' in html  # what was typed stays
    assert f'name="pool_{w.pool.pk}_cpu_burst" value="10"' in html
    assert amounts(w.dev2)[:4] == (2, None, 8000, None)

    saved = client.post(url, {**form, f"pool_{w.pool.pk}_gpu_burst": "3"})
    assert saved.status_code == 302
    assert amounts(w.dev2)[:4] == (2, 3, 8000, 10_000)
    again = client.get(url).content.decode()
    assert f'name="pool_{w.pool.pk}_gpu_burst" value="3"' in again


def test_a_burst_field_refuses_the_word_unlimited(k8s_world):
    w = k8s_world
    form = {
        f"pool_{w.pool.pk}_on": "on",
        f"pool_{w.pool.pk}_gpu": "2",
        f"pool_{w.pool.pk}_gpu_burst": "unlimited",
        f"pool_{w.pool.pk}_cpu": "8",
        f"pool_{w.pool.pk}_memory": "60Gi",
    }
    html = console(w, "platform").post(f"/tenants/{w.dev2.pk}/allocations/", form).content.decode()
    assert "A burst is a quantity such as 4, 500m or 60Gi, or empty (null) for no burst" in html
    assert Allocation.objects.get(tenant=w.dev2).gpu_burst is None


def test_the_tenant_and_plan_forms_take_bursts(k8s_world):
    w = k8s_world
    client = console(w, "platform")
    created = client.post(
        "/tenants/new/",
        {
            "parent": w.department1.pk,
            "name": "dev3",
            "is_leaf": "true",
            f"pool_{w.pool.pk}_on": "on",
            f"pool_{w.pool.pk}_gpu": "0",
            f"pool_{w.pool.pk}_gpu_burst": "4",
        },
    )
    assert "Burst must not be above department1&#x27;s maximum of 3 GPUs" in created.content.decode()
    assert not Tenant.objects.filter(name="dev3").exists()
    plan_form = {"name": "burst-small", f"pool_{w.pool.pk}_on": "on", f"pool_{w.pool.pk}_gpu": "1"}
    refused = client.post("/plans/new/", {**plan_form, f"pool_{w.pool.pk}_gpu_burst": "0"}).content.decode()
    assert "Burst must not be below the guaranteed 1 GPU." in refused
    assert client.post("/plans/new/", {**plan_form, f"pool_{w.pool.pk}_gpu_burst": "2"}).status_code == 302
    assert (
        "gpu-cluster/default: guaranteed 1 GPU, may burst to 2 GPUs" in client.get("/plans/").content.decode()
    )


def test_resources_and_my_access_say_guaranteed_and_burst(k8s_world):
    w = k8s_world
    services.allocation_set(
        acting_user=w.admin,
        tenant=w.dev2,
        spec=spec(
            w.pool, gpu=2, gpu_burst=3, cpu_millicores=8000, memory_bytes=60 * GI, memory_bytes_burst=80 * GI
        ),
    )
    tab = console(w, "dev2_admin").get(f"/tenants/{w.dev2.pk}/?tab=resources", HTTP_HX_REQUEST="true")
    html = tab.content.decode()
    assert "guaranteed 2, may burst to 3 GPUs" in html
    assert "guaranteed 60, may burst to 80 GiB" in html
    assert "8 CPU allocated" in html  # no burst: as before
    assert "now borrowing" not in html  # not measured yet (Kueue usage): nothing is made up
    mine = console(w, "tom").get("/me/").content.decode()
    assert "guaranteed 2, may burst to 3 GPUs" in mine
    # The parent's sub-tenants tab shows the same phrase.
    subtenants = console(w, "dept_admin").get(
        f"/tenants/{w.department1.pk}/?tab=subtenants", HTTP_HX_REQUEST="true"
    )
    assert "guaranteed 2, may burst to 3 GPUs" in subtenants.content.decode()


def test_the_django_admin_takes_bursts_through_the_same_rules(k8s_world):
    w = k8s_world
    client = console(w, "platform")
    allocation = Allocation.objects.get(tenant=w.dev2)
    url = reverse("admin:tenants_allocation_change", args=[allocation.pk])
    form = {
        "gpu": "2",
        "cpu_millicores": "8000",
        "memory_bytes": str(60 * GI),
        "gpu_burst": "",
        "cpu_millicores_burst": "7000",
        "memory_bytes_burst": "",
        "capacity_percent": "",
        "max_capacity_percent": "",
    }
    refused = client.post(url, form)
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["cpu_millicores_burst"] == [
        "Burst must not be below the guaranteed 8 CPU."
    ]
    assert client.post(url, {**form, "cpu_millicores_burst": "9000"}).status_code == 302
    assert amounts(w.dev2)[2:4] == (8000, 9000)
