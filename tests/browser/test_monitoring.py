"""The Monitoring tab in Chromium: recorded samples become a drawn Chart.js canvas, with the same
figures in the table under it."""

import datetime

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.tenants.builders import build_k8s_world
from usage import services as usage_services
from usage.measures import UsageReading

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_a_member_sees_live_charts_and_their_figures(page, platform_admin):
    w = build_k8s_world(platform_admin)
    now = timezone.now().replace(second=0, microsecond=0)
    for minutes_ago, used in ((2, 1), (1, 2)):
        usage_services.usage_record(
            cluster=w.cluster,
            time=now - datetime.timedelta(minutes=minutes_ago),
            readings=[UsageReading(w.dev2.pk, {"gpu_used": used, "gpu_allocated": 2})],
        )
    sign_in(page, w.tom.username)
    page.goto(f"/tenants/{w.dev2.pk}/")
    page.click("nav.tabs a:has-text('Monitoring')")
    canvas = page.locator(f"#chart-{w.cluster.pk}--gpu-canvas")
    expect(canvas).to_be_visible()
    # Chart.js drew it: the canvas has a chart and pixels that are not blank.
    page.wait_for_function(
        "id => { const c = document.getElementById(id); const chart = Chart.getChart(c);"
        " return chart && chart.data.datasets[0].data.length === 2; }",
        arg=f"chart-{w.cluster.pk}--gpu-canvas",
    )
    painted = page.evaluate(
        "id => { const c = document.getElementById(id); const d = c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data; let n = 0;"
        " for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }",
        f"chart-{w.cluster.pk}--gpu-canvas",
    )
    assert painted > 500
    legend = page.evaluate(
        "id => Chart.getChart(document.getElementById(id)).data.datasets.map(d => [d.label, d.borderDash.length])",
        f"chart-{w.cluster.pk}--gpu-canvas",
    )
    assert legend == [["Used (solid line)", 0], ["Allocated (dashed line)", 2]]
    figure = page.locator("figure.usage-chart").first
    figure.locator("summary").click()
    table = figure.locator("table.usage-table")
    expect(table).to_be_visible()
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table.locator("tbody tr").nth(0)).to_contain_text("1.0")
    expect(table.locator("tbody tr").nth(1)).to_contain_text("2.0")
    # Another range is one click away and draws again.
    page.click(".range-choice a:has-text('24 h')")
    expect(page.locator(".window")).to_contain_text("one point per 5 min")
    page.wait_for_function(
        "id => !!Chart.getChart(document.getElementById(id))", arg=f"chart-{w.cluster.pk}--gpu-canvas"
    )
