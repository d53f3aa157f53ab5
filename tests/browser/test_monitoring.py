"""The Monitoring tab in Chromium: recorded samples become a drawn Chart.js canvas, with the same
figures in the table under it; the allocated line shows where it equals the used one, time labels
never overlap (on a wide screen or a phone), and numbers have one precision per unit (issue 18,
point 10)."""

import datetime
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, sign_in
from tests.tenants.builders import GI, build_k8s_world
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
    expect(table.locator("tbody tr").nth(0)).to_contain_text("1")  # GPUs are counted: whole numbers
    expect(table.locator("tbody tr").nth(1)).to_contain_text("2")
    # Another range is one click away and draws again.
    page.click(".range-choice a:has-text('24 h')")
    expect(page.locator(".window")).to_contain_text("one point per 5 min")
    page.wait_for_function(
        "id => !!Chart.getChart(document.getElementById(id))", arg=f"chart-{w.cluster.pk}--gpu-canvas"
    )


# For every chart on the page, what Chart.js laid out and drew: its x tick labels with their
# boxes, its y tick labels, how a tooltip writes a figure, the order the lines are drawn in, and
# how many pixels of each line's colour the plot holds.
CHART_FACTS = """() => [...document.querySelectorAll("canvas[data-chart]")].map((canvas) => {
  const chart = Chart.getChart(canvas);
  const data = JSON.parse(document.getElementById(canvas.dataset.chart).textContent);
  const x = chart.scales.x, y = chart.scales.y, context = chart.ctx;
  context.save();
  context.font = Chart.helpers.toFont(x.options.ticks.font).string;
  const xLabels = x.ticks.map((tick) => {
    const centre = x.getPixelForValue(tick.value), width = context.measureText(tick.label).width;
    return {label: tick.label, left: centre - width / 2, right: centre + width / 2};
  });
  context.restore();
  const last = data.points[data.points.length - 1];
  const tooltip = chart.options.plugins.tooltip.callbacks.label;
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const near = (i, [r, g, b]) => Math.abs(pixels[i] - r) + Math.abs(pixels[i + 1] - g) + Math.abs(pixels[i + 2] - b) < 60;
  const colours = chart.data.datasets.map((d) => d.borderColor.match(/\\w\\w/g).map((h) => parseInt(h, 16)));
  // Along the used line only (3 px either side of its last figure), inside the plot.
  const ratio = canvas.width / chart.width, area = chart.chartArea, level = y.getPixelForValue(last[1]);
  const painted = colours.map(() => 0);
  for (let row = Math.round((level - 3) * ratio); row <= Math.round((level + 3) * ratio); row++) {
    for (let column = Math.round(area.left * ratio); column < Math.round(area.right * ratio); column++) {
      const i = (row * canvas.width + column) * 4;
      colours.forEach((c, n) => { if (pixels[i + 3] > 200 && near(i, c)) painted[n]++; });
    }
  }
  return {
    key: canvas.dataset.chart, width: chart.width, decimals: data.decimals, counted: data.counted,
    rotation: x.labelRotation, xLabels, chartLeft: 0, chartRight: chart.width,
    yLabels: y.ticks.map((t) => t.label), yValues: y.ticks.map((t) => t.value),
    tooltips: chart.data.datasets.map((d, i) => tooltip({dataset: d, parsed: {y: last[i + 1]}})),
    drawnLast: chart.getSortedVisibleDatasetMetas()[0].index, painted,
  };
})"""


def assert_charts_read_well(facts: list[dict], where: str) -> None:
    for chart in facts:
        name = f"{chart['key']} ({where}, {chart['width']} px)"
        labels = chart["xLabels"]
        assert len(labels) >= 2, (name, labels)
        assert chart["rotation"] == 0, name  # never slanted
        for before, after in zip(labels, labels[1:], strict=False):
            assert before["right"] + 4 <= after["left"], f"{name}: {before} overlaps {after}"
        assert labels[0]["left"] >= chart["chartLeft"] and labels[-1]["right"] <= chart["chartRight"], name
        if chart["counted"]:
            assert all(float(value).is_integer() for value in chart["yValues"]), (name, chart["yValues"])
            assert all(re.fullmatch(r"\d+", label) for label in chart["yLabels"]), (name, chart["yLabels"])
        else:
            digits = chart["decimals"]
            pattern = rf"\d+\.\d{{{digits}}}" if digits else r"\d+"
            assert all(re.fullmatch(pattern, label) for label in chart["yLabels"]), (name, chart["yLabels"])
        for text in chart["tooltips"]:
            number = re.search(r": (\S+) ", text).group(1)
            assert "e" not in number.lower(), (name, text)
            assert len(number.partition(".")[2]) == chart["decimals"], (name, text)


def test_charts_show_equal_lines_apart_labels_and_one_precision_per_unit(page, platform_admin):
    w = build_k8s_world(platform_admin)
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    start = now - datetime.timedelta(days=30)
    for hours in range(0, 30 * 24, 4):
        usage_services.usage_record(
            cluster=w.cluster,
            time=start + datetime.timedelta(hours=hours),
            readings=[
                UsageReading(
                    w.dev2.pk,
                    {
                        "gpu_used": 2,
                        "gpu_allocated": 2,  # used == allocated all month
                        "memory_used_bytes": round(59.731 * GI),
                        "memory_allocated_bytes": 60 * GI,
                        "hdfs_files_used": 967_789,
                        "hdfs_files_quota": 2_000_000,
                    },
                )
            ],
        )
    usage_services.usage_rollup(resolution="hour", start=start, end=now + datetime.timedelta(hours=1))
    sign_in(page, w.tom.username)
    page.goto(f"/tenants/{w.dev2.pk}/?tab=monitoring&range=30d")
    expect(page.locator(".window")).to_contain_text("one point per 1 h")
    gpu = f"chart-{w.cluster.pk}--gpu"
    page.wait_for_function(
        "n => document.querySelectorAll('canvas[data-chart]').length === n"
        " && [...document.querySelectorAll('canvas[data-chart]')].every((c) => Chart.getChart(c))",
        arg=3,
    )
    assert "e+" not in page.locator("main").inner_text()

    facts = {chart["key"]: chart for chart in page.evaluate(CHART_FACTS)}
    assert set(facts) == {gpu, f"chart-{w.cluster.pk}--memory", f"chart-{w.cluster.pk}--hdfs_files"}
    # The allocated line (dataset 1, dashed) is drawn last, on top of the used one, and both show.
    for chart in facts.values():
        assert chart["drawnLast"] == 1, chart["key"]
    used_pixels, allocated_pixels = facts[gpu]["painted"][:2]
    assert allocated_pixels > 100 and used_pixels > 100, facts[gpu]["painted"]  # before: 0 of allocated
    assert facts[gpu]["tooltips"][:2] == ["Used: 2 GPUs", "Allocated: 2 GPUs"]
    memory = facts[f"chart-{w.cluster.pk}--memory"]
    assert memory["tooltips"][:2] == ["Used: 59.7 GiB", "Allocated: 60.0 GiB"]
    files = facts[f"chart-{w.cluster.pk}--hdfs_files"]
    assert files["tooltips"][:2] == [
        "Used: 967789 files and directories",
        "Quota: 2000000 files and directories",
    ]
    expect(page.locator(f"#{gpu}-canvas").locator("xpath=ancestor::figure")).to_contain_text(
        "latest: used 2, allocated 2"
    )
    assert_charts_read_well(facts.values(), "wide screen")

    # On a phone the charts are narrower: fewer time labels, still apart, still flat.
    page.set_viewport_size(PHONE)
    page.wait_for_function(
        "id => Chart.getChart(document.getElementById(id)).width < 390", arg=f"{gpu}-canvas"
    )
    page.wait_for_timeout(100)  # the resize redraws every chart
    assert_charts_read_well(page.evaluate(CHART_FACTS), "phone")
