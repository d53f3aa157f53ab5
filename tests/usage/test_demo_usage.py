"""The embedded default's demo usage generator: invented, inside the allocations, fed through the
real storage, and refused wherever CANOPY_DEMO_USAGE is off."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from tenants.demo import load_demo
from tenants.models import Tenant
from usage import demo as demo_usage
from usage.models import UsageRollup, UsageSample, Workload

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 11, 20, 12, 0, tzinfo=datetime.UTC)


def test_refused_unless_the_setting_is_on(settings) -> None:
    settings.CANOPY_DEMO_USAGE = False
    load_demo()
    with pytest.raises(CommandError, match="Refused: the demo usage generator makes figures up"):
        call_command("demo_usage")
    with pytest.raises(ImproperlyConfigured):
        demo_usage.demo_record(NOW)
    assert not UsageSample.objects.exists()


def test_invented_figures_stay_inside_allocations_and_add_up(settings) -> None:
    settings.CANOPY_DEMO_USAGE = True
    load_demo()
    # Two days of passes: every phase of every tenant's daily wave, at its peaks too.
    for minute in range(0, 2 * 24 * 60, 19):
        demo_usage.demo_record(NOW + datetime.timedelta(minutes=minute), workloads=False)
    for minute in range(30):
        demo_usage.demo_record(NOW + datetime.timedelta(minutes=minute))
    samples = list(UsageSample.objects.select_related("tenant", "cluster"))
    assert samples
    by_key = {(s.tenant.name_path, s.partition, s.time): s for s in samples}
    for sample in samples:
        for used, allocated in (
            ("gpu_used", "gpu_allocated"),
            ("cpu_used_millicores", "cpu_allocated_millicores"),
        ):
            value, limit = getattr(sample, used), getattr(sample, allocated)
            if value is not None and limit is not None:
                assert 0 <= value <= limit, (sample, used)
    for minute in range(30):
        time = NOW + datetime.timedelta(minutes=minute)
        parent, dev1, dev2 = (
            by_key[(p, "", time)] for p in ("department1", "department1/dev1", "department1/dev2")
        )
        assert parent.gpu_used == dev1.gpu_used + dev2.gpu_used
        assert parent.gpu_allocated == 3
    assert Workload.objects.filter(
        name__startswith=demo_usage.DEMO_PREFIX, username__in=["bob", "tom"]
    ).exists()
    assert Tenant.objects.filter(name_path="t1/etl").exists()
    assert (
        by_key[("t1", "", NOW)].hdfs_space_used_bytes > by_key[("t1/etl", "", NOW)].hdfs_space_used_bytes > 0
    )


def test_backfill_gives_every_range_history_once(settings) -> None:
    settings.CANOPY_DEMO_USAGE = True
    load_demo()
    written = demo_usage.demo_backfill(NOW, days=2)
    assert written == UsageSample.objects.count() > 0
    assert UsageRollup.objects.filter(resolution="hour").values("time").distinct().count() == 2 * 24
    assert UsageRollup.objects.filter(resolution="day").exists()
    assert demo_usage.demo_backfill(NOW, days=2) == 0  # already there: a restarted console adds nothing


def test_the_demo_showback_has_figures_and_costs(settings) -> None:
    from django.contrib.auth import get_user_model

    from usage import selectors as usage_selectors
    from usage import showback

    settings.CANOPY_DEMO_USAGE = True
    load_demo()
    demo_usage.demo_backfill(NOW, days=2)
    admin = get_user_model().objects.get(username="admin")
    assert demo_usage.demo_prices(admin) == 6
    assert demo_usage.demo_prices(admin) == 0  # set once: a platform admin's prices stay
    window = showback.month_window(NOW.date().replace(day=1), NOW, settings.CANOPY_USAGE_HOURLY_DAYS)
    report = usage_selectors.showback_month(user=admin, tenant_id=None, window=window)
    figures = showback.line_figures(report.total)
    assert figures["gpu_used"] > 0 and figures["hdfs_used"] > 0 and figures["cost_used"] > 0
    assert {line.name_path for line in report.lines} >= {"department1", "t1"}
