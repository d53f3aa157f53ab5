"""What Canopy measures on the clusters, and the pure arithmetic on it (no ORM, no I/O).

The figures themselves are stored per tenant, cluster, partition and time in `UsageSample` (raw)
and `UsageRollup` (hourly and daily averages); `usage.services` writes them, `usage.selectors`
reads them. Every stored figure is for a tenant's whole subtree, so a parent's chart is one index
range scan and never a query per descendant: collectors that read one figure per tenant (a
Kubernetes namespace's quota usage, an HDFS directory) turn them into subtree totals with
`subtree_totals` before they are stored; YARN's parent queues already include their children.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tenants.models import Tenant
from usage.models import USAGE_METRICS

__all__ = [
    "USAGE_METRICS",
    "CHARTS",
    "UsageReading",
    "WorkloadReading",
    "FlavorReading",
    "subtree_totals",
    "bucket_averages",
]


@dataclass(frozen=True)
class Chart:
    """One chart of the Monitoring tab: what is used against what is allocated (or the limit), and
    the `extras` lines (metric, label) where a cluster reports them: on a Kueue cluster, what is
    borrowed above the allocation and what waiting workloads ask for."""

    key: str
    title: str
    unit: str  # "count", "cores", "bytes"
    used: str
    allocated: str | None
    scale: float = 1.0  # stored value x scale = shown value (millicores -> cores)
    extras: tuple[tuple[str, str], ...] = ()


CHARTS: tuple[Chart, ...] = (
    Chart(
        "gpu",
        "GPUs",
        "count",
        "gpu_used",
        "gpu_allocated",
        extras=(("gpu_borrowed", "Borrowed"), ("gpu_pending", "Pending")),
    ),
    Chart(
        "cpu",
        "CPU / vCores",
        "cores",
        "cpu_used_millicores",
        "cpu_allocated_millicores",
        0.001,
        extras=(("cpu_borrowed_millicores", "Borrowed"), ("cpu_pending_millicores", "Pending")),
    ),
    Chart(
        "memory",
        "Memory",
        "bytes",
        "memory_used_bytes",
        "memory_allocated_bytes",
        extras=(("memory_borrowed_bytes", "Borrowed"), ("memory_pending_bytes", "Pending")),
    ),
    Chart("am_cpu", "YARN AM vCores", "cores", "am_cpu_used_millicores", "am_cpu_limit_millicores", 0.001),
    Chart("am_memory", "YARN AM memory", "bytes", "am_memory_used_bytes", "am_memory_limit_bytes"),
    Chart("workloads", "Running and pending work", "count", "workloads_running", "workloads_pending"),
    Chart("hdfs_space", "HDFS space", "bytes", "hdfs_space_used_bytes", "hdfs_space_quota_bytes"),
    Chart("hdfs_files", "HDFS file objects", "count", "hdfs_files_used", "hdfs_files_quota"),
)
CHART_BY_KEY = {chart.key: chart for chart in CHARTS}

# Figures that are a sum over a subtree (everything but the limits and allocations, which the
# collectors read for each tenant as the whole subtree's already, and what is borrowed: a subtree
# borrows only what it uses above its whole allocation, see `provisioning.collectors`).
ADDITIVE = frozenset(
    {
        "gpu_used",
        "cpu_used_millicores",
        "memory_used_bytes",
        "am_cpu_used_millicores",
        "am_memory_used_bytes",
        "workloads_running",
        "workloads_pending",
        "hdfs_space_used_bytes",
        "hdfs_files_used",
        "gpu_pending",
        "cpu_pending_millicores",
        "memory_pending_bytes",
    }
)
if not set(USAGE_METRICS) >= ADDITIVE:  # a check of this module's own constants, also under python -O
    raise RuntimeError(f"Not usage metrics: {sorted(ADDITIVE - set(USAGE_METRICS))}")


@dataclass
class UsageReading:
    """What a collector read for one tenant on one cluster partition. `figures` maps names in
    `USAGE_METRICS` to values (a quota None: unlimited); those in ADDITIVE are the tenant's own unless
    `subtree` is set."""

    tenant_id: int
    figures: dict[str, float | None]
    partition: str = ""
    subtree: bool = False


@dataclass
class WorkloadReading:
    tenant_id: int
    kind: str
    namespace: str
    name: str
    submitted_by: str
    state: str
    username: str = ""
    gpu: float = 0
    cpu_millicores: float = 0
    memory_bytes: float = 0
    started_at: datetime.datetime | None = None
    queue_position: int | None = None  # Kueue: its place in its ClusterQueue's line, 1 first
    waiting_reason: str = ""  # Kueue: why it is held back


# The resources of a Kueue flavor's figures, and the figures of each (`FlavorUsage`'s columns are
# `<resource>_<figure>` with the unit's suffix: gpu_used, cpu_used_millicores, memory_used_bytes).
FLAVOR_RESOURCES = (("gpu", ""), ("cpu", "_millicores"), ("memory", "_bytes"))
FLAVOR_FIGURES = ("used", "reserved", "guaranteed", "borrowed")


def flavor_column(resource: str, figure: str) -> str:
    return f"{resource}_{figure}{dict(FLAVOR_RESOURCES)[resource]}"


@dataclass
class FlavorReading:
    """What a tenant's subtree uses of one pool (a Kueue ResourceFlavor) on a Kueue cluster:
    `figures` maps `flavor_column` names to values (guaranteed None: unlimited)."""

    tenant_id: int
    pool: str
    figures: dict[str, float | None]


def subtree_totals(
    readings: Iterable[UsageReading], paths: Mapping[int, str], *, limits: frozenset[str] = frozenset()
) -> list[UsageReading]:
    """Readings with every additive figure summed over each tenant's subtree (`paths`: tenant id ->
    treebeard path, whose prefixes are the ancestors). Figures named in `limits` (allocations read
    per part, e.g. each namespace's quota) are summed too, but are None as soon as one part is
    unlimited (None); any other figure stays the tenant's own. An ancestor without a reading of its
    own gets one carrying only the sums. Readings already `subtree` pass through unchanged."""
    summed = ADDITIVE | limits
    by_key: dict[tuple[int, str], dict[str, float | None]] = {}
    passed: list[UsageReading] = []
    own: list[UsageReading] = []
    for reading in readings:
        (passed if reading.subtree else own).append(reading)
    for reading in own:
        by_key[(reading.tenant_id, reading.partition)] = {
            name: value for name, value in reading.figures.items() if name not in summed
        }
    id_by_path = {path: tenant_id for tenant_id, path in paths.items()}
    sums: dict[tuple[int, str], dict[str, float | None]] = defaultdict(dict)
    for reading in own:
        path = paths.get(reading.tenant_id)
        if path is None:
            continue
        for prefix in Tenant.path_prefixes(path):
            ancestor = id_by_path.get(prefix)
            if ancestor is None:
                continue
            target = sums[(ancestor, reading.partition)]
            for name, value in reading.figures.items():
                if name in ADDITIVE and value is not None:
                    target[name] = (target.get(name) or 0.0) + value  # an additive sum is never None
                elif name in limits:
                    before = target.get(name, 0.0)
                    target[name] = None if value is None or before is None else before + value
    result = list(passed)
    for key in sorted(set(by_key) | set(sums)):
        figures = {**by_key.get(key, {}), **sums.get(key, {})}
        result.append(UsageReading(tenant_id=key[0], partition=key[1], figures=figures, subtree=True))
    return result


@dataclass
class Series:
    cluster_id: int
    partition: str
    points: list[tuple[datetime.datetime, float | None]] = field(default_factory=list)


def bucket_averages(
    rows: Sequence[Sequence[Any]], start: datetime.datetime, step: datetime.timedelta
) -> list[list[tuple[datetime.datetime, float | None]]]:
    """Rows of (time, figure, figure, ...) averaged into buckets of `step` from `start`: for each
    figure, its (bucket start, average) points. Empty buckets are left out, None values are not
    averaged in. The rows are put in buckets once for all their figures; a bucket of one row (an
    hourly rollup at a one-hour step, a sample at a minute) is its own average."""
    if not rows:
        return []
    seconds = step.total_seconds()
    buckets: dict[int, list[Sequence[Any]]] = {}
    for row in rows:
        buckets.setdefault(int((row[0] - start).total_seconds() // seconds), []).append(row)
    ordered = sorted(buckets.items())
    times = [start + step * index for index, _ in ordered]
    result = []
    for column in range(1, len(rows[0])):
        points = []
        for time, (_, members) in zip(times, ordered, strict=True):
            if len(members) == 1:
                value = members[0][column]
                if value is not None:
                    points.append((time, value))
                continue
            values = [member[column] for member in members if member[column] is not None]
            if values:
                points.append((time, sum(values) / len(values)))
        result.append(points)
    return result
