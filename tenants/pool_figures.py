"""What level-1 tenants hold of a pool, computed once and said one way (issue 18, point 3): the
Pools page, the usage overview's cluster totals and the API's `allocated` / `free` all read it here.

- Kubernetes pools: absolute amounts. What level-1 tenants hold is the sum of their limited GPU, CPU
  and memory amounts; an unlimited tenant reserves nothing and is counted apart.
- YARN pools: level-1 queues are guaranteed a capacity in percent of the root queue. What that
  means in vCores and memory follows from the cluster's size, which Canopy knows as the pool's
  capacity (when a platform admin set it): `share_of` turns a share into an amount, rounded down,
  and the tenant page's Resources tab uses the same function for one tenant's queue.

Pure: plain figures in (a pool from `selectors.pool_list`, with its sums annotated), figures and
their texts out. No queries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tenants.amounts import HUNDRED, KUBERNETES_RESOURCES, POOL_CAPACITY_FIELDS, percent_human
from tenants.quantities import format_memory_human
from tenants.rules import left

# What each figure is, said beside it (the pages' captions say the rest).
KUBERNETES_MEANING = "absolute: level-1 tenants' limited amounts"
YARN_PERCENT_MEANING = "guaranteed capacity, % of root queue"
YARN_AMOUNT_MEANING = "≈ {unit} at current cluster size"
YARN_SIZE_UNKNOWN = "cluster size not known: set the pool's capacity"


def share_of(capacity: int, share: Decimal) -> int:
    """What a share (0..1) of a YARN pool's capacity is, rounded down: a queue is never said to be
    guaranteed more than it is."""
    return int(Decimal(capacity) * share)


def vcores_human(millicores: int) -> str:
    """'64 vCores', '57.6 vCores': YARN counts whole vCores, a share of them is said to one decimal."""
    cores = (Decimal(millicores) / 1000).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{cores.normalize():f} vCores"


def yarn_amount_human(resource: str, amount: int) -> str:
    """A YARN amount on a page: vCores, or memory in its binary unit."""
    return vcores_human(amount) if resource == "cpu" else format_memory_human(amount)


def yarn_share_human(share: Decimal, cpu_capacity: int, memory_capacity: int) -> str | None:
    """What a queue's share (0..1) of a YARN pool means at the pool's capacity: '≈ 25.6 vCores,
    102.4 GiB'; None where the cluster's size is not known."""
    if not cpu_capacity and not memory_capacity:
        return None
    parts = [
        yarn_amount_human(name, share_of(capacity, share))
        for name, capacity in (("cpu", cpu_capacity), ("memory", memory_capacity))
        if capacity
    ]
    return "≈ " + ", ".join(parts)


@dataclass(frozen=True)
class PoolHolding:
    """What level-1 tenants hold of one pool (or of a Kubernetes cluster's pools together).

    `capacity` and `held` are absolute, per resource (gpu: count, cpu: millicores, memory: bytes).
    Kubernetes: `held` is the level-1 tenants' limited amounts and `unlimited` counts the tenants
    without a limit. YARN: `percent` is their guaranteed capacity in % of the root queue and `held`
    what it means at the pool's capacity (0 where the capacity is not known)."""

    yarn: bool
    capacity: dict[str, int]
    held: dict[str, int]
    unlimited: dict[str, int] = field(default_factory=dict)
    percent: Decimal | None = None

    @property
    def left(self) -> dict[str, Any]:
        """What is left for level-1 tenants (`rules.left`), per resource, and of the root queue's
        100 % under "capacity"."""
        rest: dict[str, Any] = {name: left(self.capacity[name], self.held[name]) for name in self.capacity}
        rest["capacity"] = left(HUNDRED, self.percent or Decimal(0))
        return rest

    def size_known(self, resource: str) -> bool:
        return self.capacity.get(resource, 0) > 0


def pool_holding(pool: Any) -> PoolHolding:
    """The holding of a pool from `selectors.pool_list` (its annotated sums and counts)."""
    capacity = {r.name: getattr(pool, POOL_CAPACITY_FIELDS[r.name]) or 0 for r in KUBERNETES_RESOURCES}
    if pool.is_yarn:
        percent = Decimal(pool.allocated_capacity or 0)
        return PoolHolding(
            yarn=True,
            capacity=capacity,
            held={name: share_of(value, percent / HUNDRED) for name, value in capacity.items()},
            percent=percent,
        )
    return PoolHolding(
        yarn=False,
        capacity=capacity,
        held={r.name: getattr(pool, f"allocated_{r.name}") or 0 for r in KUBERNETES_RESOURCES},
        unlimited={r.name: getattr(pool, f"unlimited_{r.name}") or 0 for r in KUBERNETES_RESOURCES},
    )


def holdings_total(holdings: list[PoolHolding]) -> PoolHolding:
    """Several Kubernetes pools of one cluster together (a namespace's quota covers all of them):
    capacities, holdings and unlimited tenants summed."""
    names = [r.name for r in KUBERNETES_RESOURCES]
    return PoolHolding(
        yarn=False,
        capacity={name: sum(h.capacity[name] for h in holdings) for name in names},
        held={name: sum(h.held[name] for h in holdings) for name in names},
        unlimited={name: sum(h.unlimited.get(name, 0) for h in holdings) for name in names},
    )


@dataclass(frozen=True)
class Figure:
    """One line of a pool as the pages show it: what it is (`meaning`, for a caption or a tooltip),
    the pool's capacity, what level-1 tenants hold and what is left for them."""

    resource: str  # gpu, cpu, memory; "capacity" for a YARN pool's queue capacity
    label: str
    capacity: str
    allocated: str
    left: str
    meaning: str


def _about(text: str, amount: int) -> str:
    """A share of a YARN pool at its capacity is approximate ("≈"); nothing is nothing."""
    return f"≈ {text}" if amount else text


def _unlimited_note(count: int) -> str:
    return f" (+{count} unlimited)" if count else ""


def pool_figures(holding: PoolHolding) -> list[Figure]:
    """The lines of a pool, the same on every page: Kubernetes GPUs, CPU and memory in absolute
    amounts; YARN the guaranteed capacity in % of the root queue, then ≈ vCores and memory it means."""
    rest = holding.left
    if not holding.yarn:
        return [
            Figure(
                r.name,
                r.label,
                r.human(holding.capacity[r.name]),
                r.human(holding.held[r.name]) + _unlimited_note(holding.unlimited.get(r.name, 0)),
                r.exactly(rest[r.name]),
                KUBERNETES_MEANING,
            )
            for r in KUBERNETES_RESOURCES
        ]
    figures = [
        Figure(
            "capacity",
            "Queue capacity",
            "100 % of root queue",
            percent_human(holding.percent),
            percent_human(rest["capacity"]),
            YARN_PERCENT_MEANING,
        )
    ]
    for name, label in (("cpu", "vCores"), ("memory", "Memory")):
        if not holding.size_known(name):
            figures.append(Figure(name, label, "not known", "—", "—", YARN_SIZE_UNKNOWN))
            continue
        unit = "cores" if name == "cpu" else "memory"
        figures.append(
            Figure(
                name,
                label,
                yarn_amount_human(name, holding.capacity[name]),
                _about(yarn_amount_human(name, holding.held[name]), holding.held[name]),
                _about(yarn_amount_human(name, rest[name]), rest[name]),
                YARN_AMOUNT_MEANING.format(unit=unit),
            )
        )
    return figures
