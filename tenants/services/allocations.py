"""Allocations: the rules are in tenants.rules; here the figures they read, under the pool's lock."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum

from tenants import rules
from tenants.amounts import (
    POOL_CAPACITY_FIELDS,
)
from tenants.audit import audited_delete, audited_save, snapshot
from tenants.changes import TenantChange, change_record
from tenants.models import (
    Allocation,
    ResourcePool,
    Tenant,
)
from tenants.permissions import Action, AnyUser, require
from tenants.services._common import _children_filter, _lock_pools, _locked_tenant, _parent_of, _raise_if


@dataclass
class AllocationSpec:
    """What to allocate in one pool. None means unlimited (GPU/CPU/memory) and, for a burst, no
    burst (the guaranteed amount is the most); YARN pools use percents."""

    pool: ResourcePool
    gpu: int | None = None
    cpu_millicores: int | None = None
    memory_bytes: int | None = None
    capacity_percent: Decimal | None = None
    max_capacity_percent: Decimal | None = None
    gpu_burst: int | None = None
    cpu_millicores_burst: int | None = None
    memory_bytes_burst: int | None = None

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in ALLOCATION_FIELDS}


ALLOCATION_FIELDS = (
    "gpu",
    "cpu_millicores",
    "memory_bytes",
    "gpu_burst",
    "cpu_millicores_burst",
    "memory_bytes_burst",
    "capacity_percent",
    "max_capacity_percent",
)


def _allocation_snapshot(allocation: Allocation) -> dict[str, Any]:
    return {"pool": str(allocation.pool), **snapshot(allocation, ALLOCATION_FIELDS)}


def _holding(allocation: Allocation) -> rules.Holding:
    return rules.Holding(
        allocation.tenant.name_path, {name: getattr(allocation, name) for name in ALLOCATION_FIELDS}
    )


def _pool_figures(pool: ResourcePool) -> rules.PoolFigures:
    capacity = {name: getattr(pool, column) for name, column in POOL_CAPACITY_FIELDS.items()}
    return rules.PoolFigures(name=str(pool), yarn=pool.is_yarn, capacity=capacity)


def _place(tenant: Tenant, parent: Tenant | None, pool: ResourcePool) -> rules.Place:
    """Where `tenant`'s allocation in `pool` goes under `parent`, as the rules read it (four queries
    whatever the number of sub-tenants)."""
    under = Allocation.objects.filter(pool=pool, **_children_filter(parent, "tenant__"))
    sums = {f"sum_{column}": Sum(column) for column in rules.SUMMED}

    def summed(rows: Any) -> dict[str, Any]:
        found = rows.aggregate(**sums)
        return {column: found[f"sum_{column}"] for column in rules.SUMMED}

    children = Allocation.objects.filter(pool=pool, **_children_filter(tenant, "tenant__")).select_related(
        "tenant"
    )
    parent_allocation = (
        Allocation.objects.filter(tenant=parent, pool=pool).select_related("tenant").first()
        if parent
        else None
    )
    figures = _pool_figures(pool)
    return rules.Place(
        pool=figures.name,
        yarn=figures.yarn,
        capacity=figures.capacity,
        parent=parent.name_path if parent else None,
        parent_holding=_holding(parent_allocation) if parent_allocation else None,
        held=summed(under),
        holds=summed(under.filter(tenant=tenant)),
        children=[_holding(row) for row in children],
    )


def _allocation_errors(
    tenant: Tenant, parent: Tenant | None, pool: ResourcePool, values: dict[str, Any]
) -> dict[str, list[str]]:
    return rules.allocation_errors(tenant.name_path, values, _place(tenant, parent, pool))


def _write_allocation(
    *, acting_user: AnyUser, tenant: Tenant, spec: AllocationSpec, parent: Tenant | None
) -> Allocation:
    """Create or update one allocation after the rules pass. Caller holds the transaction."""
    pool = _lock_pools([spec.pool])[spec.pool.pk]
    values = rules.with_defaults(pool.is_yarn, spec.values())
    _raise_if(_allocation_errors(tenant, parent, pool, values))
    allocation = Allocation.objects.filter(tenant=tenant, pool=pool).first()
    before = _allocation_snapshot(allocation) if allocation else None
    if allocation is None:
        allocation = Allocation(tenant=tenant, pool=pool)
    for name, value in values.items():
        setattr(allocation, name, value)
    audited_save(
        allocation,
        acting_user=acting_user,
        action="ALLOCATION_UPDATED" if before else "ALLOCATION_CREATED",
        tenant=tenant,
        before=before,
        after=_allocation_snapshot,
    )
    return allocation


def allocation_set(*, acting_user: AnyUser, tenant: Tenant, spec: AllocationSpec) -> Allocation:
    """Give `tenant` these amounts in `spec.pool` (create or replace). Set from above: the tenant's
    own admins cannot raise their own allocation."""
    require(acting_user, Action.MANAGE, tenant)
    with transaction.atomic():
        tenant = _locked_tenant(tenant)
        allocation = _write_allocation(
            acting_user=acting_user, tenant=tenant, spec=spec, parent=_parent_of(tenant)
        )
        change_record(TenantChange(tenants=[tenant], parents=True, reason="ALLOCATION_SET"))
        return allocation


def allocation_delete(*, acting_user: AnyUser, allocation: Allocation) -> None:
    require(acting_user, Action.MANAGE, allocation.tenant)
    with transaction.atomic():
        _lock_pools([allocation.pool])
        children = Allocation.objects.filter(
            pool=allocation.pool, **_children_filter(allocation.tenant, "tenant__")
        )
        names = [row.tenant.name_path for row in children.select_related("tenant")]
        if names:
            raise ValidationError(
                {
                    "pool": [
                        f"Sub-tenants {', '.join(names)} still have allocations in pool {allocation.pool}; remove them first."
                    ]
                }
            )
        audited_delete(
            allocation,
            acting_user=acting_user,
            action="ALLOCATION_DELETED",
            tenant=allocation.tenant,
            before=_allocation_snapshot(allocation),
        )
        change_record(TenantChange(tenants=[allocation.tenant], parents=True, reason="ALLOCATION_DELETED"))
