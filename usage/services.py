"""Every write of usage (issue 7). Collectors, the rollups and the demo generator write samples, not
people, so those services take no acting user and write no audit row; a platform admin's change of a
cluster's collection interval is audited like every other write.

- `usage_record`: one collection pass of one cluster: raw samples (subtree totals, see
  `usage.measures`), the cluster's workloads and its Kueue figures per pool, each replacing the last
  pass's;
- `usage_rollup`, `usage_prune`: hourly and daily averages, and retention;
- `usage_interval_set`: a platform admin's per-cluster interval (default 60 s), audited;
- `usage_clusters_claim`: which connected clusters are due (their interval has passed), each
  claimed so overlapping beats never collect one cluster twice;
- `usage_collect`: one pass over one cluster (a collector from `usage.collectors`), stored with
  `usage_record`; the outcome, or the error, lands on the cluster's `UsageCollection` row. A
  failing cluster never raises: the others go on;
- `pool_prices_set`: a platform admin's prices for the showback (issue 19), audited;
- `usage_rollup_recent`: hourly rollups of the last two hours, yesterday's daily rollup once, and
  retention.

Collection only reads the clusters: it uses provisioning's connections and backends (their clients,
authentication and failover), never its push.
"""

from __future__ import annotations

import datetime
import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Avg, Count, Q
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from provisioning.backends.base import BackendError
from provisioning.backends.kubernetes import KubernetesBackend
from provisioning.backends.yarn import YarnBackend
from provisioning.models import HadoopConnection, KubernetesConnection
from provisioning.services import backend_for
from tenants.audit import audit
from tenants.models import Cluster, ResourcePool, Tenant
from tenants.permissions import AnyUser, require_platform_admin
from usage import measures, selectors, showback
from usage.collectors import Collector, HadoopCollector, KubernetesCollector
from usage.models import (
    USAGE_METRICS,
    FlavorUsage,
    PoolPrice,
    UsageCollection,
    UsageRollup,
    UsageSample,
    Workload,
)

logger = logging.getLogger(__name__)

# Beat asks every 15 s: a cluster this close to its interval is taken now rather than 15 s late.
DUE_SLACK = datetime.timedelta(seconds=5)
# Beat looks every 15 s, so shorter intervals would not be kept.
MIN_INTERVAL_SECONDS = 15
MAX_INTERVAL_SECONDS = 86400
# Yesterday's daily rollup waits this long into the day, for passes that started before midnight.
DAILY_GRACE = datetime.timedelta(minutes=10)


@dataclass
class UsageOutcome:
    cluster: str
    state: str
    message: str = ""
    samples: int = 0
    workloads: int = 0
    calls: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Storing what was read, rollups and retention. Figures are subtree totals (see usage.measures).


def usage_record(
    *,
    cluster: Cluster,
    time: datetime.datetime,
    readings: Iterable[measures.UsageReading],
    workloads: Iterable[measures.WorkloadReading] | None = None,
    flavors: Iterable[measures.FlavorReading] | None = None,
) -> int:
    """Store one collection pass of `cluster` at `time`: the readings as raw samples (own figures
    summed over subtrees first) and, when given, the cluster's workloads and its Kueue figures per
    pool (`FlavorUsage`), each replacing the previous pass's. Idempotent for a (cluster, time): a
    pass recorded twice keeps the first samples. Readings for tenants deleted meanwhile are
    dropped. Returns the number of samples written."""
    readings = list(readings)
    tenant_ids = {reading.tenant_id for reading in readings}
    if any(not reading.subtree for reading in readings):
        # Ancestors too, so the subtree totals can be formed.
        paths = Tenant.objects.paths_with_ancestors(tenant_ids)
    else:
        paths = dict(Tenant.objects.filter(pk__in=tenant_ids).values_list("pk", "path"))
    totals = measures.subtree_totals((r for r in readings if r.tenant_id in paths), paths)
    rows = [
        UsageSample(
            tenant_id=reading.tenant_id,
            cluster=cluster,
            partition=reading.partition,
            time=time,
            **{name: reading.figures.get(name) for name in USAGE_METRICS},
        )
        for reading in totals
    ]
    with transaction.atomic():
        UsageSample.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)
        if workloads is not None:
            workloads = list(workloads)
            ids = {w.tenant_id for w in workloads}
            known = set(Tenant.objects.filter(pk__in=ids).values_list("pk", flat=True))
            _workloads_replace(cluster, time, [w for w in workloads if w.tenant_id in known])
        if flavors is not None:
            _flavors_replace(cluster, time, list(flavors))
    return len(rows)


def _flavors_replace(
    cluster: Cluster, time: datetime.datetime, flavors: list[measures.FlavorReading]
) -> None:
    pools = dict(ResourcePool.objects.filter(cluster=cluster).values_list("name", "pk"))
    known = set(Tenant.objects.filter(pk__in={f.tenant_id for f in flavors}).values_list("pk", flat=True))
    FlavorUsage.objects.filter(cluster=cluster).delete()
    FlavorUsage.objects.bulk_create(
        [
            FlavorUsage(
                tenant_id=f.tenant_id, cluster=cluster, pool_id=pools[f.pool], seen_at=time, **f.figures
            )
            for f in flavors
            if f.pool in pools and f.tenant_id in known
        ],
        batch_size=2000,
        ignore_conflicts=True,
    )


def _workloads_replace(
    cluster: Cluster, time: datetime.datetime, workloads: list[measures.WorkloadReading]
) -> None:
    Workload.objects.filter(cluster=cluster).delete()
    Workload.objects.bulk_create(
        [
            Workload(
                tenant_id=w.tenant_id,
                cluster=cluster,
                kind=w.kind,
                namespace=w.namespace,
                name=w.name,
                submitted_by=w.submitted_by,
                username=w.username,
                state=w.state,
                gpu=w.gpu,
                cpu_millicores=w.cpu_millicores,
                memory_bytes=w.memory_bytes,
                started_at=w.started_at,
                seen_at=time,
                queue_position=w.queue_position,
                waiting_reason=w.waiting_reason,
            )
            for w in workloads
        ],
        batch_size=2000,
        ignore_conflicts=True,
    )


_TRUNC = {UsageRollup.Resolution.HOUR: TruncHour, UsageRollup.Resolution.DAY: TruncDay}
_BUCKET = {
    UsageRollup.Resolution.HOUR: datetime.timedelta(hours=1),
    UsageRollup.Resolution.DAY: datetime.timedelta(days=1),
}


def usage_rollup(*, resolution: str, start: datetime.datetime, end: datetime.datetime) -> int:
    """(Re)compute the `resolution` averages of every bucket that starts in [start, end) from the
    raw samples, in one grouped query and one upsert. Idempotent: a bucket still filling is simply
    computed again later. Returns the number of rollup rows written."""
    resolution = UsageRollup.Resolution(resolution)
    trunc = _TRUNC[resolution]("time", tzinfo=datetime.UTC)
    start = _bucket_start(start, resolution)
    # Rows of the grouped averages; their avg_* keys come from `**` (the Django plugin cannot name them).
    grouped: Iterable[Mapping[str, Any]] = (
        UsageSample.objects.filter(time__gte=start, time__lt=end + _BUCKET[resolution])
        .annotate(bucket=trunc)
        .filter(bucket__gte=start, bucket__lt=end)
        .values("tenant_id", "cluster_id", "partition", "bucket")
        .annotate(count=Count("id"), **{f"avg_{name}": Avg(name) for name in USAGE_METRICS})
        .order_by()
    )
    rows = [
        UsageRollup(
            resolution=resolution,
            tenant_id=group["tenant_id"],
            cluster_id=group["cluster_id"],
            partition=group["partition"],
            time=group["bucket"],
            samples=group["count"],
            **{name: group[f"avg_{name}"] for name in USAGE_METRICS},
        )
        for group in grouped
    ]
    UsageRollup.objects.bulk_create(
        rows,
        batch_size=2000,
        update_conflicts=True,
        unique_fields=["tenant", "resolution", "time", "cluster", "partition"],
        update_fields=["samples", *USAGE_METRICS],
    )
    return len(rows)


def _bucket_start(moment: datetime.datetime, resolution: str) -> datetime.datetime:
    moment = moment.astimezone(datetime.UTC).replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if resolution == UsageRollup.Resolution.DAY else moment


def usage_prune(*, now: datetime.datetime) -> dict[str, int]:
    """Drop raw samples, hourly and daily rollups older than their retention (settings
    CANOPY_USAGE_RAW_DAYS, _HOURLY_DAYS, _DAILY_DAYS)."""
    keep = {
        "raw": settings.CANOPY_USAGE_RAW_DAYS,
        "hour": settings.CANOPY_USAGE_HOURLY_DAYS,
        "day": settings.CANOPY_USAGE_DAILY_DAYS,
    }
    deleted = {
        "raw": UsageSample.objects.filter(time__lt=now - datetime.timedelta(days=keep["raw"])).delete()[0]
    }
    for resolution in (UsageRollup.Resolution.HOUR, UsageRollup.Resolution.DAY):
        cutoff = now - datetime.timedelta(days=keep[resolution])
        deleted[resolution] = UsageRollup.objects.filter(resolution=resolution, time__lt=cutoff).delete()[0]
    return deleted


# ---------------------------------------------------------------------------------------------
# Collection: which clusters are due, one pass over one cluster, the beat's rollups.


def _interval(row: UsageCollection) -> int:
    return row.interval_seconds or settings.CANOPY_USAGE_INTERVAL_SECONDS


def usage_interval_set(
    *, acting_user: AnyUser, cluster: Cluster, interval_seconds: int | None
) -> UsageCollection:
    """Platform admins: collect `cluster` every `interval_seconds` (None: the default,
    CANOPY_USAGE_INTERVAL_SECONDS). One audit row."""
    require_platform_admin(acting_user)
    if interval_seconds is not None and not MIN_INTERVAL_SECONDS <= interval_seconds <= MAX_INTERVAL_SECONDS:
        raise ValidationError(
            {
                "interval_seconds": [
                    f"Between {MIN_INTERVAL_SECONDS} s and {MAX_INTERVAL_SECONDS} s (a day), or empty for the "
                    f"default ({settings.CANOPY_USAGE_INTERVAL_SECONDS} s)."
                ]
            }
        )
    with transaction.atomic():
        row, _ = UsageCollection.objects.select_for_update().get_or_create(cluster=cluster)
        before = row.interval_seconds
        row.interval_seconds = interval_seconds
        row.save(update_fields=["interval_seconds", "updated_at"])
        audit(
            acting_user=acting_user,
            action="USAGE_INTERVAL_UPDATED",
            target=cluster,
            tenant=None,
            before={"interval_seconds": before},
            after={"interval_seconds": interval_seconds},
        )
    return row


@dataclass(frozen=True)
class PriceSpec:
    """One price: a unit of `resource` (a PoolPrice.Resource) on `pool` costs `price`."""

    pool: ResourcePool
    resource: str
    price: Decimal


CURRENCY = re.compile(r"[A-Z]{3}")
MAX_PRICE = Decimal("9999999999.9999")


def _price_label(pool: ResourcePool, resource: str) -> str:
    return f"{pool.cluster.name}/{pool.name} {resource}"


def pool_prices_set(*, acting_user: AnyUser, currency: str, prices: list[PriceSpec]) -> list[PoolPrice]:
    """Platform admins: the showback's prices, all of them at once in one currency (a price not
    given is removed; an empty list removes them all and with them the cost columns). Refused with
    field errors: a currency that is not three capital letters, a negative or too large price, a
    price twice, or one that would never apply (`showback.price_refusal`). One audit row."""
    require_platform_admin(acting_user)
    currency = currency.strip().upper()
    errors: list[str] = []
    if prices and not CURRENCY.fullmatch(currency):
        raise ValidationError({"currency": ["Three capital letters, an ISO 4217 code such as EUR."]})
    seen: set[tuple[int, str]] = set()
    for spec in prices:
        label = _price_label(spec.pool, spec.resource)
        refusal = showback.price_refusal(
            yarn=spec.pool.cluster.kind == Cluster.Kind.YARN,
            default_pool=spec.pool.name == ResourcePool.DEFAULT_NAME,
            resource=spec.resource,
        )
        if refusal:
            errors.append(f"{label}: {refusal}")
        if not spec.price.is_finite() or not Decimal(0) <= spec.price <= MAX_PRICE:
            errors.append(f"{label}: a price from 0 to {MAX_PRICE}.")
        elif spec.price != spec.price.quantize(Decimal("0.0001")):
            errors.append(f"{label}: at most 4 decimals.")
        if (spec.pool.pk, spec.resource) in seen:
            errors.append(f"{label}: given twice.")
        seen.add((spec.pool.pk, spec.resource))
    if errors:
        raise ValidationError({"prices": errors})
    with transaction.atomic():
        existing = list(PoolPrice.objects.select_for_update().select_related("pool__cluster"))
        before = {_price_label(p.pool, p.resource): f"{p.price} {p.currency}" for p in existing}
        PoolPrice.objects.all().delete()
        rows = PoolPrice.objects.bulk_create(
            [PoolPrice(pool=s.pool, resource=s.resource, price=s.price, currency=currency) for s in prices]
        )
        after = {_price_label(s.pool, s.resource): f"{s.price} {currency}" for s in prices}
        audit(
            acting_user=acting_user,
            action="POOL_PRICES_UPDATED",
            target=None,
            tenant=None,
            before={"prices": before},
            after={"prices": after},
        )
    return rows


def collectable_clusters() -> list[int]:
    """Clusters Canopy can read: a Kubernetes connection that is not export-only, or a Hadoop
    connection with the API mode."""
    kubernetes = Q(kubernetes_connection__isnull=False) & ~Q(
        kubernetes_connection__mode=KubernetesConnection.Mode.EXPORT
    )
    hadoop = Q(hadoop_connection__mode=HadoopConnection.Mode.API)
    return list(Cluster.objects.filter(kubernetes | hadoop).order_by("pk").values_list("pk", flat=True))


def usage_clusters_claim(*, now: datetime.datetime | None = None) -> list[int]:
    """Beat: the clusters whose interval has passed since their last pass started, each claimed by
    moving its `last_attempt_at` (a conditional UPDATE: of two beats, one wins)."""
    now = now or timezone.now()
    ids = collectable_clusters()
    UsageCollection.objects.bulk_create([UsageCollection(cluster_id=pk) for pk in ids], ignore_conflicts=True)
    claimed = []
    for row in UsageCollection.objects.filter(cluster_id__in=ids):
        last = row.last_attempt_at
        if last is not None and last + datetime.timedelta(seconds=_interval(row)) - DUE_SLACK > now:
            continue
        unchanged = Q(last_attempt_at__isnull=True) if last is None else Q(last_attempt_at=last)
        if UsageCollection.objects.filter(unchanged, pk=row.pk).update(last_attempt_at=now):
            claimed.append(row.pk)
    return claimed


def _collector(cluster: Cluster, interval: int) -> Collector | None:
    connection: KubernetesConnection | HadoopConnection | None
    if cluster.kind == Cluster.Kind.YARN:
        connection = HadoopConnection.objects.filter(cluster=cluster).first()
    else:
        connection = KubernetesConnection.objects.filter(cluster=cluster).first()
    if connection is None:
        return None
    backend = backend_for(cluster, connection)
    if isinstance(backend, KubernetesBackend):
        return KubernetesCollector(backend)
    if isinstance(backend, YarnBackend):
        # HDFS is read one directory at a call: stop at half the interval so passes never pile up.
        return HadoopCollector(backend, hdfs_budget_seconds=interval / 2)
    return None  # export-only: nothing to read


def _finish(cluster: Cluster, outcome: UsageOutcome, when: datetime.datetime, **values: Any) -> UsageOutcome:
    # An UPDATE, not save(): a platform admin may change the interval meanwhile.
    UsageCollection.objects.filter(cluster=cluster).update(
        state=outcome.state,
        message=outcome.message[:4000],
        duration_seconds=outcome.seconds,
        calls=outcome.calls,
        updated_at=timezone.now(),
        **values,
    )
    return outcome


def usage_collect(*, cluster_id: int, now: datetime.datetime | None = None) -> UsageOutcome:
    """One collection pass over one cluster, stored as the samples of time `now` (default: when
    it starts), with the cluster's workloads replacing the last pass's. Never raises for the
    cluster's faults: they are recorded on its `UsageCollection` row (state failed, message)."""
    cluster = Cluster.objects.filter(pk=cluster_id).first()
    if cluster is None:
        return UsageOutcome(cluster=str(cluster_id), state="gone")
    row, _ = UsageCollection.objects.get_or_create(cluster=cluster)
    when = now or timezone.now()
    started = time.monotonic()
    collector = _collector(cluster, _interval(row))
    if collector is None:
        outcome = UsageOutcome(
            cluster.name, UsageCollection.State.FAILED, "No connection Canopy can read from."
        )
        return _finish(cluster, outcome, when, last_attempt_at=when)
    targets = selectors.usage_targets(cluster)
    try:
        with collector:
            collection = collector.collect(targets)
    except BackendError as error:
        calls = getattr(collector, "calls", 0)
        outcome = UsageOutcome(
            cluster.name,
            UsageCollection.State.FAILED,
            error.message,
            calls=calls,
            seconds=time.monotonic() - started,
        )
        logger.warning("Usage collection on %s failed: %s", cluster.name, error.message)
        return _finish(cluster, outcome, when, last_attempt_at=when)
    except Exception as error:  # a bug or an answer we did not expect: visible, and the others go on
        logger.exception("Usage collection on %s failed", cluster.name)
        outcome = UsageOutcome(
            cluster.name,
            UsageCollection.State.FAILED,
            f"Unexpected error: {error!r}",
            seconds=time.monotonic() - started,
        )
        return _finish(cluster, outcome, when, last_attempt_at=when)
    samples = usage_record(
        cluster=cluster,
        time=when,
        readings=collection.readings,
        workloads=collection.workloads,
        flavors=collection.flavors,
    )
    outcome = UsageOutcome(
        cluster.name,
        UsageCollection.State.PARTIAL if collection.notes else UsageCollection.State.OK,
        " ".join([*collection.notes, *collection.remarks]),
        samples=samples,
        workloads=len(collection.workloads),
        calls=collection.calls,
        seconds=time.monotonic() - started,
    )
    return _finish(
        cluster,
        outcome,
        when,
        last_attempt_at=when,
        last_collected_at=when,
        samples=samples,
        workloads=len(collection.workloads),
        details=collection.details,
    )


def usage_rollup_recent(*, now: datetime.datetime | None = None) -> dict[str, Any]:
    """Beat: hourly averages of the last two hours (the current hour is computed again until it
    is over), yesterday's daily averages once (after a short grace into today), then retention."""
    now = now or timezone.now()
    hourly = usage_rollup(
        resolution=UsageRollup.Resolution.HOUR, start=now - datetime.timedelta(hours=2), end=now
    )
    today = now.astimezone(datetime.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday = today - datetime.timedelta(days=1)
    daily = 0
    if (
        now >= today + DAILY_GRACE
        and not UsageRollup.objects.filter(resolution=UsageRollup.Resolution.DAY, time=yesterday).exists()
    ):
        daily = usage_rollup(resolution=UsageRollup.Resolution.DAY, start=yesterday, end=today)
    pruned = usage_prune(now=now)
    return {"hourly": hourly, "daily": daily, "pruned": pruned}
