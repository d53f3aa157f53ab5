"""The allocation rules, in one place: pure functions over plain figures (no queries, no locks).

The services read the rows under the pool's lock and ask here (`allocation_errors`,
`pool_errors`, `entry_errors` for a quota plan's rows); the pages' hints, My access, the API and
the clusters' push take what is left from `left`. The rules:

- a sub-tenant is never unlimited under a limited parent, and sub-tenants together never hold
  more than their parent (at level 1: than the pool's capacity);
- a YARN queue's sub-queues never take more than 100 % of it;
- guaranteed <= burst <= the parent's maximum (its burst, or without one its guaranteed amount;
  at level 1 the pool's capacity), and a tenant's maximum never below a sub-tenant's burst;
- an amount applies to its pool's kind: GPU, CPU and memory to Kubernetes pools, capacity
  percents to YARN pools.

What is left (`left`): a tenant's allocation in a pool minus what its sub-tenants hold there (at
level 1: the pool's capacity minus what the level-1 tenants hold; in a YARN queue: 100 % minus
its sub-queues' capacities). Only limited amounts count: unlimited means no cap and no
reservation. The most a tenant being edited may get is what it holds now plus what is left.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from tenants.amounts import (
    HUNDRED,
    KUBERNETES_RESOURCES,
    Resource,
    maximum_of,
    percent_human,
)

Amount = TypeVar("Amount", int, Decimal)
Errors = defaultdict[str, list[str]]


def left(limit: Amount | None, held: Amount) -> Amount | None:
    """What is left of `limit` once `held` is taken: a parent's allocation minus what its
    sub-tenants hold (limited amounts only), the pool's capacity minus what level-1 tenants hold,
    or 100 % minus a queue's sub-queues. None: `limit` is unlimited. Never below nothing."""
    if limit is None:
        return None
    rest = limit - held
    return rest if rest > 0 else type(rest)(0)


def most(holds: Amount, left_now: Amount | None) -> Amount | None:
    """The most a tenant may have: what it holds now (counted in what is held) plus what is left."""
    return None if left_now is None else holds + left_now


def may_have(tenant: str, holds: Amount, left_now: Amount | None, say: Any) -> str:
    """' and dev1 may have at most 4 CPU' for a tenant that already holds some; '' otherwise (what
    is left is then the most it may have). `say` writes an amount."""
    if not holds or left_now is None:
        return ""
    return f" and {tenant} may have at most {say(most(holds, left_now))}"


# ---------------------------------------------------------------------------------------------
# Allocations as the rules see them


@dataclass(frozen=True)
class Holding:
    """One tenant's amounts in one pool: its path (as messages name it) and its allocation's
    columns (gpu, cpu_millicores, memory_bytes, their bursts, capacity_percent, ...; None: unlimited,
    or no burst)."""

    tenant: str
    amounts: Mapping[str, Any]

    def __getitem__(self, column: str) -> Any:
        return self.amounts.get(column)


def held(holdings: Sequence[Holding], column: str) -> Any:
    """What these allocations hold of one column together: their limited amounts (unlimited ones
    reserve nothing)."""
    return sum(h[column] for h in holdings if h[column] is not None)


def _named(holdings: Sequence[Holding], column: str, say: Any) -> str:
    """'a (2 GPUs), b (1 GPU)'."""
    return ", ".join(f"{h.tenant} ({say(h[column])})" for h in holdings)


# ---------------------------------------------------------------------------------------------
# Rules one allocation (or a plan's row) keeps by itself


def with_defaults(yarn: bool, values: dict[str, Any]) -> dict[str, Any]:
    """A YARN queue without a maximum capacity may grow to 100 % of its parent."""
    if yarn and values["max_capacity_percent"] is None and values["capacity_percent"] is not None:
        return {**values, "max_capacity_percent": HUNDRED}
    return values


def burst_errors(yarn: bool, values: Mapping[str, Any]) -> Errors:
    """The burst rules that need no other tenant: Kubernetes pools only, above a guaranteed amount,
    never below it. Keyed gpu_burst, cpu_burst, memory_burst."""
    errors: Errors = defaultdict(list)
    for resource in KUBERNETES_RESOURCES:
        burst, guaranteed = values[resource.burst_field], values[resource.field]
        if burst is None:
            continue
        if yarn:
            errors[resource.burst_name].append(
                "Burst applies to Kubernetes pools; a YARN queue bursts to its maximum capacity."
            )
        elif guaranteed is None:
            errors[resource.burst_name].append(
                f"Burst needs a guaranteed amount: unlimited {resource.label} has no maximum to set. "
                f"Give a guaranteed amount, or leave burst empty."
            )
        elif burst < guaranteed:
            errors[resource.burst_name].append(
                f"Burst must not be below the guaranteed {resource.exactly(guaranteed)}."
            )
    return errors


def kind_errors(yarn: bool, values: Mapping[str, Any]) -> Errors:
    """An amount applies to its pool's kind: YARN pools take a capacity percent (and at most a
    maximum not below it), Kubernetes pools GPU, CPU and memory."""
    errors: Errors = defaultdict(list)
    if not yarn:
        for name in ("capacity", "max_capacity"):
            if values[f"{name}_percent"] is not None:
                errors[name].append("Capacity percentages apply to YARN pools only.")
        return errors
    for resource in KUBERNETES_RESOURCES:
        if values[resource.field] is not None:
            errors[resource.name].append(
                "YARN pools are shared by capacity percent; leave GPU, CPU and memory empty."
            )
    capacity, maximum = values["capacity_percent"], values["max_capacity_percent"]
    if capacity is None:
        errors["capacity"].append("Required for a YARN pool: the guaranteed percent of the parent queue.")
    elif maximum is not None and maximum < capacity:
        errors["max_capacity"].append(
            f"The maximum capacity ({percent_human(maximum)}) cannot be below the capacity ({percent_human(capacity)})."
        )
    return errors


def entry_errors(pool: str, yarn: bool, values: Mapping[str, Any]) -> list[str]:
    """A quota plan's row for `pool`: the rules an allocation keeps by itself (a plan is applied
    through `allocation_errors` later), each message naming the pool."""
    errors = kind_errors(yarn, values)
    extend(errors, burst_errors(yarn, values))
    return [f"Pool {pool}: {message}" for messages in errors.values() for message in messages]


def extend(errors: dict[str, list[str]], more: Mapping[str, list[str]]) -> None:
    for key, messages in more.items():
        errors.setdefault(key, []).extend(messages)


# ---------------------------------------------------------------------------------------------
# Rules against the tree


@dataclass(frozen=True)
class Place:
    """Where one tenant's allocation goes: `pool` (its name, as messages say it), under `parent`
    (its path; None at level 1, under the pool itself) whose allocation there is `parent_holding`;
    `held`: what every allocation under that parent (the pool at level 1) holds of each summed
    column, the tenant's own included; `holds`: what the tenant itself holds of each there now;
    `children`: its sub-tenants' allocations in the pool."""

    pool: str
    yarn: bool
    capacity: Mapping[str, int]  # the pool's, by resource name (gpu, cpu, memory)
    parent: str | None = None
    parent_holding: Holding | None = None
    held: Mapping[str, Any] = field(default_factory=dict)  # column -> limited amounts together
    holds: Mapping[str, Any] = field(default_factory=dict)  # column -> the tenant's own (0: none)
    children: Sequence[Holding] = ()


# The columns summed under a parent: guaranteed amounts and YARN capacities (bursts are not summed).
SUMMED = (*(resource.field for resource in KUBERNETES_RESOURCES), "capacity_percent")


def allocation_errors(tenant: str, values: Mapping[str, Any], place: Place) -> Errors:
    """Every rule for `tenant`'s amounts `values` (allocation columns) at `place`, keyed by the
    API's field names."""
    errors = burst_errors(place.yarn, values)
    if place.parent is not None and place.parent_holding is None:
        errors["pool"].append(
            f"{place.parent} has no allocation in pool {place.pool}; it needs one before its sub-tenants can."
        )
        return errors
    extend(errors, kind_errors(place.yarn, values))
    if place.yarn:
        if values["capacity_percent"] is not None:
            _fit(errors, tenant, values, place, None)
        return errors
    for resource in KUBERNETES_RESOURCES:
        _fit(errors, tenant, values, place, resource)
        _hold_children(errors, tenant, values[resource.field], place, resource)
        _fit_burst(errors, tenant, values, place, resource)
    return errors


def _fit(
    errors: Errors, tenant: str, values: Mapping[str, Any], place: Place, resource: Resource | None
) -> None:
    """`tenant`'s amount of one resource (None: a YARN queue's capacity percent) within what is
    left under its parent, or at level 1 in the pool; never unlimited under a limit."""
    if resource is None:
        column, key, say, limit = "capacity_percent", "capacity", percent_human, HUNDRED
        before = f"The queues under {place.parent or f'pool {place.pool}'} hold "
        after = f" in pool {place.pool}; their capacities cannot exceed 100 %"
    elif place.parent is not None:
        column, key, say = resource.field, resource.name, resource.exactly
        limit = place.parent_holding[column] if place.parent_holding is not None else None
        if limit is not None and values[column] is None:
            errors[key].append(
                f"{place.parent} is limited to {say(limit)} in pool {place.pool}, "
                f"so its sub-tenants cannot be unlimited."
            )
            return
        before, after = f"{place.parent} has {say(limit)} in pool {place.pool}; its sub-tenants hold ", ""
    else:
        column, key, say = resource.field, resource.name, resource.exactly
        limit = place.capacity[resource.name]
        before, after = f"Pool {place.pool} has {say(limit)}; level-1 tenants hold ", ""
    value = values[column]
    if limit is None or value is None:
        return
    held_now = place.held.get(column) or 0
    holds = place.holds.get(column) or 0
    left_now = left(limit, held_now)
    if value > most(holds, left_now):
        errors[key].append(
            f"{before}{say(held_now)}{after}, so {say(left_now)} is left{may_have(tenant, holds, left_now, say)}."
        )


def _hold_children(errors: Errors, tenant: str, value: int | None, place: Place, resource: Resource) -> None:
    """A limited tenant holds its sub-tenants: none unlimited, together not above it."""
    if value is None:
        return
    unlimited = [h.tenant for h in place.children if h[resource.field] is None]
    if unlimited:
        errors[resource.name].append(
            f"Sub-tenants {', '.join(unlimited)} are unlimited in {resource.label} in pool {place.pool}; "
            f"limit them before limiting {tenant}."
        )
    above = _held_above(place.children, resource, value)
    if above:
        total, holders = above
        errors[resource.name].append(
            f"Sub-tenants of {tenant} hold {total} in pool {place.pool}: {holders}. Lower them first."
        )


def _held_above(holdings: Sequence[Holding], resource: Resource, ceiling: int) -> tuple[str, str] | None:
    """('3 GPUs', 'a (2 GPUs), b (1 GPU)') when `holdings` together hold more of `resource` than
    `ceiling`; None otherwise."""
    limited = [h for h in holdings if h[resource.field] is not None]
    total = held(limited, resource.field)
    if total <= ceiling:
        return None
    return resource.exactly(total), _named(limited, resource.field, resource.exactly)


def _fit_burst(
    errors: Errors, tenant: str, values: Mapping[str, Any], place: Place, resource: Resource
) -> None:
    """A burst against the tree, as guaranteed amounts are: never above the parent's maximum (its
    burst, or its guaranteed amount without one) nor, at level 1, above the pool; and this tenant's
    maximum never below a sub-tenant's burst."""
    burst = values[resource.burst_field]
    parent = place.parent_holding
    if burst is not None and parent is not None:
        ceiling = maximum_of(parent[resource.field], parent[resource.burst_field])
        if ceiling is not None and burst > ceiling:
            errors[resource.burst_name].append(
                f"Burst must not be above {place.parent}'s maximum of {resource.exactly(ceiling)} "
                f"in pool {place.pool}."
            )
    elif burst is not None and place.parent is None:
        capacity = place.capacity[resource.name]
        if burst > capacity:
            errors[resource.burst_name].append(
                f"Burst must not be above pool {place.pool}'s capacity of {resource.exactly(capacity)}."
            )
    highest = maximum_of(values[resource.field], burst)
    above = _bursting_above(place.children, resource, highest) if highest is not None else ""
    if above:
        # On the field that sets the maximum: the burst, or the guaranteed amount without one.
        errors[resource.burst_name if burst is not None else resource.name].append(
            f"Sub-tenants {above} may burst above {resource.exactly(highest)}, the maximum "
            f"{tenant} would have in pool {place.pool}; lower their burst first."
        )


def _bursting_above(holdings: Sequence[Holding], resource: Resource, ceiling: int) -> str:
    """'a (4 GPUs), b (5 GPUs)': those of `holdings` whose burst is above `ceiling`; '' if none."""
    column = resource.burst_field
    return _named(
        [h for h in holdings if h[column] is not None and h[column] > ceiling], column, resource.exactly
    )


# ---------------------------------------------------------------------------------------------
# A pool's capacity against the level-1 tenants


@dataclass(frozen=True)
class PoolFigures:
    """A pool as its rules see it: its name, kind and capacity by resource name."""

    name: str
    yarn: bool
    capacity: Mapping[str, int] = field(default_factory=dict)


def pool_errors(pool: PoolFigures, level1: Sequence[Holding]) -> Errors:
    """A pool's capacity: YARN pools count whole vCores and no GPUs; never below what the level-1
    tenants hold, nor below a level-1 tenant's burst. Keyed gpu_capacity, cpu_capacity, ..."""
    errors: Errors = defaultdict(list)
    if pool.yarn:
        if pool.capacity["gpu"]:
            errors["gpu_capacity"].append("YARN pools have no GPUs to allocate.")
        if pool.capacity["cpu"] % 1000:
            errors["cpu_capacity"].append("YARN counts whole vCores.")
    for resource in KUBERNETES_RESOURCES:
        capacity = pool.capacity[resource.name]
        key = f"{resource.name}_capacity"
        above = _held_above(level1, resource, capacity)
        if above:
            total, holders = above
            errors[key].append(
                f"Level-1 tenants hold {total} of pool {pool.name}: {holders}. "
                f"Lower their allocations before the pool goes below that."
            )
        bursting = _bursting_above(level1, resource, capacity)
        if bursting:
            errors[key].append(
                f"Level-1 tenants may burst above {resource.exactly(capacity)} in pool {pool.name}: {bursting}. "
                f"Lower their burst before the pool goes below that."
            )
    return errors
