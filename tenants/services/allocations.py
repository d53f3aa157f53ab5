"""Allocations: the rules are in tenants.rules; here the figures they read, under the pool's lock."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from tenants import rules
from tenants.amounts import (
    POOL_CAPACITY_FIELDS,
    YARN_FIELDS,
)
from tenants.audit import audit, audited_delete, audited_save, snapshot
from tenants.changes import TenantChange, change_record
from tenants.models import (
    Allocation,
    AllocationGrant,
    ResourcePool,
    Tenant,
)
from tenants.permissions import Action, AnyUser, require
from tenants.quantities import decimal_text
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
    *,
    acting_user: AnyUser | None,
    tenant: Tenant,
    spec: AllocationSpec,
    parent: Tenant | None,
    ends_at: datetime.datetime | None = None,
    ending: AllocationGrant | None = None,
) -> Allocation:
    """Create or update one allocation after the rules pass. Caller holds the transaction.

    `ends_at`: a time-bound change (`AllocationGrant`), back to the amounts before it then (or to
    what an open grant it replaces goes back to). Any other change of the amounts supersedes the
    allocation's open grant, so nobody's manual change is reverted silently; `ending` is the grant
    being ended by this write."""
    pool = _lock_pools([spec.pool])[spec.pool.pk]
    values = rules.with_defaults(pool.is_yarn, spec.values())
    _raise_if(_allocation_errors(tenant, parent, pool, values))
    allocation = Allocation.objects.filter(tenant=tenant, pool=pool).first()
    before = _allocation_snapshot(allocation) if allocation else None
    open_grant = _grant_open(allocation) if allocation is not None and ending is None else None
    granted = amounts_json(values)
    if ends_at is not None:
        if allocation is None:
            raise ValidationError(
                {
                    "ends_at": [
                        "An end time needs an allocation to go back to: allocate first, then change it."
                    ]
                }
            )
        back_to = open_grant.back_to if open_grant else amounts_json(snapshot(allocation, ALLOCATION_FIELDS))
        if back_to == granted:
            raise ValidationError(
                {
                    "ends_at": [
                        "These are the amounts it goes back to; change an amount to give it an end time."
                    ]
                }
            )
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
        after=lambda saved: {
            **_allocation_snapshot(saved),
            **({"until": ends_at.isoformat()} if ends_at is not None else {}),
        },
    )
    if open_grant is not None:
        unchanged = open_grant.granted == granted and ends_at in (None, open_grant.ends_at)
        if unchanged:
            return allocation  # the same amounts again (a form saved as it was): the grant goes on
        _grant_close(
            open_grant,
            acting_user=acting_user,
            state=AllocationGrant.State.SUPERSEDED,
            status=f"Superseded by {_actor_name(acting_user)}'s change of "
            f"{timezone.localtime():%Y-%m-%d %H:%M}: "
            + ("a new end time, going back to the same amounts." if ends_at else "the allocation keeps it."),
        )
    if ends_at is not None:
        AllocationGrant.objects.create(
            tenant=tenant,
            allocation=allocation,
            granted=granted,
            back_to=back_to,
            ends_at=ends_at,
            granted_by_id=acting_user.pk if acting_user is not None else None,
            granted_by_name=_actor_name(acting_user),
        )
    return allocation


def amounts_json(values: dict[str, Any]) -> dict[str, Any]:
    """Every allocation field of `values` as a grant (and an audit row) keeps it: decimals as text,
    in one form, so two equal amounts compare equal."""
    return {
        name: decimal_text(Decimal(value)) if name in YARN_FIELDS and value is not None else value
        for name, value in ((name, values.get(name)) for name in ALLOCATION_FIELDS)
    }


def amounts_spec(pool: ResourcePool, amounts: dict[str, Any]) -> AllocationSpec:
    """The spec that gives `pool` the kept `amounts` (`amounts_json`) again."""
    values: dict[str, Any] = {
        name: Decimal(value) if name in YARN_FIELDS and value is not None else value
        for name, value in amounts.items()
        if name in ALLOCATION_FIELDS
    }
    return AllocationSpec(pool=pool, **values)


def _actor_name(acting_user: AnyUser | None) -> str:
    return acting_user.get_username() if acting_user is not None else "system"


def _grant_open(allocation: Allocation) -> AllocationGrant | None:
    """The allocation's open grant (active or waiting), locked."""
    return (
        AllocationGrant.objects.select_for_update()
        .filter(allocation=allocation, state__in=AllocationGrant.OPEN_STATES)
        .first()
    )


def _grant_close(
    grant: AllocationGrant, *, acting_user: AnyUser | None, state: str, status: str, **after: Any
) -> None:
    """Close an open grant (`state`: ended, refused, superseded, kept) and audit it."""
    before = {"state": grant.state, "until": grant.ends_at.isoformat()}
    grant.state = state
    grant.status = status
    grant.finished_at = timezone.now()
    grant.save(update_fields=["state", "status", "finished_at", "updated_at"])
    audit(
        acting_user=acting_user,
        action=_GRANT_ACTIONS[state],
        target=grant,
        tenant=grant.tenant,
        before=before,
        after={"state": state, "status": status, **after},
    )


_GRANT_ACTIONS: dict[str, str] = {
    AllocationGrant.State.ENDED: "ALLOCATION_GRANT_ENDED",
    AllocationGrant.State.WAITING: "ALLOCATION_GRANT_WAITING",
    AllocationGrant.State.REFUSED: "ALLOCATION_GRANT_REFUSED",
    AllocationGrant.State.SUPERSEDED: "ALLOCATION_GRANT_SUPERSEDED",
    AllocationGrant.State.CANCELLED: "ALLOCATION_GRANT_CANCELLED",
}


def _ends_at_errors(ends_at: datetime.datetime | None) -> None:
    if ends_at is None:
        return
    if timezone.is_naive(ends_at):
        raise ValidationError(
            {"ends_at": ["Give the end time with its time zone, e.g. 2026-12-20T18:00:00Z."]}
        )
    if ends_at <= timezone.now():
        raise ValidationError({"ends_at": ["The end time must be in the future."]})


def allocation_set(
    *,
    acting_user: AnyUser,
    tenant: Tenant,
    spec: AllocationSpec,
    ends_at: datetime.datetime | None = None,
) -> Allocation:
    """Give `tenant` these amounts in `spec.pool` (create or replace). Set from above: the tenant's
    own admins cannot raise their own allocation. `ends_at`: until then only; beat then goes back
    to the amounts before (`allocation_grants_end_due`)."""
    require(acting_user, Action.MANAGE, tenant)
    _ends_at_errors(ends_at)
    with transaction.atomic():
        tenant = _locked_tenant(tenant)
        allocation = _write_allocation(
            acting_user=acting_user, tenant=tenant, spec=spec, parent=_parent_of(tenant), ends_at=ends_at
        )
        change_record(TenantChange(tenants=[tenant], parents=True, reason="ALLOCATION_SET"))
        return allocation


def allocation_delete(*, acting_user: AnyUser, allocation: Allocation) -> None:
    require(acting_user, Action.MANAGE, allocation.tenant)
    with transaction.atomic():
        _locked_tenant(allocation.tenant)  # first, as every write that may touch its grant
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
        open_grant = _grant_open(allocation)
        if open_grant is not None:
            _grant_close(
                open_grant,
                acting_user=acting_user,
                state=AllocationGrant.State.SUPERSEDED,
                status=f"Superseded: {_actor_name(acting_user)} removed the allocation.",
            )
        audited_delete(
            allocation,
            acting_user=acting_user,
            action="ALLOCATION_DELETED",
            tenant=allocation.tenant,
            before=_allocation_snapshot(allocation),
        )
        change_record(TenantChange(tenants=[allocation.tenant], parents=True, reason="ALLOCATION_DELETED"))
