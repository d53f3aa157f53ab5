"""A month's showback with 10,000 tenants (issue 19): `bash bench/run.sh showback`.

Builds the 10,000-tenant world of `bench/scale.py` (in a child process), then adds the hourly
rollups of last month, loaded as `bench/usage_dashboard.py` loads them (one `INSERT ... SELECT`,
indexes rebuilt): every hour of the month for every tenant on every cluster partition it has an
allocation on (two Kubernetes clusters and a YARN partition each). Prices on the pools give the
cost columns.

Then it times, as `bench/scale.py` does (Django's test client in-process, medians, exact query
counts, the same statements run bare for the ratio), the month's showback of a level-1 subtree
(org03, about 500 tenants below it) as a platform admin: the page, the API, the CSV and the PDF;
the same page as the tenant admin of a level-2 one; and the platform admin's page without a
tenant (the 20 level-1 tenants). Target: at most 500 ms for a level-1 subtree's month, the same
number of queries whatever the subtree. Writes a section of docs/performance.md.
"""

from __future__ import annotations

import datetime
import os
import subprocess  # nosec B404 # runs only bench.scale's own build step, a fixed argument list
import sys
import time
from decimal import Decimal

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.test import Client  # noqa: E402
from knox.models import AuthToken  # noqa: E402

from bench import scale  # noqa: E402
from bench.report import section_write  # noqa: E402
from bench.usage_dashboard import bulk_load, insert_sql, subtree_size, table_size  # noqa: E402
from tenants.models import Cluster, ResourcePool, Tenant  # noqa: E402
from usage import services  # noqa: E402
from usage.models import UsageRollup  # noqa: E402

SECTION = "## Showback: a month with 10,000 tenants"
TODAY = datetime.datetime.now(datetime.UTC).date()
MONTH_END = datetime.datetime(TODAY.year, TODAY.month, 1, tzinfo=datetime.UTC)
MONTH_START = (MONTH_END - datetime.timedelta(days=1)).replace(day=1)
MONTH = f"{MONTH_START:%Y-%m}"
LEVEL_1 = "org03"
TARGET_MS = 500

User = get_user_model()


def add_month() -> int:
    return bulk_load(
        UsageRollup,
        insert_sql(
            UsageRollup,
            "",
            "%s::timestamptz, %s::timestamptz - interval '1 hour', interval '1 hour'",
            {"resolution": "'hour'", "samples": "60"},
        ),
        [MONTH_START, MONTH_END],
    )


def add_prices() -> None:
    admin = User.objects.get(username=scale.ADMIN)
    specs = []
    for pool in ResourcePool.objects.select_related("cluster"):
        if pool.cluster.kind == Cluster.Kind.KUBERNETES and pool.name == ResourcePool.DEFAULT_NAME:
            specs += [
                services.PriceSpec(pool, "gpu", Decimal("2.5")),
                services.PriceSpec(pool, "cpu", Decimal("0.04")),
                services.PriceSpec(pool, "memory", Decimal("0.005")),
            ]
        elif pool.cluster.kind == Cluster.Kind.YARN:
            specs += [
                services.PriceSpec(pool, "cpu", Decimal("0.03")),
                services.PriceSpec(pool, "memory", Decimal("0.004")),
            ]
    services.pool_prices_set(acting_user=admin, currency="EUR", prices=specs)


def measure_all() -> list[scale.Figure]:
    level_1 = Tenant.objects.get(name_path=LEVEL_1)
    administered = Tenant.objects.get(name_path=scale.ADMINISTERED)
    figures = []
    for who, username, tenant, all_parts in (
        ("platform admin", scale.ADMIN, level_1, True),
        ("tenant admin", scale.TENANT_ADMIN, administered, False),
    ):
        person = User.objects.get(username=username)
        browser = Client(HTTP_HOST="localhost")
        browser.force_login(person)
        _, key = AuthToken.objects.create(user=person)
        api = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Token {key}")
        where = f"level {tenant.depth}, {tenant.name_path}"
        query = f"month={MONTH}&tenant={tenant.pk}"
        figures.append(
            scale.measure(
                f"Showback page, a month ({where})",
                who,
                lambda b=browser, q=query: b.get(f"/showback/?{q}"),
                target_ms=TARGET_MS,
            )
        )
        figures.append(
            scale.measure(
                f"Showback API, a month ({where})",
                who,
                lambda a=api, q=query: a.get(f"/api/v1/showback/?{q}"),
                target_ms=TARGET_MS,
            )
        )
        if all_parts:
            figures += [
                scale.measure(
                    f"Showback CSV, a month ({where})",
                    who,
                    lambda b=browser, q=query: b.get(f"/showback.csv?{q}"),
                    target_ms=TARGET_MS,
                ),
                scale.measure(
                    f"Showback PDF, a month ({where})",
                    who,
                    lambda b=browser, q=query: b.get(f"/showback.pdf?{q}"),
                    target_ms=TARGET_MS,
                ),
                scale.measure(
                    "Showback page, a month (no tenant: the 20 level-1 tenants)",
                    who,
                    lambda b=browser: b.get(f"/showback/?month={MONTH}"),
                    target_ms=TARGET_MS,
                ),
            ]
    return figures


def write_report(figures: list[scale.Figure], build_seconds: float, load: tuple[float, float]) -> None:
    rows, megabytes = table_size(UsageRollup)
    lines = [
        SECTION,
        "",
        f"Measured {datetime.date.today():%Y-%m-%d} on {scale.machine()}; `bash bench/run.sh showback`. "
        f"Medians of {scale.RUNS} runs after {scale.WARM_UPS} warm-ups, measured as in the section on the "
        "web above (server time through Django's test client in-process; bare SQL is the same statements "
        f"run straight through a cursor). Load average {load[0]:.1f} when measuring started, "
        f"{load[1]:.1f} when it ended.",
        "",
        f"Data: the web benchmark's world: {scale.data_set()}; plus {rows:,} hourly rollups, every hour of "
        f"{MONTH} for every tenant partition (every tenant on its two Kubernetes clusters and its YARN "
        f"partition), {megabytes:,.0f} MB with indexes; prices on every Kubernetes cluster's default pool "
        f"and every YARN pool. Built in {build_seconds:.0f} s. {LEVEL_1} has {subtree_size(LEVEL_1):,} "
        f"tenants below it, {scale.ADMINISTERED} {subtree_size(scale.ADMINISTERED):,}.",
        "",
        *scale.figure_table(figures),
        "",
        f"Target (issue 19): at most {TARGET_MS} ms for a level-1 subtree's month, the number of queries "
        "constant in the number of tenants. Figures are stored as subtree totals, so the month of a "
        "tenant and of each of its sub-tenants is one grouped index range scan per row (the tenant's by "
        "day, its children's by tenant), summed in integers by PostgreSQL: the work grows with the "
        "children shown, never with the tenants below them. `tests/usage/test_showback.py` pins the "
        "query count for any number of sub-tenants.",
        "",
        "Response sizes: "
        + "; ".join(
            f"{f.what.split(' (')[0]} as {f.who}, {f.response_bytes / 1024:,.0f} KiB" for f in figures
        )
        + ".",
        "",
    ]
    scale.log(f"written to {section_write(SECTION, lines)}")


def main() -> None:
    started = time.perf_counter()
    scale.log("building the 10,000-tenant world")
    subprocess.run([sys.executable, "-m", "bench.scale", "build"], check=True, cwd=scale.ROOT)  # nosec B603 # fixed arguments, no input
    scale.log(f"adding the hourly rollups of {MONTH}")
    loaded = add_month()
    scale.log(f"  {loaded:,} hourly rollups")
    add_prices()
    build_seconds = time.perf_counter() - started
    os.sync()
    load_before = os.getloadavg()[0]
    figures = measure_all()
    write_report(figures, build_seconds, (load_before, os.getloadavg()[0]))


if __name__ == "__main__":
    main()
