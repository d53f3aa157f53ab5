"""Usage storage: subtree totals, rollups exact to the sample, retention, and who sees what."""

from __future__ import annotations

import datetime
import random

import pytest
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext

from usage import selectors as usage_selectors
from usage import services as usage_services
from usage.measures import UsageReading, WorkloadReading, bucket_averages
from usage.models import UsageRollup, UsageSample, Workload

pytestmark = pytest.mark.django_db

T0 = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)
MINUTE = datetime.timedelta(minutes=1)


def record(world, time, dev1_gpu, dev2_gpu, **extra):
    """One Kubernetes collection pass: each namespace's own quota usage."""
    return usage_services.usage_record(
        cluster=world.cluster,
        time=time,
        readings=[
            UsageReading(world.dev1.pk, {"gpu_used": dev1_gpu, "gpu_allocated": 1, **extra}),
            UsageReading(world.dev2.pk, {"gpu_used": dev2_gpu, "gpu_allocated": 2}),
            UsageReading(world.department1.pk, {"gpu_used": 0, "gpu_allocated": 3}),
        ],
        workloads=[
            WorkloadReading(
                world.dev1.pk, "Pod", "dev1", "train-a", "canopy-bob", "running", username="bob", gpu=1
            ),
            WorkloadReading(
                world.dev2.pk, "Pod", "dev2", "train-b", "canopy-tom", "pending", username="tom", gpu=2
            ),
        ],
    )


def test_a_parent_holds_its_subtrees_sum_and_limits_stay_its_own(k8s_world) -> None:
    w = k8s_world
    assert record(w, T0, 1, 2) == 3
    figures = {s.tenant_id: (s.gpu_used, s.gpu_allocated) for s in UsageSample.objects.all()}
    assert figures == {w.dev1.pk: (1, 1), w.dev2.pk: (2, 2), w.department1.pk: (3, 3)}
    # The same pass again changes nothing; workloads are replaced by each pass.
    assert record(w, T0, 1, 2) == 3
    assert UsageSample.objects.count() == 3
    assert sorted(Workload.objects.values_list("name", flat=True)) == ["train-a", "train-b"]


def test_hourly_and_daily_rollups_are_exact_to_the_sample(k8s_world) -> None:
    w = k8s_world
    rng = random.Random(7)
    values = {}
    for minute in range(0, 3 * 60):  # three hours of one-minute samples, with gaps
        if rng.random() < 0.1:
            continue
        time = T0 + minute * MINUTE
        values[time] = (rng.randint(0, 1), rng.randint(0, 2))
        record(w, time, *values[time], memory_used_bytes=rng.randint(0, 2**50))
    written = usage_services.usage_rollup(resolution="hour", start=T0, end=T0 + datetime.timedelta(hours=3))
    assert written == 3 * 3  # 3 tenants x 3 hours
    for hour in range(3):
        start = T0 + datetime.timedelta(hours=hour)
        in_hour = [v for t, v in values.items() if start <= t < start + datetime.timedelta(hours=1)]
        row = UsageRollup.objects.get(resolution="hour", tenant=w.department1, time=start)
        assert row.samples == len(in_hour)
        assert row.gpu_used == sum(a + b for a, b in in_hour) / len(in_hour)
        dev1 = UsageRollup.objects.get(resolution="hour", tenant=w.dev1, time=start)
        assert dev1.gpu_used == sum(a for a, _ in in_hour) / len(in_hour)
        assert dev1.gpu_allocated == 1
    raw = list(UsageSample.objects.filter(tenant=w.dev1).values_list("memory_used_bytes", flat=True))
    usage_services.usage_rollup(resolution="day", start=T0, end=T0 + datetime.timedelta(days=1))
    day = UsageRollup.objects.get(resolution="day", tenant=w.dev1, time=T0)
    # Memory is summed as double precision, in whatever order PostgreSQL's plan takes (in parallel
    # on a busy machine): equal to the exact mean to the last bits, not to the bit.
    assert day.samples == len(raw)
    assert day.memory_used_bytes == pytest.approx(sum(raw) / len(raw), rel=1e-12)
    # Rolling up again (a bucket still filling) rewrites, never duplicates.
    usage_services.usage_rollup(resolution="hour", start=T0, end=T0 + datetime.timedelta(hours=3))
    assert UsageRollup.objects.filter(resolution="hour").count() == 9


def test_retention_drops_what_is_older_than_each_tier_keeps(k8s_world, settings) -> None:
    w = k8s_world
    settings.CANOPY_USAGE_RAW_DAYS, settings.CANOPY_USAGE_HOURLY_DAYS, settings.CANOPY_USAGE_DAILY_DAYS = (
        2,
        90,
        730,
    )
    now = T0 + datetime.timedelta(days=100)
    for age_days in (1, 3):
        record(w, now - datetime.timedelta(days=age_days), 1, 1)
    usage_services.usage_rollup(resolution="hour", start=now - datetime.timedelta(days=4), end=now)
    old = now - datetime.timedelta(days=95)
    record(w, old, 1, 1)
    usage_services.usage_rollup(resolution="hour", start=old, end=old + datetime.timedelta(hours=1))
    usage_services.usage_rollup(resolution="day", start=old, end=old + datetime.timedelta(days=1))
    deleted = usage_services.usage_prune(now=now)
    assert deleted == {"raw": 6, "hour": 3, "day": 0}
    assert set(UsageSample.objects.values_list("time", flat=True)) == {now - datetime.timedelta(days=1)}
    assert (
        UsageRollup.objects.filter(resolution="day", time__lt=now - datetime.timedelta(days=90)).count() == 3
    )


def series_query(metrics, start, end, step):
    return usage_selectors.UsageQuery(metrics=metrics, start=start, end=end, step=step)


def test_series_pick_their_source_and_average_into_steps(k8s_world, settings) -> None:
    w = k8s_world
    now = T0 + datetime.timedelta(hours=2)
    for minute in range(120):
        record(w, T0 + minute * MINUTE, minute % 2, 2)
    usage_services.usage_rollup(resolution="hour", start=T0, end=now)
    last_hour = series_query(
        ["gpu_used", "gpu_allocated"], now - datetime.timedelta(hours=1), now, 5 * MINUTE
    )
    source, series = usage_selectors.usage_series(
        user=w.admin, tenant=w.department1, query=last_hour, now=now
    )
    assert source == "raw"
    [gpu] = series["gpu_used"]
    assert (gpu.cluster_id, gpu.partition) == (w.cluster.pk, "")
    assert len(gpu.points) == 12
    assert all(
        value == pytest.approx(2 + 2 / 5) or value == pytest.approx(2 + 3 / 5) for _, value in gpu.points
    )
    assert {v for _, v in series["gpu_allocated"][0].points} == {3}
    month = series_query(["gpu_used"], now - datetime.timedelta(days=30), now, datetime.timedelta(hours=1))
    source, series = usage_selectors.usage_series(user=w.admin, tenant=w.dev1, query=month, now=now)
    assert source == "hour"
    assert [v for _, v in series["gpu_used"][0].points] == [0.5, 0.5]


def test_a_member_of_dev1_never_sees_dev2s_usage_nor_tom_bobs_jobs(k8s_world) -> None:
    w = k8s_world
    record(w, T0, 1, 2)
    query = series_query(["gpu_used"], T0 - MINUTE, T0 + MINUTE, MINUTE)
    source, series = usage_selectors.usage_series(user=w.bob, tenant=w.dev1, query=query, now=T0)
    assert series["gpu_used"][0].points == [(T0, 1)]
    for tenant in (w.dev2, w.department1):
        with pytest.raises(Http404):
            usage_selectors.usage_series(user=w.bob, tenant=tenant, query=query, now=T0)
    latest = usage_selectors.usage_latest(
        user=w.bob, tenant_ids=[w.dev1.pk, w.dev2.pk, w.department1.pk], now=T0
    )
    assert set(latest) == {w.dev1.pk}
    assert list(usage_selectors.workload_list(user=w.tom).values_list("name", flat=True)) == ["train-b"]
    assert list(usage_selectors.workload_list(user=w.bob).values_list("name", flat=True)) == ["train-a"]
    assert usage_selectors.workload_list(user=w.admin).count() == 2


def test_reading_usage_costs_the_same_queries_for_any_subtree(k8s_world, django_assert_num_queries) -> None:
    w = k8s_world
    for minute in range(30):
        record(w, T0 + minute * MINUTE, 1, 1)
    query = series_query(["gpu_used", "memory_used_bytes"], T0, T0 + 30 * MINUTE, MINUTE)
    counts = []
    for tenant in (w.dev1, w.department1):
        with CaptureQueriesContext(connection) as captured:
            usage_selectors.usage_series(user=w.admin, tenant=tenant, query=query, now=T0 + 30 * MINUTE)
        counts.append(len(captured))
    assert counts == [2, 2]  # the tenant, then its series
    with django_assert_num_queries(1):
        usage_selectors.usage_latest(user=w.admin, tenant_ids=[w.dev1.pk, w.dev2.pk], now=T0 + 30 * MINUTE)


def test_bucket_averages_leave_gaps_and_nones_out_figure_by_figure() -> None:
    rows = [
        (T0, 1.0, None),
        (T0 + MINUTE, None, 4.0),
        (T0 + 2 * MINUTE, 3.0, 8.0),
        (T0 + 10 * MINUTE, 5.0, None),
    ]
    assert bucket_averages(rows, T0, 5 * MINUTE) == [
        [(T0, 2.0), (T0 + 10 * MINUTE, 5.0)],
        [(T0, 6.0)],
    ]
    assert bucket_averages([], T0, 5 * MINUTE) == []


# ----------------------------------------------------------------------------- the API


def test_usage_api_series_defaults_and_field_errors(k8s_world, settings) -> None:
    from tests.tenants.builders import TokenClient

    w = k8s_world
    settings.CANOPY_DEMO_USAGE = False
    now = datetime.datetime.now(datetime.UTC).replace(second=0, microsecond=0)
    for minute in range(1, 11):
        record(w, now - minute * MINUTE, 1, 2)
    admin = TokenClient().as_user(w.admin)
    url = f"/api/v1/tenants/{w.department1.pk}/usage/"
    answer = admin.get(url, {"metric": ["gpu_used", "gpu_allocated"], "step": 60})
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert (body["tenant_path"], body["source"], body["step"], body["demo"]) == (
        "department1",
        "raw",
        60,
        False,
    )
    by_metric = {series["metric"]: series for series in body["series"]}
    assert by_metric["gpu_used"]["cluster_name"] == "gpu-cluster"
    assert [value for _, value in by_metric["gpu_used"]["points"]] == [3.0] * 10
    assert {value for _, value in by_metric["gpu_allocated"]["points"]} == {3.0}

    month = admin.get(url, {"from": (now - datetime.timedelta(days=30)).isoformat(), "to": now.isoformat()})
    assert month.status_code == 200 and month.json()["source"] == "hour"  # 30 d / 300 points = 2.4 h
    for params, field, message in (
        ({"metric": "gpu_usage"}, "metric", "not a valid choice"),
        ({"from": now.isoformat(), "to": (now - MINUTE).isoformat()}, "from", "Must be before"),
        ({"from": (now - datetime.timedelta(days=500)).isoformat()}, "from", "at most 400 days"),
        (
            {"from": (now - datetime.timedelta(days=10)).isoformat(), "step": 60},
            "step",
            "At most 5000 points",
        ),
        # Found by the long schemathesis run: a step past what a timedelta holds was a 500.
        ({"step": 8648518274706351}, "step", "less than or equal to 34560000"),
    ):
        refused = admin.get(url, params)
        assert refused.status_code == 400, refused.content
        assert message in str(refused.json()[field]), refused.json()


def test_usage_and_workloads_api_follow_the_permission_helper(k8s_world) -> None:
    from tests.tenants.builders import TokenClient

    w = k8s_world
    now = datetime.datetime.now(datetime.UTC)
    record(w, now - MINUTE, 1, 2)
    bob, tom = TokenClient().as_user(w.bob), TokenClient().as_user(w.tom)
    assert bob.get(f"/api/v1/tenants/{w.dev1.pk}/usage/").status_code == 200
    assert bob.get(f"/api/v1/tenants/{w.dev2.pk}/usage/").status_code == 404
    assert tom.get(f"/api/v1/tenants/{w.dev1.pk}/usage/").status_code == 404
    assert [j["name"] for j in tom.get("/api/v1/workloads/").json()["results"]] == ["train-b"]
    assert [j["name"] for j in bob.get("/api/v1/workloads/", {"mine": "true"}).json()["results"]] == [
        "train-a"
    ]
    assert tom.get("/api/v1/workloads/", {"tenant": w.dev1.pk}).json()["results"] == []
