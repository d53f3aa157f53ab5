/* Draws the Monitoring tab's charts with the vendored Chart.js from the figures the server embeds
 * (<script type="application/json" id="...">, referenced by each canvas's data-chart). Used and
 * allocated differ by line style (solid / dashed) and point shape (circle / square), never by
 * colour alone; so do the extra lines a Kueue cluster adds (borrowed: dotted, triangles; pending:
 * dash-dotted, crosses). The legend names every line, and a table under each chart has every figure.
 *
 * Issue 18, point 10: the allocated line is drawn on top of the used one, so it stays visible where
 * they are equal; the time axis has ticks on round times, labels that never overlap (fewer ticks on
 * a narrow chart, never rotated); every number (axis and tooltip) goes through one formatter with
 * the chart's precision (the server's `decimals`, as in its table), counted things on whole steps,
 * never an exponent. */
(function () {
  "use strict";

  const MINUTE = 60 * 1000;
  const HOUR = 60 * MINUTE;
  const DAY = 24 * HOUR;
  // Tick spacings of the time axis, the smallest that leaves room for every label is taken.
  const STEPS = [MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR,
    3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 28 * DAY];
  const LABEL_GAP = 16; // pixels between two time labels at the least

  /* The one number format of a chart: `decimals` digits after the point, a point, no grouping (as
   * the figures table writes them), never an exponent. */
  function numberFormat(decimals) {
    const format = new Intl.NumberFormat("en", {
      minimumFractionDigits: decimals, maximumFractionDigits: decimals, useGrouping: false,
    });
    return (value) => format.format(value);
  }

  function timeFormat(zone, step, span) {
    const options = { timeZone: zone || undefined };
    if (step < DAY) Object.assign(options, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    if (step >= DAY || span > 36 * HOUR) Object.assign(options, { month: "short", day: "numeric" });
    return new Intl.DateTimeFormat(undefined, options);
  }

  // Milliseconds the zone's wall clock is ahead of UTC at `time`.
  function zoneOffset(zone, time) {
    const parts = {};
    new Intl.DateTimeFormat("en-US", {
      timeZone: zone || undefined, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric",
      hour: "numeric", minute: "numeric", second: "numeric",
    }).formatToParts(time).forEach((part) => { parts[part.type] = Number(part.value); });
    const wall = Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second);
    return wall - Math.floor(time / 1000) * 1000;
  }

  /* Ticks on round times of the zone (whole hours, midnights) from `min` to `max`, as many as fit
   * in `width` pixels with labels as wide as `labelWidth(format)` says; the label format follows
   * the spacing (times within a day and a half, dates from a day's spacing up). */
  function timeTicks(min, max, zone, width, labelWidth) {
    const span = max - min;
    let step = STEPS[STEPS.length - 1];
    for (const candidate of STEPS) {
      const fits = Math.floor(width / (labelWidth(timeFormat(zone, candidate, span)) + LABEL_GAP));
      if (span / candidate <= Math.max(fits - 1, 1)) {
        step = candidate;
        break;
      }
    }
    const format = timeFormat(zone, step, span);
    const ticks = [];
    const first = Math.ceil((min + zoneOffset(zone, min)) / step) * step;
    for (let wall = first; ticks.length < 100; wall += step) {
      const time = wall - zoneOffset(zone, wall - zoneOffset(zone, min));
      if (time > max) break;
      if (time >= min) ticks.push({ value: time });
    }
    return { ticks, format };
  }

  function draw(canvas) {
    if (typeof Chart === "undefined" || Chart.getChart(canvas)) return;
    const source = document.getElementById(canvas.dataset.chart);
    if (!source) return;
    const data = JSON.parse(source.textContent);
    const zone = canvas.closest("[data-time-zone]")?.dataset.timeZone;
    const points = data.points;
    const decimals = data.decimals ?? 1;
    const figure = numberFormat(decimals);
    const full = new Intl.DateTimeFormat(undefined, {
      timeZone: zone || undefined, dateStyle: "medium", timeStyle: "short", hourCycle: "h23",
    });
    // Point shapes tell the lines apart where points are few; the dash pattern always does.
    const radius = points.length > 90 ? 0 : 2;
    // `order`: lower is drawn later, on top. Allocated (dashed) goes over used (solid, wider), so
    // where they are equal both still show: grey dashes on the blue line.
    const line = (label, index, dash, pointStyle, colour, width, order) => ({
      label: label,
      data: points.map((p) => ({ x: p[0], y: p[index] })),
      borderColor: colour,
      backgroundColor: colour,
      borderDash: dash,
      borderWidth: width,
      pointStyle: pointStyle,
      pointRadius: radius,
      spanGaps: false,
      order: order,
    });
    let timeLabels = null; // the format the last tick layout chose
    new Chart(canvas, {
      type: "line",
      data: {
        datasets: [
          line(data.used_label + " (solid line)", 1, [], "circle", "#0969da", 3, 3),
          line(data.allocated_label + " (dashed line)", 2, [6, 4], "rect", "#3d444d", 2, 0),
          ...(data.extra_labels || []).map((label, index) =>
            index % 2 === 0
              ? line(label + " (dotted line)", 3 + index, [2, 3], "triangle", "#bc4c00", 2, 1)
              : line(label + " (dash-dotted line)", 3 + index, [8, 3, 2, 3], "crossRot", "#8250df", 2, 2)),
        ],
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        parsing: true,
        interaction: { mode: "nearest", axis: "x", intersect: false },
        scales: {
          x: {
            type: "linear",
            min: data.start ?? undefined,
            max: data.end ?? undefined,
            afterBuildTicks: (scale) => {
              const font = Chart.helpers.toFont(scale.options.ticks.font).string;
              const context = scale.ctx;
              const labelWidth = (format) => {
                context.save();
                context.font = font;
                // The widest a label of this format gets: a two-digit day and a wide month.
                const widest = context.measureText(format.format(Date.UTC(2026, 11, 28, 22, 58))).width;
                context.restore();
                return widest;
              };
              const laid = timeTicks(scale.min, scale.max, zone, scale.width, labelWidth);
              scale.ticks = laid.ticks;
              timeLabels = laid.format;
            },
            ticks: {
              maxRotation: 0, // never slanted: fewer ticks instead
              autoSkip: true,
              autoSkipPadding: LABEL_GAP,
              callback: (value) => (timeLabels ? timeLabels.format(value) : full.format(value)),
            },
          },
          y: {
            beginAtZero: true,
            title: { display: true, text: data.unit },
            // Counted things (GPUs, files, workloads) on whole steps; else no finer than the precision.
            ticks: {
              precision: data.counted ? 0 : decimals,
              callback: data.counted ? numberFormat(0) : figure,
            },
          },
        },
        plugins: {
          legend: { labels: { usePointStyle: true, sort: (a, b) => a.datasetIndex - b.datasetIndex } },
          tooltip: {
            itemSort: (a, b) => a.datasetIndex - b.datasetIndex,
            callbacks: {
              title: (items) => (items.length ? full.format(items[0].parsed.x) : ""),
              label: (item) => `${item.dataset.label.replace(/ \(.*\)$/, "")}: ${figure(item.parsed.y)} ${data.unit}`,
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
