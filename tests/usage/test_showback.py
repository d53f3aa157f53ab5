"""Showback (issue 19): a month's GPU-hours, core-hours, memory GiB-hours and HDFS GiB-days,
allocated and used, reconciled exactly with the rollup rows; who reads which tenants; prices."""

from __future__ import annotations

import datetime
import math
import random
from collections import defaultdict
from decimal import Decimal
from fractions import Fraction

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext

from tenants import services as tenant_services
from tenants.models import AuditEvent, Cluster, ResourcePool
from usage import selectors as usage_selectors
from usage import services as usage_services
from usage import showback
from usage.measures import UsageReading
from usage.models import PoolPrice, UsageRollup

pytestmark = pytest.mark.django_db

NOVEMBER = datetime.date(2026, 11, 1)
T0 = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)
AFTER = datetime.datetime(2026, 12, 5, 12, 30, tzinfo=datetime.UTC)  # November is over
GI = 2**30

# Units of one ticks x hours, written out here as the issue defines them (not read from showback).
UNITS = {
    "gpu": ("gpu_used", "gpu_allocated", 10**6, 10**6),  # metric, ticks per value, ticks x hours per unit
    "cpu": ("cpu_used_millicores", "cpu_allocated_millicores", 1, 1000),
    "memory": ("memory_used_bytes", "memory_allocated_bytes", 1, GI),
    "hdfs": ("hdfs_space_used_bytes", "hdfs_space_quota_bytes", 1, 24 * GI),
}


def hadoop_cluster(admin):
    return tenant_services.cluster_create(acting_user=admin, name="bigdata", kind=Cluster.Kind.YARN)


def fill_month(world, hadoop, rng: random.Random) -> None:
    """Irregular passes over November's first three days (and a day either side of the month):
    Kubernetes GPUs, CPU and memory of each namespace, HDFS space on the Hadoop cluster, with gaps,
    then the hourly and daily rollups."""
    start = T0 - datetime.timedelta(days=1)
    for minute in range(0, 5 * 24 * 60, 7):
        if rng.random() < 0.3:
            continue  # a pass missed
        moment = start + datetime.timedelta(minutes=minute + rng.randrange(3))
        readings = []
        for tenant, gpus in ((world.dev1, 1), (world.dev2, 2), (world.department1, 3)):
            own = tenant is not world.department1 or rng.random() < 0.5
            readings.append(
                UsageReading(
                    tenant.pk,
                    {
                        "gpu_used": rng.randrange(gpus + 1) * rng.random() if own else 0,
                        "gpu_allocated": gpus,
                        "cpu_used_millicores": rng.uniform(0, 8000),
                        "cpu_allocated_millicores": 8000 if tenant is world.dev2 else None,
                        "memory_used_bytes": float(rng.randrange(60 * GI)),
                        "memory_allocated_bytes": 60 * GI,
                    },
                )
            )
        usage_services.usage_record(cluster=world.cluster, time=moment, readings=readings)
        usage_services.usage_record(
            cluster=hadoop,
            time=moment,
            readings=[
                UsageReading(
                    tenant.pk,
                    {"hdfs_space_used_bytes": float(rng.randrange(2**44)), "hdfs_space_quota_bytes": 2**44},
                )
                for tenant in (world.dev1, world.dev2)
            ],
        )
    end = start + datetime.timedelta(days=6)
    usage_services.usage_rollup(resolution="hour", start=start, end=end)
    usage_services.usage_rollup(resolution="day", start=start, end=end)


def expected_from_rollups(resolution: str, hours: int) -> dict:
    """tenant id -> (day or None for the month) -> resource -> (used, allocated) as exact fractions,
    from the rollup rows read one by one: each bucket's average in whole ticks (rounded half up) x
    its hours, over November."""
    sums: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: [None, None])))
    for row in UsageRollup.objects.filter(resolution=resolution).order_by("?"):
        if row.time.date().replace(day=1) != NOVEMBER:
            continue
        for key, (used, allocated, ticks, per_unit) in UNITS.items():
            for index, metric in enumerate((used, allocated)):
                value = getattr(row, metric)
                if value is None:
                    continue
                amount = Fraction(math.floor(value * ticks + 0.5) * hours, per_unit)
                for period in (row.time.date(), None):
                    cell = sums[row.tenant_id][period][key]
                    cell[index] = (cell[index] or 0) + amount
    return sums


def shown(value: Fraction | None, places: int = 3) -> Decimal | None:
    if value is None:
        return None
    return Decimal(round(value * 10**places)).scaleb(-places)


def figures_of(cells: dict) -> dict:
    result = {}
    for key in UNITS:
        used, allocated = cells.get(key, [None, None])
        result[f"{key}_used"], result[f"{key}_allocated"] = shown(used), shown(allocated)
    return result


def without_costs(figures: dict) -> dict:
    return {k: v for k, v in figures.items() if not k.startswith("cost")}


def window(now=AFTER, hourly_days=90):
    return showback.month_window(NOVEMBER, now, hourly_days)


@pytest.mark.parametrize(
    "resolution, hours, now, hourly_days",
    [
        ("hour", 1, AFTER, 90),  # November's hourly rollups are kept
        ("day", 24, datetime.datetime(2027, 3, 1, tzinfo=datetime.UTC), 30),  # only its daily ones count
    ],
)
def test_a_months_figures_reconcile_exactly_with_the_rollup_rows(
    k8s_world, resolution, hours, now, hourly_days
):
    w = k8s_world
    fill_month(w, hadoop_cluster(w.admin), random.Random(19))
    expected = expected_from_rollups(resolution, hours)
    report = usage_selectors.showback_month(
        user=w.admin, tenant_id=w.department1.pk, window=window(now, hourly_days)
    )
    assert report.window.complete and len(report.window.days) == 30
    # The subtree's month, each sub-tenant's, and per day: exactly the rollups' sums, rounded once.
    assert without_costs(showback.line_figures(report.total)) == figures_of(expected[w.department1.pk][None])
    lines = {line.tenant_id: line for line in report.lines if line.kind == "subtree"}
    assert set(lines) == {w.dev1.pk, w.dev2.pk}
    for tenant in (w.dev1, w.dev2):
        assert without_costs(showback.line_figures(lines[tenant.pk])) == figures_of(expected[tenant.pk][None])
    days = dict(report.day_lines())
    assert [d.day for d in days] == list(range(1, 31))
    for day, line in days.items():
        assert without_costs(showback.line_figures(line)) == figures_of(expected[w.department1.pk][day])
    assert showback.line_figures(days[datetime.date(2026, 11, 10)])["gpu_used"] is None  # no figures
    # What department1 used itself: its subtree less its sub-tenants'.
    itself = report.lines[0]
    assert itself.kind == "itself"
    for key in UNITS:
        parent = expected[w.department1.pk][None][key][0]
        children = sum(expected[t.pk][None][key][0] or 0 for t in (w.dev1, w.dev2))
        assert itself.amounts[key].used == (parent - children if parent is not None else None)
    # Figures were there: the check above compared numbers, not empty cells.
    assert report.total.amounts["gpu"].used > 0 and report.total.amounts["hdfs"].used > 0
    assert showback.line_figures(report.total)["cost_used"] is None  # no prices, no cost


def test_prices_give_exact_costs_per_pool(k8s_world):
    w = k8s_world
    hadoop = hadoop_cluster(w.admin)
    fill_month(w, hadoop, random.Random(5))
    hadoop_default = ResourcePool.objects.get(cluster=hadoop, name="default")
    usage_services.pool_prices_set(
        acting_user=w.admin,
        currency="eur",
        prices=[
            usage_services.PriceSpec(w.pool, "gpu", Decimal("2.5")),
            usage_services.PriceSpec(w.pool, "memory", Decimal("0.0013")),
            usage_services.PriceSpec(hadoop_default, "hdfs", Decimal("0.0007")),
        ],
    )
    report = usage_selectors.showback_month(user=w.admin, tenant_id=w.dev2.pk, window=window())
    expected = expected_from_rollups("hour", 1)[w.dev2.pk][None]
    cost = expected["gpu"][0] * Fraction("2.5") + expected["memory"][0] * Fraction("0.0013")
    cost += expected["hdfs"][0] * Fraction("0.0007")
    allocated = expected["gpu"][1] * Fraction("2.5") + expected["memory"][1] * Fraction("0.0013")
    allocated += expected["hdfs"][1] * Fraction("0.0007")
    figures = showback.line_figures(report.total)
    assert (figures["cost_used"], figures["cost_allocated"]) == (shown(cost, 2), shown(allocated, 2))
    assert report.prices.currency == "EUR"
    event = AuditEvent.objects.get(action="POOL_PRICES_UPDATED")
    assert event.before == {"prices": {}}
    assert event.after["prices"]["gpu-cluster/default gpu"] == "2.5 EUR"


def test_prices_that_would_never_apply_are_refused_and_nothing_changes(k8s_world):
    w = k8s_world
    other = tenant_services.pool_create(acting_user=w.admin, cluster=w.cluster, name="a100", gpu_capacity=0)
    hadoop = hadoop_cluster(w.admin)
    highmem = tenant_services.pool_create(
        acting_user=w.admin, cluster=hadoop, name="highmem", node_selector="highmem"
    )
    cases = [
        ("EUR", [usage_services.PriceSpec(other, "gpu", Decimal(1))], "price the cluster's default pool"),
        ("EUR", [usage_services.PriceSpec(w.pool, "hdfs", Decimal(1))], "HDFS is a Hadoop cluster's"),
        ("EUR", [usage_services.PriceSpec(highmem, "gpu", Decimal(1))], "count no GPUs"),
        ("EUR", [usage_services.PriceSpec(highmem, "hdfs", Decimal(1))], "price its default pool"),
        ("EUR", [usage_services.PriceSpec(w.pool, "gpu", Decimal(-1))], "a price from 0"),
        ("EUR", [usage_services.PriceSpec(w.pool, "gpu", Decimal("0.00001"))], "at most 4 decimals"),
        ("EUR", [usage_services.PriceSpec(w.pool, "gpu", Decimal(1))] * 2, "given twice"),
        ("E1", [usage_services.PriceSpec(w.pool, "gpu", Decimal(1))], "Three capital letters"),
    ]
    for currency, prices, message in cases:
        with pytest.raises(ValidationError) as refused:
            usage_services.pool_prices_set(acting_user=w.admin, currency=currency, prices=prices)
        assert message in str(refused.value.message_dict)
    with pytest.raises(PermissionDenied):
        usage_services.pool_prices_set(
            acting_user=w.people.dept_admin,
            currency="EUR",
            prices=[usage_services.PriceSpec(w.pool, "gpu", Decimal(1))],
        )
    assert not PoolPrice.objects.exists()
    assert not AuditEvent.objects.filter(action="POOL_PRICES_UPDATED").exists()


def test_who_reads_which_tenants_showback(k8s_world):
    w = k8s_world
    fill_month(w, hadoop_cluster(w.admin), random.Random(3))
    # A member reads their tenant's subtree total, without sub-tenant rows; nothing else exists.
    mine = usage_selectors.showback_month(user=w.bob, tenant_id=w.dev1.pk, window=window())
    assert mine.lines == [] and mine.total.amounts["gpu"].used > 0
    for user, tenant in (
        (w.bob, w.dev2),
        (w.bob, w.department1),
        (w.people.dev1_viewer, w.dev1),
        (w.people.outsider, w.dev1),
        (w.people.dev2_admin, w.dev1),
    ):
        with pytest.raises(Http404):
            usage_selectors.showback_month(user=user, tenant_id=tenant.pk, window=window())
    # A tenant admin reads the sub-tenants and what the tenant used itself.
    department = usage_selectors.showback_month(
        user=w.people.dept_admin, tenant_id=w.department1.pk, window=window()
    )
    assert [(line.kind, line.name_path) for line in department.lines] == [
        ("itself", "department1"),
        ("subtree", "department1/dev1"),
        ("subtree", "department1/dev2"),
    ]
    # Without a tenant: the tenants one holds a role on (platform admins: level 1), totalled once.
    assert [
        line.name_path
        for line in usage_selectors.showback_month(user=w.bob, tenant_id=None, window=window()).lines
    ] == ["department1/dev1"]
    assert [
        line.name_path
        for line in usage_selectors.showback_month(
            user=w.people.dev1_viewer, tenant_id=None, window=window()
        ).lines
    ] == []
    tenant_services.membership_grant(
        acting_user=w.admin, tenant=w.dev2, user=w.people.dept_admin, role="member"
    )
    top = usage_selectors.showback_month(user=w.people.dept_admin, tenant_id=None, window=window())
    assert [line.name_path for line in top.lines] == ["department1"]
    assert top.total.tally == department.total.tally
    everything = usage_selectors.showback_month(user=w.admin, tenant_id=None, window=window())
    assert "department1" in [line.name_path for line in everything.lines]
    assert all("/" not in line.name_path for line in everything.lines)


def test_a_showback_costs_the_same_queries_for_any_number_of_sub_tenants(k8s_world):
    w = k8s_world
    fill_month(w, hadoop_cluster(w.admin), random.Random(11))
    usage_services.pool_prices_set(
        acting_user=w.admin, currency="EUR", prices=[usage_services.PriceSpec(w.pool, "gpu", Decimal(1))]
    )
    counts = []
    for extra in (0, 6):
        for number in range(extra):
            tenant_services.tenant_create(
                acting_user=w.admin, parent=w.department1, name=f"more{len(counts)}-{number}", allocations=[]
            )
        for user in (w.admin, w.people.dept_admin):
            with CaptureQueriesContext(connection) as captured:
                report = usage_selectors.showback_month(
                    user=user, tenant_id=w.department1.pk, window=window()
                )
            counts.append((user.username, len(captured), len(report.lines)))
    assert [c[2] for c in counts] == [3, 3, 9, 9]
    assert [c[1] for c in counts[:2]] == [c[1] for c in counts[2:]]
    assert counts[0][1] <= 6


def test_months_are_read_as_people_write_them():
    assert showback.month_parse("2026-11") == NOVEMBER
    for bad in ("2026-13", "november", "2026-1-1", "", "1999-12"):
        with pytest.raises(ValueError):
            showback.month_parse(bad)
    with pytest.raises(ValueError):
        showback.month_window(datetime.date(2027, 1, 1), AFTER, 90)  # not begun
    running = showback.month_window(datetime.date(2026, 12, 1), AFTER, 90)
    assert running.end == datetime.datetime(2026, 12, 5, 12, tzinfo=datetime.UTC) and not running.complete
    assert len(running.days) == 5


# ---------------------------------------------------------------------------------------------
# The page, its CSV and PDF, the API


def test_the_page_csv_pdf_and_api_show_the_same_figures(k8s_world, client):
    import csv
    import io

    from pypdf import PdfReader

    from tests.tenants.builders import TokenClient

    w = k8s_world
    fill_month(w, hadoop_cluster(w.admin), random.Random(23))
    usage_services.pool_prices_set(
        acting_user=w.admin, currency="EUR", prices=[usage_services.PriceSpec(w.pool, "gpu", Decimal("2.5"))]
    )
    expected = expected_from_rollups("hour", 1)
    total = figures_of(expected[w.department1.pk][None])
    dev1 = figures_of(expected[w.dev1.pk][None])
    cost = shown(expected[w.department1.pk][None]["gpu"][0] * Fraction("2.5"), 2)
    query = {"month": "2026-11", "tenant": w.department1.pk}
    client.force_login(w.people.dept_admin)
    page = client.get("/showback/", query)
    assert page.status_code == 200
    html = page.content.decode()
    for value in (total["gpu_used"], total["cpu_used"], total["memory_allocated"], dev1["hdfs_used"], cost):
        assert f">{value}<" in html
    assert 'data-showback-chart="showback-chart-gpu"' in html
    rows = list(csv.reader(io.StringIO(client.get("/showback.csv", query).content.decode())))
    assert rows[0][:4] == ["month", "day", "tenant", "row"]
    month_rows = [row for row in rows[1:] if row[1] == "" and row[2] == "department1/dev1"]
    hdfs_column = rows[0].index("HDFS space GiB-days used")
    assert [row[hdfs_column] for row in month_rows if row[4] == "bigdata"] == [str(dev1["hdfs_used"])]
    days = [row for row in rows[1:] if row[1]]
    assert len({row[1] for row in days}) == 30  # every day, those without figures too
    assert len([row for row in days if row[4]]) == 4 * 2  # November 1 to 4 on both clusters
    pdf = client.get("/showback.pdf", query)
    assert pdf["Content-Type"] == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    for value in (total["gpu_used"], total["gpu_allocated"], dev1["memory_used"], cost):
        assert str(value) in text
    assert "Showback 2026-11: department1" in text
    api = TokenClient().as_user(w.people.dept_admin).get("/api/v1/showback/", query)
    assert api.status_code == 200
    body = api.json()
    assert body["total"]["gpu_used"] == str(total["gpu_used"]) and body["total"]["cost_used"] == str(cost)
    assert [row["tenant_path"] for row in body["rows"]] == [
        "department1",
        "department1/dev1",
        "department1/dev2",
    ]
    assert len(body["days"]) == 30 and body["currency"] == "EUR" and body["complete"] is True
    assert sum(Decimal(scope["cost_used"]) for scope in body["total"]["scopes"]) == cost


def test_bad_months_are_field_errors_and_hidden_tenants_are_404s(k8s_world, client):
    from tests.tenants.builders import TokenClient

    w = k8s_world
    bob = TokenClient().as_user(w.bob)
    for month in ("2026-13", "soon", "2999-01"):
        answer = bob.get("/api/v1/showback/", {"month": month})
        assert answer.status_code == 400 and "month" in answer.json()
    assert bob.get("/api/v1/showback/", {"tenant": "x"}).status_code == 400
    assert bob.get("/api/v1/showback/", {"tenant": w.dev1.pk}).status_code == 200
    for tenant in (w.dev2, w.department1):
        assert bob.get("/api/v1/showback/", {"tenant": tenant.pk}).status_code == 404
    assert bob.get("/api/v1/showback/", {"tenant": 2**63 - 1}).status_code == 404
    client.force_login(w.bob)
    assert client.get("/showback/", {"month": "2026-13"}).status_code == 400
    assert "YYYY-MM" in client.get("/showback/", {"month": "2026-13"}).content.decode()
    for path in ("/showback/", "/showback.csv", "/showback.pdf"):
        assert client.get(path, {"tenant": w.dev2.pk}).status_code == 404
        assert client.get(path, {"tenant": w.dev1.pk}).status_code == 200
    assert client.get("/showback.csv", {"month": "x"}).status_code == 400
    client.logout()
    assert client.get("/showback/").status_code == 302  # to the sign-in page
    assert TokenClient().get("/api/v1/showback/").status_code in (401, 403)


def test_only_platform_admins_set_prices_in_the_console_and_the_api(k8s_world, client):
    from tests.tenants.builders import TokenClient

    w = k8s_world
    client.force_login(w.people.dept_admin)
    assert client.get("/showback/prices/").status_code == 404
    assert (
        client.post("/showback/prices/", {"currency": "EUR", f"price_{w.pool.pk}_gpu": "3"}).status_code
        == 404
    )
    dept_admin = TokenClient().as_user(w.people.dept_admin)
    body = {"currency": "EUR", "prices": [{"pool": w.pool.pk, "resource": "gpu", "price": "3"}]}
    assert dept_admin.put("/api/v1/showback/prices/", body, format="json").status_code == 403
    assert dept_admin.get("/api/v1/showback/prices/").json() == {"currency": "", "prices": []}
    assert not PoolPrice.objects.exists()
    client.force_login(w.admin)
    assert client.get("/showback/prices/").status_code == 200
    refused = client.post("/showback/prices/", {"currency": "E", f"price_{w.pool.pk}_gpu": "3"})
    assert refused.status_code == 400 and "Three capital letters" in refused.content.decode()
    assert (
        client.post("/showback/prices/", {"currency": "EUR", f"price_{w.pool.pk}_gpu": "3"}).status_code
        == 302
    )
    assert list(PoolPrice.objects.values_list("resource", "price", "currency")) == [
        ("gpu", Decimal(3), "EUR")
    ]
    admin = TokenClient().as_user(w.admin)
    bad = admin.put(
        "/api/v1/showback/prices/",
        {"currency": "EUR", "prices": [{"pool": w.pool.pk, "resource": "hdfs", "price": "1"}]},
        format="json",
    )
    assert bad.status_code == 400 and "HDFS" in str(bad.json()["prices"])
    assert (
        admin.put(
            "/api/v1/showback/prices/",
            {**body, "prices": [{"pool": 999999, "resource": "gpu", "price": "1"}]},
            format="json",
        ).status_code
        == 400
    )
    saved = admin.put("/api/v1/showback/prices/", {"currency": "USD", "prices": []}, format="json")
    assert saved.status_code == 200 and saved.json() == {"currency": "", "prices": []}
    assert AuditEvent.objects.filter(action="POOL_PRICES_UPDATED").count() == 2
