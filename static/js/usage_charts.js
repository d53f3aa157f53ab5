/* Draws the Monitoring tab's charts with the vendored Chart.js from the figures the server embeds
 * (<script type="application/json" id="...">, referenced by each canvas's data-chart). Used and
 * allocated differ by line style (solid / dashed) and point shape (circle / square), never by
 * colour alone; so do the extra lines a Kueue cluster adds (borrowed: dotted, triangles; pending:
 * dash-dotted, crosses). The legend names every line, and a table under each chart has every figure. */
(function () {
  "use strict";

  function timeFormat(zone, spanMs) {
    const options = { timeZone: zone || undefined, hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    if (spanMs > 36 * 3600 * 1000) {
      options.month = "short";
      options.day = "numeric";
    }
    return new Intl.DateTimeFormat(undefined, options);
  }

  function draw(canvas) {
    if (typeof Chart === "undefined" || Chart.getChart(canvas)) return;
    const source = document.getElementById(canvas.dataset.chart);
    if (!source) return;
    const data = JSON.parse(source.textContent);
    const zone = canvas.closest("[data-time-zone]")?.dataset.timeZone;
    const points = data.points;
    const span = points.length ? points[points.length - 1][0] - points[0][0] : 0;
    const ticks = timeFormat(zone, span);
    const full = new Intl.DateTimeFormat(undefined, {
      timeZone: zone || undefined, dateStyle: "medium", timeStyle: "short", hourCycle: "h23",
    });
    // Point shapes tell the lines apart where points are few; the dash pattern always does.
    const radius = points.length > 90 ? 0 : 2;
    const line = (label, index, dash, pointStyle, colour) => ({
      label: label,
      data: points.map((p) => ({ x: p[0], y: p[index] })),
      borderColor: colour,
      backgroundColor: colour,
      borderDash: dash,
      borderWidth: 2,
      pointStyle: pointStyle,
      pointRadius: radius,
      spanGaps: false,
    });
    new Chart(canvas, {
      type: "line",
      data: {
        datasets: [
          line(data.used_label + " (solid line)", 1, [], "circle", "#0969da"),
          line(data.allocated_label + " (dashed line)", 2, [6, 4], "rect", "#57606a"),
          ...(data.extra_labels || []).map((label, index) =>
            index % 2 === 0
              ? line(label + " (dotted line)", 3 + index, [2, 3], "triangle", "#bc4c00")
              : line(label + " (dash-dotted line)", 3 + index, [8, 3, 2, 3], "crossRot", "#8250df")),
        ],
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        parsing: true,
        interaction: { mode: "nearest", axis: "x", intersect: false },
        scales: {
          x: { type: "linear", min: data.start ?? undefined, max: data.end ?? undefined, ticks: { maxTicksLimit: 8, callback: (value) => ticks.format(value) } },
          y: { beginAtZero: true, title: { display: true, text: data.unit } },
        },
        plugins: {
          legend: { labels: { usePointStyle: true } },
          tooltip: {
            callbacks: {
              title: (items) => (items.length ? full.format(items[0].parsed.x) : ""),
              label: (item) => `${item.dataset.label.replace(/ \(.*\)$/, "")}: ${item.parsed.y} ${data.unit}`,
            },
          },
        },
      },
    });
  }

  function drawAll(root) {
    (root || document).querySelectorAll("canvas[data-chart]").forEach(draw);
  }

  // Charts about to be swapped out free their canvas (polling replaces the tab every minute).
  document.addEventListener("htmx:beforeSwap", (event) => {
    const target = event.detail.target;
    if (!target || typeof Chart === "undefined") return;
    target.querySelectorAll("canvas[data-chart]").forEach((canvas) => Chart.getChart(canvas)?.destroy());
  });
  document.addEventListener("htmx:afterSettle", () => drawAll(document));
  document.addEventListener("DOMContentLoaded", () => drawAll(document));
})();
