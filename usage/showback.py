"""Showback (issue 19): what tenants were allocated and used in GPU-hours, core-hours, memory
GiB-hours and HDFS GiB-days, per day and per month, from the usage rollups, and what that costs at
the pools' prices. Pure arithmetic on what `usage.selectors.showback_month` reads (no ORM, no I/O);
the page, the CSV, the PDF and the API all show these objects.

How a figure is counted, exactly:
- an hour counts its hourly rollup (the average of the hour's samples) in whole *ticks*: a
  millionth of a GPU, a millicore, a byte; rounded half up, `floor(average x ticks + 1/2)`. The
  database sums ticks x hours as integers, so no sum depends on the order of the rows;
- a day older than the hourly rollups are kept (`CANOPY_USAGE_HOURLY_DAYS`) counts its daily
  rollup x 24 h; the current month counts the hours that are over;
- an hour (or a day) without a figure counts nothing: not measured there, or unlimited (no
  allocated figure);
- units are exact fractions of those integers (GPU-hours = micro-GPU-hours / 10^6, core-hours =
  millicore-hours / 1000, GiB-hours = byte-hours / 2^30, GiB-days = byte-hours / (24 x 2^30)), and
  so are costs (price x units); each is rounded once, when shown (3 decimals, costs to cents).

Figures are stored per tenant for its whole subtree (`usage.measures`), so a tenant's row is its
subtree; what a tenant used *itself* is its subtree less its sub-tenants' subtrees.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from tenants.exports import Cell

# Keys of the integer sums the selector reads: "<metric>" -> ticks x hours (None: no figure).
Tally = dict[str, int | None]
# A usage scope: (cluster id, partition). A YARN partition is a pool (its node label); a Kubernetes
# cluster's figures are the whole cluster's (its namespaces' quotas count across its pools).
Scope = tuple[int, str]


@dataclass(frozen=True)
class Resource:
    """A resource the showback counts: its used and allocated figures, and how many ticks x hours
    make one unit (a GPU-hour is 10^6 micro-GPU x 1 h)."""

    key: str  # usage.models.PoolPrice.Resource
    label: str
    unit: str
    used: str
    allocated: str
    ticks_per_value: int  # a stored value x this = ticks
    ticks_per_unit: int
    hours_per_unit: int

    @property
    def per(self) -> str:
        """One unit, as a price is per: "GPU-hour"."""
        return self.unit.removesuffix("s")

    def units(self, tick_hours: int | None) -> Fraction | None:
        if tick_hours is None:
            return None
        return Fraction(tick_hours, self.ticks_per_unit * self.hours_per_unit)


GIB = 2**30
RESOURCES: tuple[Resource, ...] = (
    Resource("gpu", "GPU", "GPU-hours", "gpu_used", "gpu_allocated", 10**6, 10**6, 1),
    Resource("cpu", "CPU", "core-hours", "cpu_used_millicores", "cpu_allocated_millicores", 1, 1000, 1),
    Resource("memory", "Memory", "GiB-hours", "memory_used_bytes", "memory_allocated_bytes", 1, GIB, 1),
    Resource("hdfs", "HDFS space", "GiB-days", "hdfs_space_used_bytes", "hdfs_space_quota_bytes", 1, GIB, 24),
)
RESOURCE_BY_KEY = {resource.key: resource for resource in RESOURCES}
TALLY_METRICS: tuple[str, ...] = tuple(m for r in RESOURCES for m in (r.used, r.allocated))
DECIMALS = 3
CENTS = 2


# ---------------------------------------------------------------------------------------------
# Months


def month_parse(text: str) -> datetime.date:
    """'2026-11' -> the month's first day. ValueError with a sentence people read otherwise."""
    try:
        first = datetime.datetime.strptime(text.strip(), "%Y-%m").date()
    except ValueError:
        raise ValueError("A month as YYYY-MM, e.g. 2026-11.") from None
    if first.year < 2000:
        raise ValueError("A month from 2000 on.")
    return first


def month_after(first: datetime.date) -> datetime.date:
    return datetime.date(first.year + first.month // 12, first.month % 12 + 1, 1)


@dataclass(frozen=True)
class Window:
    """The hours a month's showback counts, [start, end) in UTC, and from when the hourly rollups
    are read (before: the daily ones)."""

    month: datetime.date
    start: datetime.datetime
    end: datetime.datetime
    hourly_from: datetime.datetime

    @property
    def days(self) -> list[datetime.date]:
        count = (self.end - self.start + datetime.timedelta(hours=23)).days
        return [self.month + datetime.timedelta(days=n) for n in range(count)]

    @property
    def complete(self) -> bool:
        return self.end == _midnight(month_after(self.month))


def _midnight(day: datetime.date) -> datetime.datetime:
    return datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC)


def month_window(month: datetime.date, now: datetime.datetime, hourly_days: int) -> Window:
    """The month's hours that are over at `now`. ValueError for a month that has not begun."""
    start = _midnight(month)
    if start >= now:
        raise ValueError("A month that has begun: there are no figures for it yet.")
    end = min(
        _midnight(month_after(month)), now.astimezone(datetime.UTC).replace(minute=0, second=0, microsecond=0)
    )
    # The first whole day whose hourly rollups are all kept.
    kept = now.astimezone(datetime.UTC) - datetime.timedelta(days=hourly_days)
    hourly_from = _midnight(kept.date()) + datetime.timedelta(days=1)
    return Window(month, start, max(end, start), hourly_from)


# ---------------------------------------------------------------------------------------------
# Prices


def price_refusal(*, yarn: bool, default_pool: bool, resource: str) -> str | None:
    """Why a price of `resource` on a pool would never apply (None: it would). Kubernetes figures
    are read per namespace, across the cluster's pools, so a Kubernetes cluster is priced at its
    default pool; a YARN partition is its pool; HDFS belongs to a Hadoop cluster, not a partition."""
    if resource not in RESOURCE_BY_KEY:
        return f"No such resource: {resource}."
    if not yarn:
        if resource == "hdfs":
            return "HDFS is a Hadoop cluster's: price it on the Hadoop cluster's default pool."
        if not default_pool:
            return (
                "Kubernetes figures are the whole cluster's (a namespace's quota counts across its pools): "
                "price the cluster's default pool."
            )
        return None
    if resource == "gpu":
        return "YARN pools count no GPUs."
    if resource == "hdfs" and not default_pool:
        return "HDFS figures are the whole Hadoop cluster's: price its default pool."
    return None


@dataclass
class Prices:
    """Prices per scope and resource, in one currency (empty: no cost columns)."""

    currency: str = ""
    by_scope: dict[Scope, dict[str, Decimal]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.by_scope)

    def cost(self, scope: Scope, tally: Tally, basis: str) -> Fraction | None:
        """What `tally` costs at the scope's prices, of what was used or allocated (`basis`)."""
        if not self:
            return None
        prices = self.by_scope.get(scope, {})
        total = Fraction(0)
        for resource in RESOURCES:
            units = resource.units(tally.get(getattr(resource, basis)))
            if units is not None and resource.key in prices:
                total += units * Fraction(prices[resource.key])
        return total


# ---------------------------------------------------------------------------------------------
# Adding tallies up


def tally_add(into: Tally, other: Mapping[str, int | None], sign: int = 1) -> Tally:
    """`into` += sign x `other`, metric by metric; a figure absent on both sides stays None."""
    for metric in TALLY_METRICS:
        value = other.get(metric)
        if value is None:
            continue
        into[metric] = (into.get(metric) or 0) + sign * value
    return into


def tally_sum(tallies: Iterable[Mapping[str, int | None]]) -> Tally:
    total: Tally = {}
    for tally in tallies:
        tally_add(total, tally)
    return total


@dataclass
class Amount:
    used: Fraction | None
    allocated: Fraction | None


@dataclass
class Line:
    """One row of the report: a tenant's subtree (or what it used itself) over the window, per
    scope, with totals per resource and costs."""

    tenant_id: int | None
    name_path: str
    kind: str  # "subtree", "itself", "total"
    scopes: dict[Scope, Tally]
    prices: Prices

    @property
    def tally(self) -> Tally:
        return tally_sum(self.scopes.values())

    @property
    def amounts(self) -> dict[str, Amount]:
        tally = self.tally
        return {r.key: Amount(r.units(tally.get(r.used)), r.units(tally.get(r.allocated))) for r in RESOURCES}

    def cost(self, basis: str) -> Fraction | None:
        costs = [self.prices.cost(scope, tally, basis) for scope, tally in self.scopes.items()]
        if not self.prices:
            return None
        return sum((c for c in costs if c is not None), Fraction(0))

    @property
    def cost_used(self) -> Fraction | None:
        return self.cost("used")

    @property
    def cost_allocated(self) -> Fraction | None:
        return self.cost("allocated")


@dataclass
class Report:
    """A month's showback of one tenant's subtree (or, with no tenant, of the tenants the reader
    holds a role on): `lines` (the subtree's total, what it used itself, each sub-tenant's subtree),
    `days` (the total per day, per scope) and what it cost."""

    window: Window
    tenant_id: int | None
    name_path: str
    total: Line
    lines: list[Line]
    days: dict[datetime.date, dict[Scope, Tally]]
    prices: Prices
    cluster_names: dict[int, str]

    def day_lines(self) -> list[tuple[datetime.date, Line]]:
        return [
            (day, Line(self.tenant_id, self.name_path, "day", self.days.get(day, {}), self.prices))
            for day in self.window.days
        ]

    def scope_name(self, scope: Scope) -> str:
        cluster_id, partition = scope
        name = self.cluster_names.get(cluster_id, str(cluster_id))
        return f"{name} / {partition}" if partition else name


def report_build(
    *,
    window: Window,
    tenant: tuple[int, str] | None,
    focus: Mapping[int, Mapping[tuple[int, str, datetime.date], Tally]],
    listed: list[tuple[int, str]],
    listed_tallies: Mapping[int, Mapping[Scope, Tally]],
    itself: bool,
    prices: Prices,
    cluster_names: dict[int, str],
) -> Report:
    """Assemble the report. `focus`: tenant id -> (cluster, partition, day) -> tally, for the tenants
    whose subtrees make the total (the tenant, or the reader's tenants that are not inside another);
    `listed`: (id, path) of the rows under it (sub-tenants, or the reader's tenants), with their
    tallies per scope; `itself`: whether every sub-tenant is listed, so the tenant's own use is its
    subtree less theirs."""
    days: dict[datetime.date, dict[Scope, Tally]] = {}
    total_scopes: dict[Scope, Tally] = {}
    for by_day in focus.values():
        for (cluster_id, partition, day), tally in by_day.items():
            tally_add(days.setdefault(day, {}).setdefault((cluster_id, partition), {}), tally)
            tally_add(total_scopes.setdefault((cluster_id, partition), {}), tally)
    tenant_id, name_path = tenant if tenant else (None, "")
    total = Line(tenant_id, name_path or "All your tenants", "total", total_scopes, prices)
    lines = [Line(pk, path, "subtree", dict(listed_tallies.get(pk, {})), prices) for pk, path in listed]
    if tenant is not None and itself:
        own: dict[Scope, Tally] = {scope: dict(tally) for scope, tally in total_scopes.items()}
        for line in lines:
            for scope, tally in line.scopes.items():
                tally_add(own.setdefault(scope, {}), tally, sign=-1)
        lines.insert(0, Line(tenant_id, name_path, "itself", own, prices))
    return Report(window, tenant_id, name_path, total, lines, days, prices, cluster_names)


# ---------------------------------------------------------------------------------------------
# Shown figures


def rounded(value: Fraction | None, places: int = DECIMALS) -> Decimal | None:
    """An exact fraction rounded once (half to even) to `places` decimals; None stays None."""
    if value is None:
        return None
    exact = round(value, places)
    result = (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(Decimal(1).scaleb(-places))
    return result + 0  # -0.000 reads as 0.000


def cost_rounded(value: Fraction | None) -> Decimal | None:
    return rounded(value, CENTS)


def line_figures(line: Line) -> dict[str, Decimal | None]:
    """A line's shown figures: `<resource>_used`, `<resource>_allocated`, `cost_used`,
    `cost_allocated`, in the resources' units."""
    figures: dict[str, Decimal | None] = {}
    for key, amount in line.amounts.items():
        figures[f"{key}_used"] = rounded(amount.used)
        figures[f"{key}_allocated"] = rounded(amount.allocated)
    figures["cost_used"] = cost_rounded(line.cost_used)
    figures["cost_allocated"] = cost_rounded(line.cost_allocated)
    return figures


CSV_HEADER = [
    "month",
    "day",
    "tenant",
    "row",
    "cluster",
    "partition",
    *[f"{r.label} {r.unit} {basis}" for r in RESOURCES for basis in ("used", "allocated")],
    "cost used",
    "cost allocated",
    "currency",
]


def csv_rows(report: Report) -> list[list[Cell]]:
    """The month's figures per row and scope, then the total per day and scope (a day without
    figures on a row of its own): every figure of the page, per cluster and partition."""
    rows: list[list[Cell]] = [list(CSV_HEADER)]
    month = f"{report.window.month:%Y-%m}"
    cluster_names = report.cluster_names

    def scoped(line: Line, day: str) -> None:
        if not line.scopes and day:  # a day without figures still has its row
            rows.append([month, day, line.name_path, line.kind] + [None] * (len(CSV_HEADER) - 4))
        for scope in sorted(line.scopes, key=lambda s: (cluster_names.get(s[0], ""), s[1])):
            one = Line(line.tenant_id, line.name_path, line.kind, {scope: line.scopes[scope]}, line.prices)
            figures = line_figures(one)
            rows.append(
                [
                    month,
                    day,
                    line.name_path,
                    line.kind,
                    cluster_names.get(scope[0], str(scope[0])),
                    scope[1],
                    *[figures[f"{r.key}_{basis}"] for r in RESOURCES for basis in ("used", "allocated")],
                    figures["cost_used"],
                    figures["cost_allocated"],
                    report.prices.currency,
                ]
            )

    for line in [report.total, *report.lines]:
        scoped(line, "")
    for day, line in report.day_lines():
        scoped(line, day.isoformat())
    return rows
