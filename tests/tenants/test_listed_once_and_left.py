"""A pool (or cluster) listed twice in one request is refused by name, as plans refuse it; and a
refusal never says more is left than exactly remains (issue 15, point 12)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from tenants import quantities, services
from tenants.models import AuditEvent, QuotaPlan, Tenant
from tests.tenants.builders import GI, spec

pytestmark = pytest.mark.django_db


def test_the_api_refuses_a_tenant_with_the_same_pool_twice(api, k8s_world):
    w = k8s_world
    events = AuditEvent.objects.count()
    response = api.as_user(w.admin).post(
        "/api/v1/tenants/",
        {
            "parent": w.department1.pk,
            "name": "dev3",
            "allocations": [{"pool": w.pool.pk, "gpu": 0}, {"pool": w.pool.pk, "gpu": 0, "cpu": "1"}],
        },
        format="json",
    )
    assert response.status_code == 400, response.content
    assert response.json() == {
        "allocations": ["Pool gpu-cluster/default is listed 2 times; list each pool once."]
    }
    assert not Tenant.objects.filter(name="dev3").exists() and AuditEvent.objects.count() == events


def test_the_service_refuses_a_cluster_twice_in_storage(yarn_world):
    w = yarn_world
    with pytest.raises(ValidationError) as refused:
        services.tenant_create(
            acting_user=w.admin,
            parent=None,
            name="t4",
            allocations=[spec(w.pool, capacity_percent=5)],
            storage=[
                services.StorageSpec(cluster=w.cluster, space_quota_bytes=GI),
                services.StorageSpec(cluster=w.cluster, space_quota_bytes=2 * GI),
            ],
        )
    assert refused.value.message_dict == {
        "storage": ["Cluster bigdata is listed 2 times; list each cluster once."]
    }
    assert not Tenant.objects.filter(name="t4").exists()


def test_plans_name_the_pool_listed_twice_too(api, k8s_world):
    w = k8s_world
    response = api.as_user(w.admin).post(
        "/api/v1/plans/",
        {"name": "twice", "allocations": [{"pool": w.pool.pk, "gpu": 1}, {"pool": w.pool.pk, "gpu": 2}]},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {
        "allocations": ["Pool gpu-cluster/default is listed 2 times; list each pool once."]
    }
    assert not QuotaPlan.objects.filter(name="twice").exists()


# ---------------------------------------------------------------------------------------------
# What is left, exactly


@pytest.mark.parametrize(
    ("num_bytes", "text"),
    [
        (4 * GI, "4 GiB"),
        (4 * GI - 1, "4294967295 bytes (3.99 GiB)"),
        (4 * GI + 1, "4294967297 bytes (4 GiB)"),
        (GI + GI // 4, "1.25 GiB"),
        (1536 * 2**20, "1.5 GiB"),
        (10**9, "1000000000 bytes (953.67 MiB)"),
        (1025, "1025 bytes (1 KiB)"),
        (1000, "1000 B"),
        (0, "0 B"),
        (None, "unlimited"),
    ],
)
def test_an_amount_that_is_left_is_exact_or_rounded_down_beside_the_exact_bytes(num_bytes, text):
    assert quantities.format_memory_exact(num_bytes) == text


@pytest.fixture
def almost_4gi_left(k8s_world):
    """dev2 has 60 GiB of memory; its sub-tenant a holds 56 GiB and one byte: 4 GiB - 1 byte is left."""
    w = k8s_world
    services.tenant_create(
        acting_user=w.admin,
        parent=w.dev2,
        name="a",
        allocations=[spec(w.pool, gpu=0, cpu_millicores=1000, memory_bytes=56 * GI + 1)],
    )
    return w


def test_a_refusal_of_4gi_does_not_say_4gi_is_left(api, almost_4gi_left):
    w = almost_4gi_left
    response = api.as_user(w.admin).post(
        "/api/v1/tenants/",
        {
            "parent": w.dev2.pk,
            "name": "b",
            "allocations": [{"pool": w.pool.pk, "gpu": 0, "cpu": "1", "memory": "4Gi"}],
        },
        format="json",
    )
    assert response.status_code == 400, response.content
    assert response.json() == {
        "memory": [
            "department1/dev2 has 60 GiB in pool gpu-cluster/default; its sub-tenants hold "
            "60129542145 bytes (56 GiB), so 4294967295 bytes (3.99 GiB) is left."
        ]
    }
    # What it says is left is accepted.
    response = api.as_user(w.admin).post(
        "/api/v1/tenants/",
        {
            "parent": w.dev2.pk,
            "name": "b",
            "allocations": [{"pool": w.pool.pk, "gpu": 0, "cpu": "1", "memory": "4294967295"}],
        },
        format="json",
    )
    assert response.status_code == 201, response.content


def test_the_console_says_what_is_left_exactly_beside_the_field(almost_4gi_left):
    w = almost_4gi_left
    browser = Client()
    browser.force_login(w.admin)
    page = browser.get(f"/tenants/new/?parent={w.dev2.pk}").content.decode()
    assert "dev2 has 4294967295 bytes (3.99 GiB) left" in page
    assert "dev2 has 4 GiB left" not in page
    tab = browser.get(f"/tenants/{w.dev2.pk}/?tab=resources").content.decode()
    assert "Left for sub-tenants: 4294967295 bytes (3.99 GiB)" in tab
