"""The 30-day dashboard query with 1,000 tenants (issue 7): `bash bench/run.sh usage_dashboard`.

Builds 1,110 tenants (10 level-1, 100 level-2, 1,000 level-3 leaves) on one Kubernetes cluster,
30 days of hourly rollups for every tenant (every chart's figures) and one day of raw one-minute
samples for the ten level-1 tenants, then times what the Monitoring tab and the API run:

- the 30-day series of a level-1 tenant (its subtree is 111 tenants) at a one-hour step, every
  figure at once, as a platform admin and as a tenant admin (whose read goes through `restrict`);
- the 24-hour series of the same tenant at a five-minute step (raw samples);
- the bare SQL each needs (the queryset's own SQL run through a cursor), for the ratio.

Medians of 30 runs after 3 warm-ups. Writes a section of docs/performance.md (replacing an older
one), with the machine, the date and the table sizes.
"""

from __future__ import annotations

import datetime
import os
import platform
import random
import statistics
import sys
import time

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from bench.report import section_write  # noqa: E402
from tenants import selectors, services  # noqa: E402
from tenants.models import USAGE_METRICS, Cluster, Membership, Tenant, UsageRollup, UsageSample  # noqa: E402

SECTION = "## Usage: the 30-day dashboard query (1,000 tenants)"
NOW = datetime.datetime.now(datetime.UTC).replace(minute=0, second=0, microsecond=0)
RUNS = 30


def build() -> tuple[Tenant, object, object]:
    User = get_user_model()
    admin = User.objects.create_user("bench-admin", is_staff=True, is_superuser=True)
    cluster = services.cluster_create(acting_user=admin, name="bench", kind=Cluster.Kind.KUBERNETES)
    started = time.perf_counter()
    tenants: list[Tenant] = []
    for a in range(10):
        level1 = services.tenant_create(acting_user=admin, parent=None, name=f"org{a}", allocations=[])
        tenants.append(level1)
        for b in range(10):
            level2 = services.tenant_create(acting_user=admin, parent=level1, name=f"dept{b}", allocations=[])
            tenants.append(level2)
            for c in range(10):
                tenants.append(
                    services.tenant_create(acting_user=admin, parent=level2, name=f"team{c}", allocations=[])
                )
    print(f"{len(tenants)} tenants in {time.perf_counter() - started:.0f} s", flush=True)
    rng = random.Random(1)  # nosec B311 # benchmark data, not security
    started = time.perf_counter()
    hours = [NOW - datetime.timedelta(hours=h) for h in range(30 * 24, 0, -1)]
    batch: list[UsageRollup] = []
    for tenant in tenants:
        for hour in hours:
            batch.append(
                UsageRollup(
                    tenant=tenant,
                    cluster=cluster,
                    partition="",
                    time=hour,
                    resolution="hour",
                    samples=60,
                    **{name: float(rng.randint(0, 10**9)) for name in USAGE_METRICS},
                )
            )
        if len(batch) >= 20_000:
            UsageRollup.objects.bulk_create(batch, batch_size=5000)
            batch = []
    UsageRollup.objects.bulk_create(batch, batch_size=5000)
    print(f"{UsageRollup.objects.count()} hourly rows in {time.perf_counter() - started:.0f} s", flush=True)
    level1s = [t for t in tenants if t.depth == 1]
    samples = [
        UsageSample(
            tenant=tenant,
            cluster=cluster,
            time=NOW - datetime.timedelta(minutes=m),
            **{name: float(rng.randint(0, 10**9)) for name in USAGE_METRICS},
        )
        for tenant in level1s
        for m in range(24 * 60, 0, -1)
    ]
    UsageSample.objects.bulk_create(samples, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    tenant_admin = User.objects.create_user("bench-tenant-admin")
    services.membership_grant(
        acting_user=admin, tenant=level1s[3], user=tenant_admin, role=Membership.Role.ADMIN
    )
    return level1s[3], admin, tenant_admin


def median_ms(action) -> float:
    for _ in range(3):
        action()
    timings = []
    for _ in range(RUNS):
        started = time.perf_counter()
        action()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def measure(tenant: Tenant, user, query: selectors.UsageQuery) -> tuple[float, float, int, str]:
    def run() -> None:
        selectors.usage_series(user=user, tenant=tenant, query=query, now=NOW)

    with CaptureQueriesContext(connection) as captured:
        run()
    series_sql = captured.captured_queries[-1]["sql"]
    server = median_ms(run)

    def bare() -> None:
        with connection.cursor() as cursor:
            cursor.execute(series_sql)
            cursor.fetchall()

    return server, median_ms(bare), len(captured), series_sql


def table_mb(model) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size(%s)", [model._meta.db_table])
        return cursor.fetchone()[0] / 2**20


def main() -> None:
    tenant, admin, tenant_admin = build()
    month = selectors.UsageQuery(
        metrics=list(USAGE_METRICS),
        start=NOW - datetime.timedelta(days=30),
        end=NOW,
        step=datetime.timedelta(hours=1),
    )
    day = selectors.UsageQuery(
        metrics=list(USAGE_METRICS),
        start=NOW - datetime.timedelta(days=1),
        end=NOW,
        step=datetime.timedelta(minutes=5),
    )
    rows = []
    for label, user, query in (
        ("30 days, 1 h step (hourly rollups), platform admin", admin, month),
        ("30 days, 1 h step (hourly rollups), tenant admin", tenant_admin, month),
        ("24 hours, 5 min step (raw samples), tenant admin", tenant_admin, day),
    ):
        server, bare, queries, sql = measure(tenant, user, query)
        rows.append((label, server, bare, queries))
        print(f"{label}: {server:.1f} ms ({queries} queries), bare SQL {bare:.1f} ms", flush=True)
    hourly_rows = UsageRollup.objects.count()
    hourly_mb = table_mb(UsageRollup)
    lines = [
        SECTION,
        "",
        f"Measured {NOW:%Y-%m-%d} on {platform.node() or 'this machine'}: {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}, PostgreSQL on loopback (fsync off, as the tests run it), "
        f"`bash bench/run.sh usage_dashboard`. Medians of {RUNS} runs after 3 warm-ups; server time is "
        "`selectors.usage_series` end to end (the tenant read, the restricted series query, the "
        "bucketing in Python); bare SQL is the series query alone through a cursor.",
        "",
        "Data: 1,110 tenants (10 x 10 x 10 leaves), 30 days of hourly rollups for every one "
        f"({hourly_rows:,} rows, {hourly_mb:.0f} MB with indexes), one day of one-minute raw samples "
        "for the level-1 tenants. The tenant measured is a level-1 tenant with 110 descendants; every "
        f"figure ({len(USAGE_METRICS)}) at once.",
        "",
        "| Query | Server time | SQL queries | Bare SQL | Ratio |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, server, bare, queries in rows:
        lines.append(f"| {label} | {server:.1f} ms | {queries} | {bare:.1f} ms | {server / bare:.1f}x |")
    per_tenant_year = hourly_mb / 1110 / 30 * 90  # the hourly tier is kept 90 days
    lines += [
        "",
        "Target (issue 8): the 30-day dashboard query at most 150 ms. Figures are stored as subtree "
        "totals, so the cost does not depend on the subtree's size: one index range scan of "
        "(tenant, resolution, time).",
        "",
        f"Storage at 10,000 tenants, from the measured row size: the hourly tier (90 days) takes about "
        f"{per_tenant_year * 10_000 / 1024:.1f} GB; raw one-minute samples (2 days) about "
        f"{hourly_mb / hourly_rows * 2 * 1440 * 10_000 / 1024:.1f} GB; the daily tier (2 years) about "
        f"{hourly_mb / hourly_rows * 730 * 10_000 / 1024:.1f} GB.",
        "",
    ]
    print(f"written to {section_write(SECTION, lines)}")


if __name__ == "__main__":
    main()
