"""DEMO ONLY: made-up usage for the embedded default, so its charts are not empty without a cluster.

Every figure here is invented: a daily wave per tenant with deterministic noise, inside what the
tenant is allocated. It runs only where `CANOPY_DEMO_USAGE` is on (the embedded default's
settings); production settings refuse to start with it, and every page showing usage says
"demo figures" while it is on. It writes through `services.usage_record` like the real
collectors, so the storage, rollups and charts it feeds are the real ones.
"""

from __future__ import annotations

import datetime
import math
import random
from collections import defaultdict
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from provisioning.desired.kubernetes import service_account_name
from provisioning.selectors import tenant_namespaces_for_system
from tenants import selectors
from tenants.models import Allocation, Cluster, Membership, ResourcePool, StorageDirectory, Tenant
from tenants.permissions import AnyUser
from usage import services
from usage.measures import UsageReading, WorkloadReading
from usage.models import PoolPrice, UsageSample

DEMO_PREFIX = "demo-"


def _require_demo() -> None:
    if not settings.CANOPY_DEMO_USAGE:
        raise ImproperlyConfigured(
            "The demo usage generator makes figures up; it runs only where CANOPY_DEMO_USAGE is on "
            "(the embedded default). Production settings refuse it."
        )


def _load(tenant_id: int, cluster_id: int, moment: datetime.datetime) -> float:
    """0..1: a daily wave with a tenant-specific phase, plus noise that is the same on every run."""
    hours = moment.timestamp() / 3600
    phase = (tenant_id * 7 + cluster_id * 3) % 24
    noise = random.Random(f"{tenant_id}:{cluster_id}:{int(moment.timestamp() // 60)}").uniform(-0.12, 0.12)  # nosec B311 # made-up demo figures, not security
    return min(1.0, max(0.0, 0.55 + 0.35 * math.sin(2 * math.pi * (hours + phase) / 24) + noise))


def demo_pass(
    cluster: Cluster, moment: datetime.datetime
) -> tuple[list[UsageReading], list[WorkloadReading]]:
    """One invented collection pass of `cluster`: own figures for every leaf tenant with an
    allocation there, allocations for every tenant (services.usage_record sums the rest up)."""
    _require_demo()
    allocations = list(
        Allocation.objects.filter(pool__cluster=cluster)
        .select_related("pool", "tenant")
        .order_by("tenant__path")
    )
    # A tenant runs work of its own in a pool where none of its sub-tenants has a share.
    leaves = {(a.tenant_id, a.pool_id) for a in allocations} - {
        (a.tenant_id, a.pool_id)
        for a in allocations
        for b in allocations
        if b.pool_id == a.pool_id
        and b.tenant.path.startswith(a.tenant.path)
        and b.tenant.path != a.tenant.path
    }
    # The namespace every page names (`department1-dev1`, not `dev1`): the real collectors only
    # see workloads in the namespaces Canopy gave its tenants.
    namespaces = tenant_namespaces_for_system({allocation.tenant for allocation in allocations})
    members = defaultdict(list)
    for tenant_id, username in Membership.objects.filter(
        tenant_id__in={tenant_id for tenant_id, _ in leaves}, user__isnull=False
    ).values_list("tenant_id", "user__username"):
        members[tenant_id].append(username)
    readings: dict[tuple[int, str], UsageReading] = {}
    workloads: list[WorkloadReading] = []
    for allocation in allocations:
        pool, tenant = allocation.pool, allocation.tenant
        partition = pool.node_selector if cluster.kind == Cluster.Kind.YARN else ""
        reading = readings.setdefault(
            (tenant.pk, partition), UsageReading(tenant.pk, {}, partition=partition)
        )
        load = _load(tenant.pk, cluster.pk, moment) if tenant.state == Tenant.State.ACTIVE else 0.0
        figures = reading.figures
        if cluster.kind == Cluster.Kind.YARN:
            share = selectors.yarn_guaranteed_share(tenant, pool) or 0
            cpu = float(pool.cpu_capacity_millicores or 0) * float(share)
            memory = float(pool.memory_capacity_bytes or 0) * float(share)
            figures.update(
                cpu_allocated_millicores=cpu,
                memory_allocated_bytes=memory,
                am_cpu_limit_millicores=cpu * 0.1,
                am_memory_limit_bytes=memory * 0.1,
            )
            if (tenant.pk, pool.pk) in leaves:
                figures.update(
                    cpu_used_millicores=math.floor(cpu * load / 1000) * 1000,  # whole vCores, never above
                    memory_used_bytes=round(memory * load),
                    am_cpu_used_millicores=1000.0 * math.ceil(load * 3),
                    am_memory_used_bytes=2**30 * math.ceil(load * 3),
                    workloads_running=math.ceil(load * 3),
                    workloads_pending=1 if load > 0.85 else 0,
                )
        else:
            for used, allocated, capacity in (
                ("gpu_used", "gpu", pool.gpu_capacity),
                ("cpu_used_millicores", "cpu_millicores", pool.cpu_capacity_millicores),
                ("memory_used_bytes", "memory_bytes", pool.memory_capacity_bytes),
            ):
                limit = getattr(allocation, allocated)
                figures[used.replace("_used", "_allocated")] = limit
                if (tenant.pk, pool.pk) in leaves:
                    ceiling = limit if limit is not None else (capacity or 0) * 0.2
                    # Whole GPUs and whole cores (millicores rounded down), so never above the limit.
                    figures[used] = (
                        round(ceiling * load)
                        if used == "gpu_used"
                        else math.floor(ceiling * load / 1000) * 1000
                    )
            if (tenant.pk, pool.pk) in leaves:
                running = int(figures.get("gpu_used") or 0) or (1 if load > 0.3 else 0)
                figures.update(workloads_running=running, workloads_pending=1 if load > 0.85 else 0)
                people = members.get(tenant.pk) or ["demo"]
                for index in range(running):
                    person = people[index % len(people)]
                    workloads.append(
                        WorkloadReading(
                            tenant.pk,
                            "Pod",
                            namespaces[tenant.pk],
                            f"{DEMO_PREFIX}train-{tenant.name}-{index + 1}",
                            service_account_name(person),
                            "running",
                            username=person,
                            gpu=1 if index < int(figures.get("gpu_used") or 0) else 0,
                            cpu_millicores=2000,
                            memory_bytes=8 * 2**30,
                            started_at=moment - datetime.timedelta(minutes=5 + 13 * index),
                        )
                    )
    for directory in StorageDirectory.objects.filter(cluster=cluster).select_related("tenant"):
        reading = readings.setdefault((directory.tenant_id, ""), UsageReading(directory.tenant_id, {}))
        days = moment.timestamp() / 86400
        fill = 0.35 + 0.3 * ((days % 30) / 30)
        space = directory.space_quota_bytes or 10 * 2**40
        files = directory.file_quota or 1_000_000
        reading.figures.update(
            hdfs_space_used_bytes=(reading.figures.get("hdfs_space_used_bytes") or 0) + round(space * fill),
            hdfs_files_used=(reading.figures.get("hdfs_files_used") or 0) + round(files * fill * 0.8),
            hdfs_space_quota_bytes=directory.space_quota_bytes,
            hdfs_files_quota=directory.file_quota,
        )
    return list(readings.values()), workloads


def demo_record(moment: datetime.datetime, *, workloads: bool = True) -> int:
    """Record one invented pass of every cluster at `moment`."""
    _require_demo()
    written = 0
    for cluster in Cluster.objects.order_by("pk"):
        readings, running = demo_pass(cluster, moment)
        written += services.usage_record(
            cluster=cluster, time=moment, readings=readings, workloads=running if workloads else None
        )
    return written


def demo_backfill(now: datetime.datetime, *, days: int) -> int:
    """History for the charts' longer ranges: a pass an hour for `days` days, a pass a minute for
    the last two hours, then the hourly and daily rollups over all of it."""
    _require_demo()
    now = now.replace(second=0, microsecond=0)
    if UsageSample.objects.filter(time__gte=now - datetime.timedelta(hours=2)).exists():
        return 0  # the console ran recently: its history is there already
    start = (now - datetime.timedelta(days=days)).replace(minute=0)
    moments = [start + datetime.timedelta(hours=h) for h in range(days * 24)]
    moments += [now - datetime.timedelta(minutes=m) for m in range(120, 0, -1)]
    written = sum(demo_record(moment, workloads=False) for moment in sorted(set(moments)) if moment < now)
    services.usage_rollup(resolution="hour", start=start, end=now + datetime.timedelta(hours=1))
    services.usage_rollup(resolution="day", start=start, end=now + datetime.timedelta(days=1))
    return written


# What the demo's pools cost (made up, like its figures), so its showback has a cost column.
DEMO_PRICES: dict[str, dict[str, str]] = {
    Cluster.Kind.KUBERNETES: {"gpu": "2.50", "cpu": "0.04", "memory": "0.005"},
    Cluster.Kind.YARN: {"cpu": "0.03", "memory": "0.004", "hdfs": "0.0008"},
}


def demo_prices(acting_user: AnyUser) -> int:
    """Prices in EUR on each cluster's default pool, unless a platform admin has set some."""
    _require_demo()
    if PoolPrice.objects.exists():
        return 0
    pools = ResourcePool.objects.filter(name=ResourcePool.DEFAULT_NAME).select_related("cluster")
    prices = [
        services.PriceSpec(pool, resource, Decimal(price))
        for pool in pools
        for resource, price in DEMO_PRICES.get(pool.cluster.kind, {}).items()
    ]
    return len(services.pool_prices_set(acting_user=acting_user, currency="EUR", prices=prices))
