"""The usage pages (issue 7): the Monitoring tab and its CSV, the platform overview, and the used
figures and own jobs on the Resources tab and My access. Figures are recorded through
`services.usage_record`, as the collectors do."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tenants import services
from tenants.models import Cluster, ResourcePool
from tests.tenants.builders import GI, spec, user
from tests.tenants.test_api_permissions import person
from usage import dashboards
from usage import services as usage_services
from usage.measures import Series, UsageReading, WorkloadReading

pytestmark = pytest.mark.django_db

T0 = datetime.datetime(2026, 11, 1, 10, 0, tzinfo=datetime.UTC)
MINUTE = datetime.timedelta(minutes=1)


def record(world, time, dev1_gpu=0.5, dev2_gpu=2.0, workloads=None):
    usage_services.usage_record(
        cluster=world.cluster,
        time=time,
        readings=[
            UsageReading(world.dev1.pk, {"gpu_used": dev1_gpu, "gpu_allocated": 1}),
            UsageReading(
                world.dev2.pk,
                {
                    "gpu_used": dev2_gpu,
                    "gpu_allocated": 2,
                    "cpu_used_millicores": 1500,
                    "cpu_allocated_millicores": 8000,
                    "memory_used_bytes": 3 * GI,
                    "memory_allocated_bytes": 60 * GI,
                },
            ),
            UsageReading(world.department1.pk, {"gpu_allocated": 3}),
        ],
        workloads=workloads,
    )


def client_as(world, who: str) -> Client:
    client = Client()
    client.force_login(world.tom if who == "tom" else person(world, who))
    return client


def at(time: datetime.datetime) -> str:
    return str(int(time.timestamp()))


# ---------------------------------------------------------------------------------------------
# Windows and steps


@pytest.mark.parametrize(
    ("key", "step", "points"),
    [
        ("1h", MINUTE, 60),
        ("24h", 5 * MINUTE, 288),
        ("7d", 60 * MINUTE, 168),
        ("30d", 60 * MINUTE, 720),
    ],
)
def test_each_range_has_a_step_that_keeps_charts_under_800_points(key, step, points):
    now = T0 + 30 * datetime.timedelta(seconds=1)
    window = dashboards.window_for(key, now, now - datetime.timedelta(days=2))
    assert window.step == step
    assert (window.end - window.start) / window.step == points
    assert window.start <= now < window.end


def test_custom_ranges_step_up_when_long_and_leave_raw_samples_when_old():
    now = T0
    raw_from = now - datetime.timedelta(days=2)
    recent = dashboards.window_for("custom", now, raw_from, now - datetime.timedelta(hours=3), now)
    assert recent.step == MINUTE
    old = dashboards.window_for(
        "custom", now, raw_from, now - datetime.timedelta(days=3), now - datetime.timedelta(days=2, hours=20)
    )
    assert old.step == datetime.timedelta(hours=1)  # hourly rollups: no finer step exists there
    long = dashboards.window_for("custom", now, raw_from, now - datetime.timedelta(days=400), now)
    assert long.step == datetime.timedelta(days=1) and long.start.hour == 0


# ---------------------------------------------------------------------------------------------
# The Monitoring tab


def test_the_monitoring_tab_draws_each_measured_chart_with_its_figures(k8s_world, settings):
    settings.CANOPY_DEMO_USAGE = True
    w = k8s_world
    for minute, gpu in enumerate((1.0, 2.0, 2.0)):
        record(w, T0 + minute * MINUTE, dev2_gpu=gpu)
    html = (
        client_as(w, "tom")
        .get(
            f"/tenants/{w.dev2.pk}/?tab=monitoring&range=1h&at={at(T0 + 3 * MINUTE)}", HTTP_HX_REQUEST="true"
        )
        .content.decode()
    )
    assert "<html" not in html
    assert "Demo figures — made up, not read from a cluster" in html
    assert "one point per 1 min (raw samples)" in html
    for key in ("gpu", "cpu", "memory"):
        assert f'id="chart-{w.cluster.pk}--{key}-canvas"' in html
    assert "HDFS space" not in html  # nothing measured there: no chart
    # GPUs are counted: whole numbers (issue 18, point 10); GiB and cores with one decimal.
    assert '<td>2026-11-01 10:01</td><td class="num">2</td><td class="num">2</td>' in html
    assert "latest: used 2, allocated 2" in html
    assert "(GiB)" in html and '<td class="num">3.0</td><td class="num">60.0</td>' in html
    assert "(cores)" in html and '<td class="num">1.5</td><td class="num">8.0</td>' in html
    assert f"range=1h&amp;at={at(T0 + 3 * MINUTE)}" in html  # the CSV link pins the same window


def test_figure_tables_write_times_in_the_viewers_zone_and_numbers_with_one_precision():
    """The table rows are built in Python for speed: times in the viewer's zone, and every number of
    a chart with the same decimals (a count that was averaged gets one), never an exponent."""
    series = {
        "gpu_used": [Series(1, "", [(T0, 1.5), (T0 + MINUTE, 1e16)])],
        "gpu_allocated": [Series(1, "", [(T0, 2.0)])],
    }
    with timezone.override("Asia/Kolkata"):  # UTC+05:30: a zone whose minutes differ too
        (group,) = dashboards.charts_from_series(series, {1: "gpu-a"}, T0, T0 + 2 * MINUTE)
        (chart,) = group.charts
        assert chart.table_rows().splitlines() == [
            '<tr><td>2026-11-01 15:30</td><td class="num">1.5</td><td class="num">2.0</td></tr>',
            '<tr><td>2026-11-01 15:31</td><td class="num">10000000000000000.0</td><td class="num">–</td></tr>',
        ]
        assert chart.data()["decimals"] == 1 and chart.data()["counted"] is True


def test_each_unit_has_one_precision_and_counts_are_whole():
    whole = {"gpu_used": [Series(1, "", [(T0, 2.0)])], "gpu_allocated": [Series(1, "", [(T0, 2.0)])]}
    (gpus,) = dashboards.charts_from_series(whole, {1: "gpu-a"})[0].charts
    assert gpus.latest_figures == [("Used", "2"), ("Allocated", "2")]
    memory = {"memory_used_bytes": [Series(1, "", [(T0, 59.731 * GI)])]}
    (chart,) = dashboards.charts_from_series(memory, {1: "gpu-a"})[0].charts
    assert chart.unit.name == "GiB" and chart.latest_figures[0] == ("Used", "59.7")
    files = {
        "hdfs_files_used": [Series(1, "", [(T0, 967_789)])],
        "hdfs_files_quota": [Series(1, "", [(T0, 2e6)])],
    }
    (chart,) = dashboards.charts_from_series(files, {1: "hdfs"})[0].charts
    assert chart.latest_figures == [("Used", "967789"), ("Quota", "2000000")]
    # The overview's totals: the same rules, no "2e+06".
    assert dashboards._count(2e6) == "2000000" and dashboards._count(1.5) == "1.5"
    assert dashboards._cores(26_000) == "26.0 cores" and dashboards._cores(57_600) == "57.6 cores"
    assert dashboards._bytes(20 * 2**40) == "20.00 TiB" and dashboards._bytes(104.7 * GI) == "104.7 GiB"


def test_the_csv_holds_exactly_the_points_shown(k8s_world):
    w = k8s_world
    for minute, gpu in enumerate((1.0, 2.0, 2.0)):
        record(w, T0 + minute * MINUTE, dev2_gpu=gpu)
    response = client_as(w, "dev1_admin").get(
        f"/tenants/{w.dev1.pk}/usage.csv?range=1h&at={at(T0 + 3 * MINUTE)}"
    )
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="department1_dev1-usage-')
    assert response.content.decode() == (
        "time,cluster,partition,metric,value\r\n"
        "2026-11-01T10:00:00Z,gpu-cluster,,gpu_used,0.5\r\n"
        "2026-11-01T10:01:00Z,gpu-cluster,,gpu_used,0.5\r\n"
        "2026-11-01T10:02:00Z,gpu-cluster,,gpu_used,0.5\r\n"
        "2026-11-01T10:00:00Z,gpu-cluster,,gpu_allocated,1\r\n"
        "2026-11-01T10:01:00Z,gpu-cluster,,gpu_allocated,1\r\n"
        "2026-11-01T10:02:00Z,gpu-cluster,,gpu_allocated,1\r\n"
    )
    # A parent's figures are its subtree's: department1's GPUs in use are dev1's plus dev2's.
    parent = client_as(w, "dept_admin").get(
        f"/tenants/{w.department1.pk}/usage.csv?range=1h&at={at(T0 + 3 * MINUTE)}"
    )
    assert "2026-11-01T10:01:00Z,gpu-cluster,,gpu_used,2.5\r\n" in parent.content.decode()


def test_a_pin_that_is_no_instant_means_now_not_an_error(k8s_world):
    """A digit int() refuses, and a second past the calendar's end, were 500s."""
    w = k8s_world
    record(w, timezone.now() - MINUTE, dev2_gpu=1.0)
    for pin in ("²", "99999999999999999999"):
        response = client_as(w, "tom").get(f"/tenants/{w.dev2.pk}/usage.csv?range=1h&at={pin}")
        assert response.status_code == 200, pin
        assert ",gpu-cluster,,gpu_used,1\r\n" in response.content.decode(), pin


def test_a_custom_range_is_validated_with_clear_errors(k8s_world):
    w = k8s_world
    client = client_as(w, "tom")
    url = f"/tenants/{w.dev2.pk}/?tab=monitoring&range=custom"
    backwards = client.get(f"{url}&start=2026-11-02T00:00&end=2026-11-01T00:00", HTTP_HX_REQUEST="true")
    assert "To: The end must be after the start." in backwards.content.decode()
    assert 'value="2026-11-02T00:00"' in backwards.content.decode()  # what was typed stays
    too_long = client.get(f"{url}&start=2025-01-01T00:00&end=2026-11-01T00:00", HTTP_HX_REQUEST="true")
    assert "A range covers at most 400 days." in too_long.content.decode()
    missing = client.get(f"{url}&start=2026-11-01T00:00", HTTP_HX_REQUEST="true").content.decode()
    assert "To: Give the end of the range." in missing and "<canvas" not in missing
    garbled = client.get(f"{url}&start=yesterday&end=2026-11-01T00:00", HTTP_HX_REQUEST="true")
    assert "From: Enter a valid date/time." in garbled.content.decode()
    assert client.get(f"/tenants/{w.dev2.pk}/usage.csv?range=custom&start=x&end=y").status_code == 400

    record(w, T0)
    fine = client.get(
        f"{url}&start=2026-11-01T09:00&end=2026-11-01T12:00&at={at(T0 + MINUTE)}", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "errorlist" not in fine and "one point per 1 min" in fine and "<canvas" in fine
    assert "every 60s" not in fine  # a fixed range does not poll; the relative ones do
    assert (
        "every 60s"
        in client.get(f"/tenants/{w.dev2.pk}/?tab=monitoring", HTTP_HX_REQUEST="true").content.decode()
    )


def test_no_figures_yet_is_said_plainly(k8s_world):
    w = k8s_world
    html = (
        client_as(w, "tom")
        .get(f"/tenants/{w.dev2.pk}/?tab=monitoring", HTTP_HX_REQUEST="true")
        .content.decode()
    )
    assert "No usage collected for this tenant in this range yet" in html and "<canvas" not in html


@pytest.mark.parametrize(
    ("who", "tenant", "status"),
    [
        ("bob", "dev2", 404),  # Bob cannot even see dev2
        ("outsider", "dev1", 404),
        ("dev1_viewer", "dev1", 404),  # sees the tenant, but usage is for members and admins
        ("bob", "dev1", 200),
        ("dept_admin", "dev2", 200),
        ("platform", "dev2", 200),
    ],
)
def test_usage_is_for_those_who_use_the_tenant(k8s_world, who, tenant, status):
    w = k8s_world
    record(w, timezone.now())
    pk = getattr(w, tenant).pk
    client = client_as(w, who)
    assert client.get(f"/tenants/{pk}/usage.csv?range=1h").status_code == status
    tab = client.get(f"/tenants/{pk}/?tab=monitoring", HTTP_HX_REQUEST="true")
    if who in ("bob", "outsider") and status == 404:
        assert tab.status_code == 404
    elif status == 404:  # the viewer: no Monitoring tab, no figures
        assert tab.status_code == 200 and "<canvas" not in tab.content.decode()
        page = client.get(f"/tenants/{pk}/").content.decode()
        assert "tab=monitoring" not in page
    else:
        assert "<canvas" in tab.content.decode()


# ---------------------------------------------------------------------------------------------
# Resources tab and My access: real used figures, and each user's own jobs


def test_the_resources_tab_shows_used_and_left_and_says_when_nothing_is_recent(k8s_world):
    w = k8s_world
    client = client_as(w, "tom")
    stale = client.get(f"/tenants/{w.dev2.pk}/?tab=resources", HTTP_HX_REQUEST="true").content.decode()
    assert stale.count("no usage collected recently") == 3
    record(w, timezone.now() - datetime.timedelta(hours=1))  # too old to be "now"
    assert (
        "no usage collected recently"
        in client.get(f"/tenants/{w.dev2.pk}/?tab=resources", HTTP_HX_REQUEST="true").content.decode()
    )
    record(w, timezone.now())
    html = client.get(f"/tenants/{w.dev2.pk}/?tab=resources", HTTP_HX_REQUEST="true").content.decode()
    assert "Used: 2 GPUs (100 %) · 0 GPUs unused" in html
    assert "Used: 1500m CPU (19 %) · 6500m CPU unused" in html
    assert "Used: 3 GiB (5 %) · 57 GiB unused" in html
    assert "no usage collected recently" not in html


def test_my_access_lists_only_my_own_jobs(k8s_world):
    w = k8s_world
    started = timezone.now() - datetime.timedelta(minutes=5)
    record(
        w,
        timezone.now(),
        workloads=[
            WorkloadReading(
                w.dev1.pk,
                "Pod",
                "dev1",
                "train-a",
                "canopy-bob",
                "running",
                username="bob",
                gpu=1,
                cpu_millicores=2500,
                memory_bytes=8 * GI,
                started_at=started,
            ),
            WorkloadReading(
                w.dev1.pk,
                "Pod",
                "dev1",
                "notebook-x",
                "canopy-dev1-admin",
                "running",
                username="dev1-admin",
                gpu=0,
            ),
            WorkloadReading(
                w.dev2.pk, "Pod", "dev2", "train-b", "canopy-tom", "pending", username="tom", gpu=2
            ),
        ],
    )
    bob = client_as(w, "bob").get("/me/").content.decode()
    assert "train-a" in bob and "2.5" in bob and "8 GiB" in bob and "Running" in bob
    assert "train-b" not in bob and "notebook-x" not in bob
    assert "Used: 0.5 GPUs (50 %) · 0.5 GPUs unused" in bob
    assert "Demo figures" not in bob  # real figures carry no label
    tom = client_as(w, "tom").get("/me/").content.decode()
    assert "train-b" in tom and "Pending" in tom and "train-a" not in tom
    assert "Used: 2 GPUs (100 %) · 0 GPUs unused" in tom
    viewer = client_as(w, "dev1_viewer").get("/me/").content.decode()
    assert "My jobs" not in viewer and "train-a" not in viewer


def _member_of(count: int, username: str, admin, k8s_pool, yarn_pool) -> object:
    person = user(username)
    now = timezone.now()
    readings, k8s_readings, workloads = [], [], []
    for i in range(count):
        pool, amounts = (
            (k8s_pool, {"gpu": 0, "cpu_millicores": 1000, "memory_bytes": GI})
            if i % 2
            else (yarn_pool, {"capacity_percent": 1})
        )
        tenant = services.tenant_create(
            acting_user=admin, parent=None, name=f"{username}-{i}", allocations=[spec(pool, **amounts)]
        )
        services.membership_grant(acting_user=admin, tenant=tenant, user=person, role="member")
        reading = UsageReading(tenant.pk, {"cpu_used_millicores": 500, "cpu_allocated_millicores": 1000})
        (k8s_readings if i % 2 else readings).append(reading)
        if i % 2:
            workloads.append(
                WorkloadReading(tenant.pk, "Pod", tenant.name, f"job-{i}", "sa", "running", username=username)
            )
    usage_services.usage_record(cluster=yarn_pool.cluster, time=now, readings=readings)
    usage_services.usage_record(
        cluster=k8s_pool.cluster, time=now, readings=k8s_readings, workloads=workloads
    )
    return person


def test_my_access_costs_the_same_queries_for_2_as_for_20_tenants(platform_admin):
    k8s = services.cluster_create(acting_user=platform_admin, name="k8s", kind=Cluster.Kind.KUBERNETES)
    k8s_pool = services.pool_update(
        acting_user=platform_admin,
        pool=ResourcePool.objects.get(cluster=k8s),
        cpu_capacity_millicores=100_000,
        memory_capacity_bytes=100 * GI,
    )
    yarn = services.cluster_create(acting_user=platform_admin, name="bigdata", kind=Cluster.Kind.YARN)
    yarn_pool = services.pool_update(
        acting_user=platform_admin,
        pool=ResourcePool.objects.get(cluster=yarn),
        cpu_capacity_millicores=64_000,
        memory_capacity_bytes=256 * GI,
    )
    counts = []
    for count, name in ((2, "few"), (20, "many")):
        person = _member_of(count, name, platform_admin, k8s_pool, yarn_pool)
        client = Client()
        client.force_login(person)
        with CaptureQueriesContext(connection) as queries:
            html = client.get("/me/").content.decode()
        assert html.count("<article") >= count and f"job-{count - 1}" in html
        assert "Used: 0.5 vCores" in html and "Used: 500m CPU (50 %)" in html
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    print("My access queries:", counts)


# ---------------------------------------------------------------------------------------------
# The platform overview


def test_rankings_never_name_a_tenant_twice():
    usages = [dashboards.TenantUsage(i, f"t{i}", "GPU", used=i, allocated=30) for i in range(30)]
    used, idle = dashboards.rankings(usages)
    assert [u.tenant_id for u in used] == list(range(29, 19, -1))
    assert [u.tenant_id for u in idle] == list(range(10))
    used, idle = dashboards.rankings(usages[:5])
    assert [u.tenant_id for u in used] == [4, 3, 2] and [u.tenant_id for u in idle] == [0, 1]


def test_the_overview_is_for_platform_admins_and_marks_tenants_near_a_quota(k8s_world):
    w = k8s_world
    record(w, timezone.now(), dev1_gpu=0.5, dev2_gpu=2.0)
    for who in ("dept_admin", "bob", "outsider"):
        assert client_as(w, who).get("/overview/").status_code == 404
        assert "/overview/" not in client_as(w, who).get("/me/").content.decode()
    client = client_as(w, "platform")
    html = client.get("/overview/").content.decode()
    assert 'href="/overview/"' in html
    # dev2 uses both its GPUs: named with a text marker, not only a colour.
    near = html.split('id="near-full"')[1].split("</table>")[0]
    assert "department1/dev2" in near and "⚠ ≥ 90 %" in near and "GPUs on gpu-cluster: 100 %" in near
    assert "department1/dev1<" not in near
    # Totals: department1's subtree uses 2.5 of its 3 GPUs, out of the pool's 3.
    totals = html.split("Cluster totals")[1].split('id="near-full"')[0]
    assert (
        '<td class="num figure-used">2.5</td><td class="num figure-allocated" '
        'title="absolute: level-1 tenants&#x27; limited amounts">3 GPUs</td>'
        '<td class="num figure-capacity">3 GPUs</td>' in totals
    )
    # dev2 100 %, department1 2.5 of 3, dev1 half: with so few, each list takes its half.
    most_used = html.split("Most used")[1].split("Most idle")[0]
    assert most_used.index("department1/dev2") < most_used.index("department1<")
    assert "department1/dev1" not in most_used
    most_idle = html.split("Most idle")[1]
    assert "department1/dev1" in most_idle and "department1/dev2" not in most_idle


def test_the_overview_costs_the_same_queries_for_2_as_for_20_tenants(platform_admin):
    cluster = services.cluster_create(acting_user=platform_admin, name="k8s", kind=Cluster.Kind.KUBERNETES)
    client = Client()
    client.force_login(platform_admin)
    counts = []
    made = 0
    for total in (2, 20):
        tenants = {
            i: services.tenant_create(acting_user=platform_admin, parent=None, name=f"t{i}")
            for i in range(made, total)
        }
        made = total
        # By the tenant's number, not its id (which depends on what ran before): t0 is full.
        usage_services.usage_record(
            cluster=cluster,
            time=timezone.now() - datetime.timedelta(seconds=total),
            readings=[
                UsageReading(t.pk, {"gpu_used": 1, "gpu_allocated": 1 + (i % 3)}) for i, t in tenants.items()
            ],
        )
        with CaptureQueriesContext(connection) as queries:
            html = client.get("/overview/").content.decode()
        assert html.count("⚠ ≥ 90 %") >= 1
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    print("Overview queries:", counts)
