"""Idle-quota hints (issue 19, point 4): tenants whose use of a guaranteed amount stayed low over a
window, with the figures an admin above them needs to take some of it back. Only a hint: nothing
here changes an allocation, and no job is ever stopped.

What a tenant uses is read from the hourly rollups (`usage.selectors.idle_quota_report` reads them
and the allocations; this module is plain arithmetic, no ORM). A tenant is *idle* when its *peak*
(the highest hourly average of the window) stayed under `threshold` % of its guarantee: "the most
it used stayed under X % of what it is guaranteed", which is what an admin takes a share back on.
A mean under the threshold would name a tenant that trains hard one day a week; the mean is shown
beside the peak. Hours without figures are left out of both (not counted as 0), and a tenant with
no figures in the window is listed apart, never called idle.

Usage figures of a Kubernetes cluster are per namespace, so per cluster: a tenant guaranteed the
resource in one pool of the cluster gets a suggested amount for that pool (the peak rounded up,
never below it nor below what its sub-tenants hold there); one guaranteed it in several pools of
the cluster gets the figures against their sum and no suggestion (its use cannot be split by pool).
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field
from urllib.parse import urlencode

WINDOW_DAYS = (1, 7, 30)
DEFAULT_WINDOW_DAYS = 7
DEFAULT_THRESHOLD_PERCENT = 25
MAX_THRESHOLD_PERCENT = 100
# Averages of whole numbers come back as 0.9999999999 or 1.0000000001: a suggestion rounds up
# what is at least this far above a whole amount.
ROUNDING_SLACK = 1e-9


@dataclass(frozen=True)
class IdleResource:
    """A resource idle hints can be computed for: its rollup column, its allocation column, and
    the step a suggested amount is rounded up to (whole GPUs, whole cores, whole GiB)."""

    name: str
    label: str
    used_metric: str
    allocation_field: str
    granule: int


IDLE_RESOURCES = {
    "gpu": IdleResource("gpu", "GPUs", "gpu_used", "gpu", 1),
    "cpu": IdleResource("cpu", "CPU", "cpu_used_millicores", "cpu_millicores", 1000),
    "memory": IdleResource("memory", "Memory", "memory_used_bytes", "memory_bytes", 2**30),
}


@dataclass(frozen=True)
class PoolGuarantee:
    """A tenant's guaranteed amount of the resource in one pool, and what its sub-tenants hold of
    it there (a parent's amount is never lowered below that)."""

    pool_id: int
    pool_name: str
    amount: int
    held_by_subtenants: int = 0


@dataclass(frozen=True)
class Guarantee:
    """What one tenant is guaranteed of the resource on one cluster (its pools there)."""

    tenant_id: int
    tenant_path: str
    cluster_id: int
    cluster_name: str
    pools: tuple[PoolGuarantee, ...]

    @property
    def amount(self) -> int:
        return sum(pool.amount for pool in self.pools)


@dataclass(frozen=True)
class UsedFigures:
    """The tenant's use on the cluster over the window, from its hourly averages: the highest, the
    mean of every sample behind them, and how many hours had figures."""

    peak: float
    mean: float
    hours: int


@dataclass(frozen=True)
class Proposal:
    """What a proposed change (a quota request in the other direction) needs: lower `tenant`'s
    guaranteed `resource` in `pool` from `current` to `amount`."""

    tenant_id: int
    pool_id: int
    resource: str
    current: int
    amount: int
    reason: str

    def query(self) -> str:
        """The proposal as the query string the quotas app's propose page is asked with."""
        return urlencode(
            {
                "tenant": self.tenant_id,
                "pool": self.pool_id,
                "resource": self.resource,
                "current": self.current,
                "amount": self.amount,
                "reason": self.reason,
            }
        )


@dataclass(frozen=True)
class IdleHint:
    guarantee: Guarantee
    used: UsedFigures
    window_hours: int
    suggested: int | None  # None: no single pool to lower, or nothing lower to suggest
    resource: IdleResource

    @property
    def peak_percent(self) -> float:
        return 100 * self.used.peak / self.guarantee.amount

    @property
    def mean_percent(self) -> float:
        return 100 * self.used.mean / self.guarantee.amount

    @property
    def pool(self) -> PoolGuarantee | None:
        """The one pool the guarantee is in; None when it is in several pools of the cluster."""
        return self.guarantee.pools[0] if len(self.guarantee.pools) == 1 else None

    @property
    def proposal(self) -> Proposal | None:
        pool = self.pool
        if pool is None or self.suggested is None:
            return None
        reason = (
            f"Idle quota: over the last {self.window_hours // 24} day{'' if self.window_hours == 24 else 's'} "
            f"{self.guarantee.tenant_path} used at most {self.used.peak:.1f} (mean {self.used.mean:.1f}) of "
            f"its {self.guarantee.amount} guaranteed {self.resource.label} on {self.guarantee.cluster_name} "
            f"({self.peak_percent:.0f} %)."
        )
        return Proposal(
            self.guarantee.tenant_id, pool.pool_id, self.resource.name, pool.amount, self.suggested, reason
        )


@dataclass
class IdleReport:
    resource: IdleResource
    window_days: int
    threshold_percent: int
    start: datetime.datetime
    end: datetime.datetime
    idle: list[IdleHint] = field(default_factory=list)
    without_figures: list[Guarantee] = field(default_factory=list)
    busy: int = 0  # guarantees with figures whose peak reached the threshold

    @property
    def window_hours(self) -> int:
        return self.window_days * 24


def window_start(end: datetime.datetime, days: int) -> datetime.datetime:
    """The first hourly bucket of a window of `days` days ending at `end` (its hour included)."""
    hour = end.astimezone(datetime.UTC).replace(minute=0, second=0, microsecond=0)
    return hour - datetime.timedelta(days=days) + datetime.timedelta(hours=1)


def is_idle(used: UsedFigures, guaranteed: int, threshold_percent: int) -> bool:
    """The peak stayed strictly under `threshold_percent` of the guarantee (a tenant exactly at the
    threshold is not idle; at 0 % none is)."""
    return used.peak * 100 < threshold_percent * guaranteed


def suggested_amount(guarantee: Guarantee, used: UsedFigures, resource: IdleResource) -> int | None:
    """The peak rounded up to the resource's step, never below what the sub-tenants hold; None when
    the guarantee is in several pools of the cluster or the suggestion would not be lower."""
    if len(guarantee.pools) != 1:
        return None
    pool = guarantee.pools[0]
    steps = math.ceil(max(0.0, used.peak / resource.granule - ROUNDING_SLACK))
    amount = max(steps * resource.granule, pool.held_by_subtenants)
    return amount if amount < pool.amount else None


def idle_report(
    *,
    resource: IdleResource,
    guarantees: list[Guarantee],
    used: dict[tuple[int, int], UsedFigures],
    window_days: int,
    threshold_percent: int,
    end: datetime.datetime,
) -> IdleReport:
    """Each guarantee with figures (`used`, by tenant and cluster id) whose peak stayed under the
    threshold, lowest first; those with no figures apart."""
    report = IdleReport(resource, window_days, threshold_percent, window_start(end, window_days), end)
    for guarantee in guarantees:
        figures = used.get((guarantee.tenant_id, guarantee.cluster_id))
        if figures is None:
            report.without_figures.append(guarantee)
        elif is_idle(figures, guarantee.amount, threshold_percent):
            report.idle.append(
                IdleHint(
                    guarantee,
                    figures,
                    report.window_hours,
                    suggested_amount(guarantee, figures, resource),
                    resource,
                )
            )
        else:
            report.busy += 1
    report.idle.sort(
        key=lambda hint: (hint.peak_percent, hint.guarantee.tenant_path, hint.guarantee.cluster_name)
    )
    report.without_figures.sort(key=lambda g: (g.tenant_path, g.cluster_name))
    return report
