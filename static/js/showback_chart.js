/* Draws the showback's charts (one per resource: each day's used and allocated units) with the
 * vendored Chart.js from the figures the page embeds (<script type="application/json">, named by
 * each canvas's data-showback-chart). Used is solid with circles, allocated dashed with squares:
 * never told apart by colour alone; the table under the charts has every figure. */
(function () {
  "use strict";

  const format = new Intl.NumberFormat("en", { maximumFractionDigits: 3, useGrouping: false });

  function draw(canvas) {
    if (typeof Chart === "undefined" || Chart.getChart(canvas)) return;
    const source = document.getElementById(canvas.dataset.showbackChart);
    if (!source) return;
    const data = JSON.parse(source.textContent);
    new Chart(canvas, {
      type: "line",
      data: {
        labels: data.labels.map((day) => day.slice(5)),
        datasets: [
          { label: "Used", data: data.used, borderColor: "#1f6feb", backgroundColor: "#1f6feb",
            pointStyle: "circle", borderWidth: 2, spanGaps: false, order: 2 },
          { label: "Allocated", data: data.allocated, borderColor: "#6e7781", backgroundColor: "#6e7781",
            borderDash: [6, 4], pointStyle: "rect", borderWidth: 2, spanGaps: false, order: 1 },
        ],
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: { y: { beginAtZero: true, ticks: { callback: (value) => format.format(value) } } },
        plugins: {
          legend: { labels: { usePointStyle: true } },
          tooltip: { callbacks: { label: (item) => `${item.dataset.label}: ${format.format(item.parsed.y)}` } },
        },
      },
    });
  }

  function drawAll() {
    document.querySelectorAll("canvas[data-showback-chart]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", drawAll);
  document.addEventListener("htmx:afterSettle", drawAll);
})();
