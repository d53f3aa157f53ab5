"""Who would have to give what a quota request asks for, and what changes if it is given: pure
functions over plain figures (no queries), like `tenants.rules`.

A tenant's allocation lives inside its parent's: raising it takes what the parent has left
(`tenants.rules.left`: its allocation minus what its sub-tenants hold). Where the parent has too
little left, the parent must be raised too, by what it lacks, out of its own parent's left, and so
on up: the tenant that gives is the nearest ancestor with room for what is still needed; without
one, the platform (its admins give from the pool's capacity, where the allocation rules check the
level-1 tenants). YARN capacities are percentages of the parent queue: a request there only ever
changes the tenant's own queue, and its parent's admins decide. Lowering needs nothing from above:
the parent's admins decide (they set the tenant's allocation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tenants.amounts import KUBERNETES_RESOURCES, YARN_FIELDS
from tenants.rules import left

KUBERNETES_COLUMNS = tuple(resource.field for resource in KUBERNETES_RESOURCES)
ALL_COLUMNS = (*KUBERNETES_COLUMNS, *YARN_FIELDS)


@dataclass(frozen=True)
class Level:
    """One tenant on the way up, in one pool: its id, its allocation's columns there (None: it has
    no allocation in the pool) and what its sub-tenants hold together there (limited amounts)."""

    tenant_id: int
    amounts: Mapping[str, Any] | None
    children_held: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Giving:
    """`giver_id`: the tenant whose admins decide (None: platform admins). `raises`: the allocations
    to write, (tenant id, every column's new value), the tenant asking first and its ancestors after
    it; written from the top down."""

    giver_id: int | None
    raises: list[tuple[int, dict[str, Any]]]


def _fresh(yarn: bool) -> dict[str, Any]:
    """The columns of an allocation a tenant does not have yet: nothing of what it does not ask for
    (never unlimited by default)."""
    values: dict[str, Any] = dict.fromkeys(
        (*ALL_COLUMNS, *(resource.burst_field for resource in KUBERNETES_RESOURCES))
    )
    if not yarn:
        values.update(dict.fromkeys(KUBERNETES_COLUMNS, 0))
    return values


def _with(current: Mapping[str, Any] | None, yarn: bool, changes: Mapping[str, Any]) -> dict[str, Any]:
    """An allocation's columns with `changes`; a burst below a raised guaranteed amount is raised
    with it (a burst is never below what is guaranteed)."""
    values = dict(current) if current is not None else _fresh(yarn)
    values.update(changes)
    for resource in KUBERNETES_RESOURCES:
        burst = values.get(resource.burst_field)
        guaranteed = values.get(resource.field)
        if burst is not None and guaranteed is not None and burst < guaranteed:
            values[resource.burst_field] = guaranteed
    return values


def increases(current: Mapping[str, Any] | None, asked: Mapping[str, Any]) -> dict[str, Any]:
    """What the asked totals add to what the tenant holds, per Kubernetes column (only increases:
    an unlimited amount needs nothing more, and a lower one gives back)."""
    needs = {}
    for column in KUBERNETES_COLUMNS:
        if asked.get(column) is None:
            continue
        now = 0 if current is None else current.get(column)
        if now is None:
            continue
        if asked[column] > now:
            needs[column] = asked[column] - now
    return needs


def giving(asking: Level, ancestors: Sequence[Level], asked: Mapping[str, Any], yarn: bool) -> Giving:
    """Who gives `asked` (totals by column) to `asking`, whose `ancestors` are listed nearest first,
    and which allocations change."""
    raises = [(asking.tenant_id, _with(asking.amounts, yarn, asked))]
    parent_id = ancestors[0].tenant_id if ancestors else None
    needs = {} if yarn else increases(asking.amounts, asked)
    if not needs:
        return Giving(parent_id, raises)
    for ancestor in ancestors:
        lacking = {}
        for column, need in needs.items():
            limit = 0 if ancestor.amounts is None else ancestor.amounts.get(column)
            room = left(limit, ancestor.children_held.get(column) or 0)
            if room is not None and need > room:
                lacking[column] = need - room
        if not lacking:
            return Giving(ancestor.tenant_id, raises)
        now = ancestor.amounts or {}
        raised = {column: (now.get(column) or 0) + more for column, more in lacking.items()}
        raises.append((ancestor.tenant_id, _with(ancestor.amounts, yarn, raised)))
        needs = lacking
    return Giving(None, raises)
