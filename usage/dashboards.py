"""What the usage pages show, from what the selectors read: the Monitoring tab's window and charts,
its CSV, and the platform overview's totals and rankings. Plain arithmetic on selector results; no
ORM and no request here, so the views stay thin and the rules are tested once.
"""

from __future__ import annotations

import datetime
import re
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.utils import numberformat, timezone
from django.utils.safestring import SafeString, mark_safe

from tenants import pool_figures
from tenants.amounts import RESOURCE_BY_NAME
from usage import measures

# The Monitoring tab's ranges, and the steps a window may use: the finest that keeps a chart under
# MAX_POINTS points. Steps under an hour exist only while raw samples are kept.
RANGES: dict[str, datetime.timedelta] = {
    "1h": datetime.timedelta(hours=1),
    "24h": datetime.timedelta(hours=24),
    "7d": datetime.timedelta(days=7),
    "30d": datetime.timedelta(days=30),
}
RANGE_LABELS = {"1h": "1 h", "24h": "24 h", "7d": "7 d", "30d": "30 d"}
DEFAULT_RANGE = "1h"
MAX_CUSTOM_SPAN = datetime.timedelta(days=400)
MAX_POINTS = 800
STEPS = (
    datetime.timedelta(minutes=1),
    datetime.timedelta(minutes=5),
    datetime.timedelta(minutes=15),
    datetime.timedelta(hours=1),
    datetime.timedelta(hours=6),
    datetime.timedelta(days=1),
)
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
HOUR = datetime.timedelta(hours=1)


def floor_time(time: datetime.datetime, step: datetime.timedelta) -> datetime.datetime:
    """`time` rounded down to a multiple of `step` since the epoch, so buckets line up with the
    hourly and daily rollups."""
    seconds = int(step.total_seconds())
    return EPOCH + datetime.timedelta(seconds=int((time - EPOCH).total_seconds()) // seconds * seconds)


def step_for(
    start: datetime.datetime, end: datetime.datetime, raw_from: datetime.datetime
) -> datetime.timedelta:
    """The finest step giving at most MAX_POINTS points; under an hour only while raw samples cover
    the start (`raw_from`), since rollups have one row an hour."""
    span = end - start
    for step in STEPS:
        if step < HOUR and start < raw_from:
            continue
        if span / step <= MAX_POINTS:
            return step
    return STEPS[-1]


def step_label(step: datetime.timedelta) -> str:
    minutes = int(step.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 24 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} d"


@dataclass
class Window:
    range: str  # a RANGES key or "custom"
    start: datetime.datetime
    end: datetime.datetime
    step: datetime.timedelta

    @property
    def step_label(self) -> str:
        return step_label(self.step)


def window_for(
    range_key: str,
    now: datetime.datetime,
    raw_from: datetime.datetime,
    start: datetime.datetime | None = None,
    end: datetime.datetime | None = None,
) -> Window:
    """The window of a relative range ending now, or of a validated custom range."""
    if range_key in RANGES:
        span = RANGES[range_key]
        step = step_for(now - span, now, raw_from)
        end = floor_time(now, step) + step  # the current bucket, still filling, is the last point
        return Window(range_key, end - span, end, step)
    assert start is not None and end is not None  # nosec B101 # narrows the type; the form only gives a custom range with both ends
    step = step_for(start, end, raw_from)
    return Window("custom", floor_time(start, step), end, step)


# ---------------------------------------------------------------------------------------------
# Charts


@dataclass(frozen=True)
class Unit:
    name: str  # shown on the axis and in the table's headers
    divisor: float
    # One precision per unit (issue 18, point 10): every figure of a chart (table, caption, axis,
    # tooltip) has this many decimals. Counted things are whole; averages of them get one decimal.
    decimals: int = 1
    counted: bool = False  # the axis counts in whole steps


COUNT_UNITS = {"gpu": "GPUs", "workloads": "workloads", "hdfs_files": "files and directories"}
BYTE_UNITS = (("TiB", 2**40, 2), ("GiB", 2**30, 1), ("MiB", 2**20, 0))
# What the second line of each chart is called: most are allocations, some limits or quotas.
SECOND_LABELS = {
    "am_cpu": "Limit",
    "am_memory": "Limit",
    "hdfs_space": "Quota",
    "hdfs_files": "Quota",
    "workloads": "Pending",
}
FIRST_LABELS = {"workloads": "Running"}


def bytes_unit(largest: float) -> Unit:
    """The largest binary unit `largest` reaches (at least MiB)."""
    for name, factor, decimals in BYTE_UNITS:
        if largest >= factor:
            return Unit(name, factor, decimals)
    return Unit(*BYTE_UNITS[-1])


def unit_for(chart: measures.Chart, largest: float, whole: bool = True) -> Unit:
    """Bytes in the largest binary unit the chart reaches; millicores as cores; counts whole
    unless some figure is not (an average)."""
    if chart.unit == "bytes":
        return bytes_unit(largest)
    if chart.unit == "cores":
        return Unit("vCores" if chart.key == "am_cpu" else "cores", 1 / chart.scale)
    return Unit(COUNT_UNITS.get(chart.key, ""), 1, decimals=0 if whole else 1, counted=True)


def shown(value: float | None, unit: Unit) -> float | None:
    if value is None:
        return None
    rounded = round(value / unit.divisor, unit.decimals)
    return int(rounded) if unit.decimals == 0 else rounded


def number_text(value: float | None, decimals: int) -> str:
    """A figure with exactly `decimals` decimals and never an exponent ("2000000", not "2e+06");
    "–" for none."""
    return "–" if value is None else numberformat.format(value, ".", decimal_pos=decimals)


@dataclass
class ExtraLine:
    """A third or fourth line of a chart (borrowed, pending on a Kueue cluster): its label and its
    values by time, in the chart's shown unit."""

    metric: str
    label: str
    values: dict[datetime.datetime, float | None]


@dataclass
class ChartView:
    """One chart of one cluster partition: its rows (time, used, allocated) in the shown unit, and
    the extra lines the cluster reports."""

    chart: measures.Chart
    cluster_id: int
    cluster_name: str
    partition: str
    unit: Unit
    used_label: str
    allocated_label: str
    rows: list[tuple[datetime.datetime, float | None, float | None]]
    # Stored figures (metric -> [(time, value)]) for the CSV: the same points, in stored units.
    stored: dict[str, list[tuple[datetime.datetime, float | None]]] = field(default_factory=dict)
    window_start: datetime.datetime | None = None  # the x axis spans the whole window
    window_end: datetime.datetime | None = None
    # Times as the table shows them, shared by the charts of one page (they share their times).
    time_labels: dict[datetime.datetime, str] = field(default_factory=dict)
    extras: list[ExtraLine] = field(default_factory=list)

    @property
    def dom_id(self) -> str:
        partition = "".join(c if c.isalnum() else "-" for c in self.partition)
        return f"chart-{self.cluster_id}-{partition}-{self.chart.key}"

    @property
    def latest_extras(self) -> list[tuple[str, float | None]]:
        """(label, value) of each extra line at the last point."""
        if not self.rows:
            return []
        time = self.rows[-1][0]
        return [(extra.label, extra.values.get(time)) for extra in self.extras]

    @property
    def latest_figures(self) -> list[tuple[str, str]]:
        """(label, figure as the table writes it) of every line at the last point."""
        if not self.rows:
            return []
        _, used, allocated = self.rows[-1]
        figures = [(self.used_label, used)] + (
            [(self.allocated_label, allocated)] if self.chart.allocated else []
        )
        return [
            (label, number_text(value, self.unit.decimals)) for label, value in figures + self.latest_extras
        ]

    def table_rows(self) -> SafeString:
        """The figures table's rows, as the template would write them (times in the current time
        zone, numbers as `{{ value }}` shows them), but built here: a 30-day tab of a tenant on three
        clusters has 13 charts of 720 rows, which took 0.9 s as a template loop; the whole tab now
        takes about 90 ms (bench/usage_dashboard.py)."""
        labels = self.time_labels
        decimals = self.unit.decimals
        with_second = bool(self.chart.allocated)
        rows = []
        for time, used, allocated in self.rows:
            label = labels.get(time)
            if label is None:
                label = labels[time] = timezone.localtime(time).strftime("%Y-%m-%d %H:%M")
            second = f'<td class="num">{number_text(allocated, decimals)}</td>' if with_second else ""
            second += "".join(
                f'<td class="num">{number_text(e.values.get(time), decimals)}</td>' for e in self.extras
            )
            rows.append(
                f'<tr><td>{label}</td><td class="num">{number_text(used, decimals)}</td>{second}</tr>'
            )
        # Safe: every piece is a float formatted here or a time formatted by strftime above.
        return mark_safe("\n".join(rows))  # nosec B308, B703 # numbers and times formatted here, no input

    def data(self) -> dict[str, Any]:
        """What the browser draws: times in epoch milliseconds, values in the shown unit."""
        return {
            "title": self.chart.title,
            "start": int(self.window_start.timestamp() * 1000) if self.window_start else None,
            "end": int(self.window_end.timestamp() * 1000) if self.window_end else None,
            "unit": self.unit.name,
            "decimals": self.unit.decimals,
            "counted": self.unit.counted,
            "used_label": self.used_label,
            "allocated_label": self.allocated_label,
            "extra_labels": [extra.label for extra in self.extras],
            "points": [
                [int(time.timestamp() * 1000), used, allocated, *(e.values.get(time) for e in self.extras)]
                for time, used, allocated in self.rows
            ],
        }


@dataclass
class ClusterCharts:
    cluster_name: str
    partition: str
    charts: list[ChartView]


def chart_metrics() -> list[str]:
    metrics: list[str] = []
    for chart in measures.CHARTS:
        metrics += [chart.used] + ([chart.allocated] if chart.allocated else [])
        metrics += [metric for metric, _ in chart.extras]
    return metrics


def charts_from_series(
    series: dict[str, list[measures.Series]],
    cluster_names: dict[int, str],
    start: datetime.datetime | None = None,
    end: datetime.datetime | None = None,
) -> list[ClusterCharts]:
    """Per cluster and partition (by name), a chart for each CHARTS entry with any figure there."""
    by_key: dict[tuple[int, str], dict[str, list[tuple[datetime.datetime, float | None]]]] = defaultdict(dict)
    for metric, entries in series.items():
        for entry in entries:
            by_key[(entry.cluster_id, entry.partition)][metric] = entry.points
    groups = []
    time_labels: dict[datetime.datetime, str] = {}
    for (cluster_id, partition), figures in sorted(
        by_key.items(), key=lambda item: (cluster_names.get(item[0][0], ""), item[0][1])
    ):
        charts = []
        for chart in measures.CHARTS:
            used = dict(figures.get(chart.used, []))
            allocated = dict(figures.get(chart.allocated, [])) if chart.allocated else {}
            if not used and not allocated:
                continue
            # Extra lines only where the cluster reports them (a Kueue cluster's borrowed, pending).
            extras = {m: dict(figures[m]) for m, _ in chart.extras if figures.get(m)}
            every = [*used.values(), *allocated.values(), *(v for e in extras.values() for v in e.values())]
            known = [v for v in every if v is not None]
            unit = unit_for(chart, max(known, default=0), all(float(v).is_integer() for v in known))
            times = sorted(set(used).union(allocated, *extras.values()))
            rows = [(time, shown(used.get(time), unit), shown(allocated.get(time), unit)) for time in times]
            stored = {chart.used: figures.get(chart.used, [])}
            if chart.allocated:
                stored[chart.allocated] = figures.get(chart.allocated, [])
            extra_lines = []
            for metric, label in chart.extras:
                if metric in extras:
                    stored[metric] = figures[metric]
                    values = {time: shown(value, unit) for time, value in extras[metric].items()}
                    extra_lines.append(ExtraLine(metric, label, values))
            charts.append(
                ChartView(
                    chart=chart,
                    cluster_id=cluster_id,
                    cluster_name=cluster_names.get(cluster_id, str(cluster_id)),
                    partition=partition,
                    unit=unit,
                    used_label=FIRST_LABELS.get(chart.key, "Used"),
                    allocated_label=SECOND_LABELS.get(chart.key, "Allocated"),
                    rows=rows,
                    stored=stored,
                    window_start=start,
                    window_end=end,
                    time_labels=time_labels,
                    extras=extra_lines,
                )
            )
        if charts:
            groups.append(ClusterCharts(charts[0].cluster_name, partition, charts))
    return groups


def csv_rows(groups: list[ClusterCharts]) -> list[list[str | Decimal]]:
    """time, cluster, partition, metric, value: the points the charts show, in stored units (the
    metric's name says which: bytes, millicores, counts). Values are numbers, the rest text
    (`tenants.exports` writes them, quoting text a spreadsheet would run)."""
    rows: list[list[str | Decimal]] = [["time", "cluster", "partition", "metric", "value"]]
    for group in groups:
        for chart in group.charts:
            for metric, points in chart.stored.items():
                for time, value in points:
                    if value is None:
                        continue
                    number = Decimal(f"{value:.3f}".rstrip("0").rstrip("."))
                    rows.append(
                        [
                            time.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                            group.cluster_name,
                            group.partition,
                            metric,
                            number,
                        ]
                    )
    return rows


# ---------------------------------------------------------------------------------------------
# The platform overview

NEAR_FULL = 0.9
# Pairs of (used, allocated) that are quotas: the workloads chart's second line is not one.
QUOTA_CHARTS = tuple(chart for chart in measures.CHARTS if chart.key != "workloads")

Latest = dict[tuple[int, str], dict[str, Any]]


@dataclass
class TenantUsage:
    tenant_id: int
    name_path: str
    basis: str  # "GPU" or "CPU"
    used: float
    allocated: float

    @property
    def ratio(self) -> float:
        return self.used / self.allocated

    @property
    def percent(self) -> int:
        return round(100 * self.ratio)


def _sum(figures: Latest, metric: str) -> float:
    return sum(row.get(metric) or 0 for row in figures.values())


def near_full_quotas(figures: Latest, cluster_names: dict[int, str]) -> list[str]:
    """Each quota of a tenant that is at least 90 % used, named with its cluster and partition."""
    found = []
    for (cluster_id, partition), row in sorted(figures.items()):
        where = cluster_names.get(cluster_id, str(cluster_id)) + (f" ({partition})" if partition else "")
        for chart in QUOTA_CHARTS:
            used, limit = row.get(chart.used), row.get(chart.allocated) if chart.allocated else None
            if used is not None and limit and used / limit >= NEAR_FULL:
                found.append(f"{chart.title} on {where}: {round(100 * used / limit)} %")
    return found


def tenant_usages(names: dict[int, str], latest: dict[int, Latest]) -> list[TenantUsage]:
    """Each tenant with a GPU allocation (else a CPU one) in its latest figures: used against
    allocated over all its clusters."""
    result = []
    for tenant_id, figures in latest.items():
        for basis, used_metric, allocated_metric in (
            ("GPU", "gpu_used", "gpu_allocated"),
            ("CPU", "cpu_used_millicores", "cpu_allocated_millicores"),
        ):
            allocated = _sum(figures, allocated_metric)
            if allocated > 0:
                result.append(
                    TenantUsage(
                        tenant_id=tenant_id,
                        name_path=names.get(tenant_id, str(tenant_id)),
                        basis=basis,
                        used=_sum(figures, used_metric),
                        allocated=allocated,
                    )
                )
                break
    return result


def rankings(usages: list[TenantUsage], size: int = 10) -> tuple[list[TenantUsage], list[TenantUsage]]:
    """The most used tenants (highest ratio first) and the most idle (lowest first); with fewer
    than 2 x `size` tenants each list takes its half, so no tenant is in both."""
    ordered = sorted(usages, key=lambda u: (-u.ratio, u.name_path))
    top = min(size, (len(ordered) + 1) // 2)
    return ordered[:top], ordered[top:][::-1][:size]


@dataclass
class ClusterTotal:
    cluster_name: str
    partition: str
    pools: list[str]  # the pools whose capacity the totals count (a Kubernetes cluster's together)
    lines: list[TotalLine]


@dataclass(frozen=True)
class TotalLine:
    """One resource of a cluster total: what is used (the latest figures) beside what level-1
    tenants are guaranteed and the capacity, as the Pools page says them (`tenants.pool_figures`)."""

    resource: str
    label: str
    meaning: str
    used: str
    allocated: str
    capacity: str


# The overview's figures, one precision per unit as on the charts: bytes by their binary unit,
# cores with one decimal, counts whole (one decimal where a figure is not), never an exponent.
def _bytes(value: float | None) -> str:
    if value is None:
        return "-"
    unit = bytes_unit(value)
    return f"{number_text(value / unit.divisor, unit.decimals)} {unit.name}"


def _cores(value: float | None) -> str:
    return "-" if value is None else f"{number_text(value / 1000, 1)} cores"


def _vcores(value: float | None) -> str:
    return "-" if value is None else f"{number_text(value / 1000, 1)} vCores"


def _count(value: float | None) -> str:
    return "-" if value is None else number_text(value, 0 if float(value).is_integer() else 1)


# What is used of each pool figure (`pool_figures.Figure.resource`), as the latest figures hold it.
USED_LINES = {
    "gpu": ("gpu_used", _count),
    "cpu": ("cpu_used_millicores", _cores),
    "memory": ("memory_used_bytes", _bytes),
}
# HDFS is no pool: its quotas come with the figures, as HDFS reports them.
HDFS_LINES = (
    ("hdfs_space", "HDFS space", "hdfs_space_used_bytes", "hdfs_space_quota_bytes", _bytes),
    ("hdfs_files", "HDFS file objects", "hdfs_files_used", "hdfs_files_quota", _count),
)
HDFS_MEANING = "quotas of level-1 tenants' directories, as HDFS reports them"


def cluster_totals(
    level1: list[Latest], pools: list[Any], cluster_names: dict[int, str]
) -> list[ClusterTotal]:
    """Per cluster partition: what level-1 tenants use (their figures are their subtrees' totals, so
    nothing is counted twice) beside what they are guaranteed and the capacity, computed and said
    as on the Pools page (`tenants.pool_figures`; a Kubernetes cluster's pools together, since a
    namespace's quota covers them all; a YARN partition is the pool of that node label)."""
    metrics = [used for used, _ in USED_LINES.values()] + [
        metric for _, _, used, quota, _ in HDFS_LINES for metric in (used, quota)
    ]
    sums: dict[tuple[int, str], dict[str, float]] = defaultdict(dict)
    for figures in level1:
        for key, row in figures.items():
            for metric in metrics:
                if row.get(metric) is not None:
                    sums[key][metric] = sums[key].get(metric, 0.0) + row[metric]
    by_key: dict[tuple[int, str], list[Any]] = defaultdict(list)
    for pool in pools:
        by_key[(pool.cluster_id, pool.node_selector if pool.is_yarn else "")].append(pool)
    totals = []
    for key in sorted(set(sums) | set(by_key), key=lambda k: (cluster_names.get(k[0], ""), k[1])):
        used = sums[key]
        lines = []
        key_pools = by_key.get(key, [])
        if key_pools:
            holdings = [pool_figures.pool_holding(pool) for pool in key_pools]
            # A YARN partition is one pool (its node label); a Kubernetes cluster's pools add up.
            holding = holdings[0] if holdings[0].yarn else pool_figures.holdings_total(holdings)
            for figure in pool_figures.pool_figures(holding):
                metric, human = USED_LINES.get(figure.resource, (None, None))
                if holding.yarn and figure.resource == "cpu":
                    human = _vcores  # YARN counts vCores, as the pool's figures say
                used_value = used.get(metric) if metric else None
                if (
                    not holding.yarn
                    and used_value is None
                    and not holding.capacity[figure.resource]
                    and not holding.held[figure.resource]
                    and not holding.unlimited.get(figure.resource)
                ):
                    continue  # e.g. GPUs on a cluster without any
                lines.append(
                    TotalLine(
                        figure.resource,
                        figure.label,
                        figure.meaning,
                        human(used_value) if human else "-",
                        figure.allocated,
                        figure.capacity,
                    )
                )
        for resource, label, used_metric, quota_metric, human in HDFS_LINES:
            if used.get(used_metric) is None and used.get(quota_metric) is None:
                continue
            lines.append(
                TotalLine(
                    resource,
                    label,
                    HDFS_MEANING,
                    human(used.get(used_metric)),
                    human(used.get(quota_metric)),
                    "-",
                )
            )
        totals.append(
            ClusterTotal(
                cluster_names.get(key[0], str(key[0])), key[1], [pool.name for pool in key_pools], lines
            )
        )
    return totals


# ---------------------------------------------------------------------------------------------
# My access: why a person's jobs wait (a Kueue cluster)

ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")
# Kueue's reasons name the resource a queue lacks: "insufficient unused quota for nvidia.com/gpu in
# flavor canopy-workers, 1 more needed".
_LACKING = re.compile(r"quota for ([A-Za-z0-9./_-]+) in flavor")
# (resource, used figure, allocated figure) as the cluster's samples hold them.
_SAMPLE_FIGURES = {
    "gpu": ("gpu_used", "gpu_allocated"),
    "cpu": ("cpu_used_millicores", "cpu_allocated_millicores"),
    "memory": ("memory_used_bytes", "memory_allocated_bytes"),
}


def in_line(position: int | None) -> str:
    """'first in line', ..., 'tenth in line', '11th in line'; '' when the place is not known."""
    if position is None or position < 1:
        return ""
    if position <= len(ORDINALS):
        return f"{ORDINALS[position - 1]} in line"
    suffix = "th" if 10 <= position % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(position % 10, "th")
    return f"{position}{suffix} in line"


def _lacking(reason: str) -> str | None:
    found = _LACKING.search(reason or "")
    if not found:
        return None
    name = found.group(1)
    return name if name in ("cpu", "memory") else "gpu"


def uses_of(resource: Any, used: float | None, guaranteed: float | None) -> str:
    """'1 of 1 GPU', '500m of 4 CPU', '1 GiB of 60 GiB' ('2 GPUs (unlimited)' without a limit):
    the unit once when both figures share it."""
    high = resource.human(None if guaranteed is None else round(guaranteed))
    low = resource.human(round(used or 0))
    if guaranteed is None:
        return f"{low} (unlimited)"
    low_number, _, low_unit = low.partition(" ")
    _, _, high_unit = high.partition(" ")
    if low_unit and (low_unit == high_unit or high_unit == f"{low_unit}s" or low_unit == f"{high_unit}s"):
        low = low_number
    return f"{low} of {high}"


def waiting_sentence(tenant_name: str, jobs: list[Any], figures: dict[str, Any] | None) -> str:
    """Why someone's jobs on one cluster wait, from those jobs (pending, with Kueue's place in line
    and reason) and the tenant's latest figures there (used against guaranteed):
    "dev1 uses 1 of 1 GPU; 1 job waiting, first in line"."""
    waiting = sorted(
        (job for job in jobs if job.state == "pending" and (job.queue_position or job.waiting_reason)),
        key=lambda job: (job.queue_position is None, job.queue_position or 0),
    )
    if not waiting:
        return ""
    count = f"{len(waiting)} job{'s' if len(waiting) != 1 else ''} waiting"
    place = in_line(waiting[0].queue_position)
    if place:
        count += f", {place}" if len(waiting) == 1 else f", the next {place}"
    resources = list(dict.fromkeys(r for job in waiting if (r := _lacking(job.waiting_reason))))
    if not resources and figures:
        resources = ["gpu" if figures.get("gpu_allocated") or figures.get("gpu_used") else "cpu"]
    uses = []
    for name in resources:
        used, allocated = _SAMPLE_FIGURES[name]
        if figures and figures.get(used) is not None:
            uses.append(uses_of(RESOURCE_BY_NAME[name], figures[used], figures.get(allocated)))
    if not uses:
        return f"{tenant_name}: {count}"
    return f"{tenant_name} uses {' and '.join(uses)}; {count}"
