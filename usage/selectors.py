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
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.utils import timezone

from provisioning.desired.kubernetes import KUEUE_ENGINE, RESOURCE_QUOTA_ENGINE, service_account_name
from provisioning.desired.kueue import flavor_name
from provisioning.desired.yarn import queue_path
from provisioning.models import HadoopConnection, KubernetesConnection, TenantSync
from tenants import selectors as tenant_selectors
from tenants.amounts import KUBERNETES_RESOURCES
from tenants.models import Allocation, Cluster, ResourcePool, StorageDirectory, Tenant
from tenants.permissions import Action
from usage import measures
from usage.collectors import UsageTargets
from usage.measures import flavor_column
from usage.models import USAGE_METRICS, FlavorUsage, UsageRollup, UsageSample, Workload

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
    *, user: AbstractBaseUser | None, tenant: Tenant, query: UsageQuery, now: datetime.datetime
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
    *, user: AbstractBaseUser | None, tenant_ids: list[int], now: datetime.datetime
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
    *, user: AbstractBaseUser | None, tenant_ids: list[int], now: datetime.datetime
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


def cluster_names(*, user: AbstractBaseUser | None, ids: set[int]) -> QuerySet:
    """(id, name) of the clusters named in figures the user was allowed to read."""
    return Cluster.objects.restrict(user, Action.VIEW).filter(pk__in=ids).values_list("pk", "name")


def workload_list(*, user: AbstractBaseUser | None) -> QuerySet[Workload]:
    """Workloads in the tenants the user uses (members and admins), with tenant and cluster joined."""
    return Workload.objects.restrict(user, Action.USE).select_related("tenant", "cluster")


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
