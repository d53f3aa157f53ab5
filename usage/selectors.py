"""Every read of usage, always for a given user, always through `restrict` (members and admins,
`Action.USE`, see a tenant's usage and workloads; viewers do not), and what the collectors need to
map a cluster's figures back to tenants.

Figures are stored per tenant for its whole subtree, so a parent's series is one index range scan;
the batched reads (`usage_latest`, `flavor_usage_latest`) cost one query for any number of tenants.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import BigIntegerField, Case, Count, F, Max, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Cast, Floor, TruncDay
from django.utils import timezone

from provisioning.desired.kubernetes import KUEUE_ENGINE, RESOURCE_QUOTA_ENGINE, service_account_name
from provisioning.desired.kueue import flavor_name
from provisioning.desired.yarn import queue_path
from provisioning.models import HadoopConnection, KubernetesConnection, TenantSync
from tenants import selectors as tenant_selectors
from tenants.amounts import KUBERNETES_RESOURCES
from tenants.models import Allocation, Cluster, ResourcePool, StorageDirectory, Tenant, parent_tree_path
from tenants.permissions import Action, AnyUser, can, held_tenant_paths, is_platform_admin
from usage import idle, measures, showback
from usage.collectors import UsageTargets
from usage.measures import flavor_column
from usage.models import USAGE_METRICS, FlavorUsage, PoolPrice, UsageRollup, UsageSample, Workload

# What running work holds of each resource, in the latest figures (a Kubernetes namespace's quota usage).
USED_METRICS = {"gpu": "gpu_used", "cpu": "cpu_used_millicores", "memory": "memory_used_bytes"}


@dataclass
class UsageQuery:
    """A validated request for series: which figures, the range and the step between points."""

    metrics: list[str]
    start: datetime.datetime
    end: datetime.datetime
    step: datetime.timedelta


def usage_source(query: UsageQuery, now: datetime.datetime) -> str:
    """Where a range is read from: raw samples for steps under an hour while they are kept, hourly
    rollups for steps under a day, daily rollups beyond."""
    raw_from = now - datetime.timedelta(days=settings.CANOPY_USAGE_RAW_DAYS)
    if query.step < datetime.timedelta(hours=1) and query.start >= raw_from:
        return "raw"
    if query.step < datetime.timedelta(days=1):
        return UsageRollup.Resolution.HOUR
    return UsageRollup.Resolution.DAY


def usage_series(
    *, user: AnyUser | None, tenant: Tenant, query: UsageQuery, now: datetime.datetime
) -> tuple[str, dict[str, list[measures.Series]]]:
    """For each metric, one series per cluster and partition the tenant has figures on, averaged
    into `query.step` buckets. One query, whatever the subtree's size (figures are subtree totals).
    Raises Http404 when the user may not use the tenant."""
    tenant = tenant_selectors.tenant_get(user=user, pk=tenant.pk, action=Action.USE)
    source = usage_source(query, now)
    if source == "raw":
        rows = UsageSample.objects.restrict(user, Action.USE).filter(tenant=tenant)
    else:
        rows = UsageRollup.objects.restrict(user, Action.USE).filter(tenant=tenant, resolution=source)
    rows = rows.filter(time__gte=query.start, time__lt=query.end).order_by("cluster_id", "partition", "time")
    grouped: dict[tuple[int, str], list[tuple[Any, ...]]] = defaultdict(list)
    for row in rows.values_list("cluster_id", "partition", "time", *query.metrics):
        grouped[(row[0], row[1])].append(row[2:])
    result: dict[str, list[measures.Series]] = {metric: [] for metric in query.metrics}
    for (cluster_id, partition), values in grouped.items():
        averaged = measures.bucket_averages(values, query.start, query.step)
        for metric, points in zip(query.metrics, averaged, strict=True):
            if points:
                result[metric].append(measures.Series(cluster_id, partition, points))
    return source, result


def _fresh_since(now: datetime.datetime) -> datetime.datetime:
    """Figures older than a few collection passes are stale: not shown, not counted."""
    return now - datetime.timedelta(seconds=3 * settings.CANOPY_USAGE_INTERVAL_SECONDS + 60)


def usage_latest(
    *, user: AnyUser | None, tenant_ids: list[int], now: datetime.datetime
) -> dict[int, dict[tuple[int, str], dict[str, float | None]]]:
    """The newest figures of each tenant on each cluster partition, from the last few collection
    passes (older figures are stale and not shown). One query for any number of tenants."""
    since = _fresh_since(now)
    rows = (
        UsageSample.objects.restrict(user, Action.USE)
        .filter(tenant_id__in=tenant_ids, time__gte=since)
        .order_by("-time")
        .values("tenant_id", "cluster_id", "partition", "time", *USAGE_METRICS)
    )
    latest: dict[int, dict[tuple[int, str], dict[str, float | None]]] = defaultdict(dict)
    for row in rows:
        key = (row["cluster_id"], row["partition"])
        if key not in latest[row["tenant_id"]]:
            latest[row["tenant_id"]][key] = row
    return dict(latest)


def flavor_usage_latest(
    *, user: AnyUser | None, tenant_ids: list[int], now: datetime.datetime
) -> dict[int, dict[int, FlavorUsage]]:
    """What each tenant's subtree uses, reserves and borrows of each pool of a Kueue cluster, as
    the last collection pass saw it (tenant id -> pool id -> row); figures older than a few passes
    are stale and left out, as in `usage_latest`. One query for any number of tenants."""
    since = _fresh_since(now)
    rows = FlavorUsage.objects.restrict(user, Action.USE).filter(tenant_id__in=tenant_ids, seen_at__gte=since)
    latest: dict[int, dict[int, FlavorUsage]] = defaultdict(dict)
    for row in rows:
        latest[row.tenant_id][row.pool_id] = row
    return dict(latest)


def running_work_held(tenant_id: int, pool: ResourcePool) -> dict[str, float] | None:
    """What the tenant's subtree's running work holds of `pool` now, for ending its time-bound
    grants (`tenants/running_work.py`; beat ends them for nobody, so this reads for no user), from
    the latest figures the pages show: on a Kueue cluster what its admitted workloads use of the
    pool (a flavor), elsewhere the namespaces' quota usage on the cluster (which covers all its
    pools: the larger figure, so a grant waits rather than going below). None: nothing measured
    recently. Keyed by the allocation's fields."""
    since = _fresh_since(timezone.now())
    flavor = FlavorUsage.objects.filter(tenant_id=tenant_id, pool=pool, seen_at__gte=since).first()
    if flavor is not None:
        return {
            resource.field: getattr(flavor, flavor_column(resource.name, "used"))
            for resource in KUBERNETES_RESOURCES
        }
    sample = (
        UsageSample.objects.filter(
            tenant_id=tenant_id, cluster_id=pool.cluster_id, partition="", time__gte=since
        )
        .order_by("-time")
        .first()
    )
    if sample is None:
        return None
    figures = {
        resource.field: getattr(sample, USED_METRICS[resource.name]) for resource in KUBERNETES_RESOURCES
    }
    return {name: value for name, value in figures.items() if value is not None}


def cluster_names(*, user: AnyUser | None, ids: set[int]) -> QuerySet:
    """(id, name) of the clusters named in figures the user was allowed to read."""
    return Cluster.objects.restrict(user, Action.VIEW).filter(pk__in=ids).values_list("pk", "name")


def workload_list(*, user: AnyUser | None) -> QuerySet[Workload]:
    """Workloads in the tenants the user uses (members and admins), with tenant and cluster joined."""
    return Workload.objects.restrict(user, Action.USE).select_related("tenant", "cluster")


# ---------------------------------------------------------------------------------------------
# Showback (issue 19): a month's GPU-hours, core-hours, memory GiB-hours and HDFS GiB-days from the
# rollups (`usage.showback` says exactly how they are counted). Six queries for any tree.


def _tick_hours(metric: str, ticks_per_value: int) -> Sum:
    """SUM(floor(average x ticks + 1/2) x hours): each bucket in whole ticks, summed as integers
    (exact in any order); a daily rollup counts 24 hours."""
    hours = Case(
        When(resolution=UsageRollup.Resolution.DAY, then=Value(24)),
        default=Value(1),
        output_field=BigIntegerField(),
    )
    ticks = Cast(Floor(F(metric) * Value(float(ticks_per_value)) + Value(0.5)), BigIntegerField())
    return Sum(ticks * hours, output_field=BigIntegerField())


def _showback_rows(user: AnyUser | None, tenant_ids: list[int], window: showback.Window) -> QuerySet:
    """The rollups a window counts: hourly ones while they are kept, daily ones before."""
    hourly = Q(
        resolution=UsageRollup.Resolution.HOUR,
        time__gte=max(window.start, window.hourly_from),
        time__lt=window.end,
    )
    daily = Q(
        resolution=UsageRollup.Resolution.DAY,
        time__gte=window.start,
        time__lt=min(window.end, window.hourly_from),
    )
    return (
        UsageRollup.objects.restrict(user, Action.USE)
        .filter(tenant_id__in=tenant_ids)
        .filter(hourly | daily)
        .order_by()
    )


def _tallies(rows: QuerySet, *group: Any, **grouped: Any) -> list[dict[str, Any]]:
    sums = {
        metric: _tick_hours(metric, resource.ticks_per_value)
        for resource in showback.RESOURCES
        for metric in (resource.used, resource.allocated)
    }
    return list(rows.values(*group, **grouped).annotate(**sums))


def _tally(row: dict[str, Any]) -> showback.Tally:
    return {m: None if row[m] is None else int(row[m]) for m in showback.TALLY_METRICS}


def showback_tops(*, user: AnyUser | None) -> list[tuple[int, str, str]]:
    """(id, path, tree path) of the tenants a showback without a tenant lists: level-1 tenants for platform
    admins; for others each tenant they use through a role of their own or a group's, except those
    below a tenant they administer (they are that tenant's sub-tenants)."""
    tenants = Tenant.objects.restrict(user, Action.USE)
    if is_platform_admin(user):
        tenants = tenants.filter(depth=1)
    else:
        administered, held = held_tenant_paths(user)
        tenants = tenants.filter(path__in=held)
        below = [Q(path__startswith=path) & ~Q(path=path) for path in administered]
        for condition in below:
            tenants = tenants.exclude(condition)
    return list(tenants.order_by("name_path").values_list("pk", "name_path", "path"))


def pool_prices(*, user: AnyUser | None) -> QuerySet[PoolPrice]:
    """Every price, with its pool and cluster (platform data: everyone signed in reads them)."""
    return PoolPrice.objects.restrict(user, Action.VIEW).select_related("pool__cluster")


def price_scope(pool: ResourcePool) -> showback.Scope:
    """The figures a pool's prices apply to: a YARN pool is its partition (node label); a Kubernetes
    cluster's figures are the whole cluster's, priced at its default pool."""
    return (pool.cluster_id, pool.node_selector if pool.cluster.kind == Cluster.Kind.YARN else "")


def showback_prices(*, user: AnyUser | None) -> showback.Prices:
    prices = showback.Prices()
    for price in pool_prices(user=user):
        prices.currency = price.currency
        prices.by_scope.setdefault(price_scope(price.pool), {})[price.resource] = price.price
    return prices


def showback_month(
    *, user: AnyUser | None, tenant_id: int | None, window: showback.Window
) -> showback.Report:
    """The month's showback of a tenant's subtree (members and admins of it or above; otherwise a
    404): its total per day and scope, and for those who administer it each sub-tenant's subtree
    and what it used itself. Without a tenant: the reader's tenants (`showback_tops`), the total
    of those not inside another. The same number of queries for any tree."""
    if tenant_id is not None:
        tenant = tenant_selectors.tenant_get(user=user, pk=tenant_id, action=Action.USE)
        itself = can(user, Action.ADMINISTER, tenant)
        listed = (
            list(
                Tenant.objects.restrict(user, Action.USE)
                .filter(path__startswith=tenant.path, depth=tenant.depth + 1)
                .order_by("name_path")
                .values_list("pk", "name_path")
            )
            if itself
            else []
        )
        focus_ids = [tenant.pk]
        named: tuple[int, str] | None = (tenant.pk, tenant.name_path)
    else:
        tops = showback_tops(user=user)
        listed = [(pk, name_path) for pk, name_path, _ in tops]
        paths = {pk: path for pk, _, path in tops}
        focus_ids = [
            pk
            for pk, path in paths.items()
            if not any(path != other and path.startswith(other) for other in paths.values())
        ]
        itself, named = False, None
    focus: dict[int, dict[tuple[int, str, datetime.date], showback.Tally]] = defaultdict(dict)
    day = TruncDay("time", tzinfo=datetime.UTC)
    for row in _tallies(
        _showback_rows(user, focus_ids, window), "tenant_id", "cluster_id", "partition", day=day
    ):
        key = (row["cluster_id"], row["partition"], row["day"].date())
        focus[row["tenant_id"]][key] = _tally(row)
    listed_tallies: dict[int, dict[showback.Scope, showback.Tally]] = defaultdict(dict)
    listed_ids = [pk for pk, _ in listed]
    if listed_ids:
        for row in _tallies(_showback_rows(user, listed_ids, window), "tenant_id", "cluster_id", "partition"):
            listed_tallies[row["tenant_id"]][(row["cluster_id"], row["partition"])] = _tally(row)
    prices = showback_prices(user=user)
    scopes = {cluster_id for by_day in focus.values() for cluster_id, _, _ in by_day}
    scopes |= {cluster_id for by_scope in listed_tallies.values() for cluster_id, _ in by_scope}
    return showback.report_build(
        window=window,
        tenant=named,
        focus=focus,
        listed=listed,
        listed_tallies=listed_tallies,
        itself=itself,
        prices=prices,
        cluster_names=dict(cluster_names(user=user, ids=scopes)),
    )


# ---------------------------------------------------------------------------------------------
# Usage collection (issue 7): what the collectors need to map a cluster's figures back to tenants.
# A constant number of queries for any number of tenants.


def _known_people() -> tuple[frozenset[str], dict[str, str]]:
    """Usernames of everyone who holds a role (their own or a group's), and their ServiceAccount
    names -> username. One query."""
    user_model = get_user_model()
    field = user_model.USERNAME_FIELD
    usernames = frozenset(
        user_model.objects.filter(Q(memberships__isnull=False) | Q(groups__memberships__isnull=False))
        .values_list(field, flat=True)
        .distinct()
    )
    return usernames, {service_account_name(name): name for name in usernames}


def usage_targets(cluster: Cluster) -> UsageTargets:
    """Namespaces (Kubernetes), queues and directories (Hadoop) of the cluster's tenants -> their
    tenant, with the tree paths and the people the collectors map workloads to."""
    usernames, service_accounts = _known_people()
    on_cluster = Allocation.objects.filter(pool__cluster=cluster).values("tenant_id")
    if cluster.kind == Cluster.Kind.YARN:
        connection = HadoopConnection.objects.filter(cluster=cluster).first()
        tenants = dict(Tenant.objects.filter(pk__in=on_cluster).values_list("pk", "name_path"))
        directories = dict(StorageDirectory.objects.filter(cluster=cluster).values_list("path", "tenant_id"))
        return UsageTargets(
            paths=Tenant.objects.paths_with_ancestors(set(tenants) | set(directories.values())),
            queues={queue_path(name_path): tenant_id for tenant_id, name_path in tenants.items()},
            directories=directories,
            usernames=usernames,
            remainder_queue=connection.remainder_queue if connection else "default",
        )
    connection = KubernetesConnection.objects.filter(cluster=cluster).first()
    namespaces = dict(
        TenantSync.objects.filter(tenant_id__in=on_cluster).values_list("namespace", "tenant_id")
    )
    engine = connection.quota_engine if connection else RESOURCE_QUOTA_ENGINE
    flavors = {}
    if engine == KUEUE_ENGINE:
        pools = ResourcePool.objects.filter(cluster=cluster).values_list("name", flat=True)
        flavors = {flavor_name(pool): pool for pool in pools}
    return UsageTargets(
        paths=Tenant.objects.paths_with_ancestors(set(namespaces.values())),
        namespaces=namespaces,
        service_accounts=service_accounts,
        usernames=usernames,
        gpu_resource=connection.gpu_resource if connection else "nvidia.com/gpu",
        quota_engine=engine,
        flavors=flavors,
    )


# ---------------------------------------------------------------------------------------------
# Idle-quota hints (issue 19, point 4): the guarantees of the tenants a user manages and what they
# used of them; `usage.idle` does the arithmetic. Three queries (and the grants) for any number.


def idle_quota_report(
    *,
    user: AnyUser | None,
    now: datetime.datetime,
    window_days: int = idle.DEFAULT_WINDOW_DAYS,
    threshold_percent: int = idle.DEFAULT_THRESHOLD_PERCENT,
    resource: str = "gpu",
) -> idle.IdleReport:
    """The tenants `user` manages (admins of a parent or any ancestor: `Action.MANAGE`, which is
    strictly below the tenants they administer; platform admins every tenant) that are guaranteed
    `resource` in a Kubernetes pool, with their hourly figures over the last `window_days`: those
    whose peak stayed under `threshold_percent` of the guarantee, and those without figures.
    Members never see their siblings here: they manage nothing."""
    kind = idle.IDLE_RESOURCES[resource]
    allocations = Allocation.objects.restrict(user, Action.MANAGE).filter(
        pool__cluster__kind=Cluster.Kind.KUBERNETES, **{f"{kind.allocation_field}__gt": 0}
    )
    children = (
        Allocation.objects.annotate(parent_path=parent_tree_path("tenant__"))
        .filter(parent_path__in=allocations.values("tenant__path"), pool_id__in=allocations.values("pool_id"))
        .values("parent_path", "pool_id")
        .annotate(held=Sum(kind.allocation_field))
        .order_by()
    )
    held = {(row["parent_path"], row["pool_id"]): row["held"] or 0 for row in children}
    pools: dict[tuple[int, int], list[idle.PoolGuarantee]] = defaultdict(list)
    where: dict[tuple[int, int], Allocation] = {}
    for allocation in allocations.select_related("tenant", "pool__cluster").order_by("pool__name"):
        key = (allocation.tenant_id, allocation.pool.cluster_id)
        where[key] = allocation
        pools[key].append(
            idle.PoolGuarantee(
                allocation.pool_id,
                allocation.pool.name,
                getattr(allocation, kind.allocation_field),
                held.get((allocation.tenant.path, allocation.pool_id), 0),
            )
        )
    start = idle.window_start(now, window_days)
    rows = (
        UsageRollup.objects.restrict(user, Action.MANAGE)
        .filter(
            resolution=UsageRollup.Resolution.HOUR,
            partition="",
            time__gte=start,
            time__lte=now,
            tenant_id__in=allocations.values("tenant_id"),
            cluster_id__in=allocations.values("pool__cluster_id"),
            **{f"{kind.used_metric}__isnull": False},
        )
        .values("tenant_id", "cluster_id")
        .annotate(
            peak=Max(kind.used_metric),
            weighted=Sum(F(kind.used_metric) * F("samples")),
            samples=Sum("samples"),
            hours=Count("pk"),
        )
        .order_by()
    )
    used = {
        (row["tenant_id"], row["cluster_id"]): idle.UsedFigures(
            row["peak"], row["weighted"] / row["samples"], row["hours"]
        )
        for row in rows
        if row["samples"]
    }
    guarantees = []
    for (tenant_id, cluster_id), found in pools.items():
        allocation = where[(tenant_id, cluster_id)]
        guarantees.append(
            idle.Guarantee(
                tenant_id, allocation.tenant.name_path, cluster_id, allocation.pool.cluster.name, tuple(found)
            )
        )
    return idle.idle_report(
        resource=kind,
        guarantees=guarantees,
        used=used,
        window_days=window_days,
        threshold_percent=threshold_percent,
        end=now,
    )
