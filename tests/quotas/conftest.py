"""A world for quota requests: the Arena document (tests/tenants/builders.py) with e-mail addresses,
a pool big enough to give from, and helpers to ask and decide through the services."""

from __future__ import annotations

import pytest

from tenants import services
from tenants.models import Allocation, Membership
from tests.tenants.builders import build_k8s_world


@pytest.fixture
def world(platform_admin):
    """department1 (4 GPUs: 1 left) > dev1 (1 GPU, Bob), dev2 (2 GPUs, 8 CPU, 60Gi, Tom); the pool
    has 6 GPUs (2 left). Everyone has an e-mail address."""
    w = build_k8s_world(platform_admin)
    w.pool = services.pool_update(acting_user=platform_admin, pool=w.pool, gpu_capacity=6)
    services.allocation_set(
        acting_user=platform_admin, tenant=w.department1, spec=services.AllocationSpec(pool=w.pool, gpu=4)
    )
    for person in [platform_admin, w.bob, w.tom, *vars(w.people).values()]:
        person.email = f"{person.username}@example.com"
        person.save(update_fields=["email"])
    return w


def gpus(tenant) -> int | None:
    return Allocation.objects.get(tenant=tenant).gpu


__all__ = ["Membership", "gpus", "world"]
