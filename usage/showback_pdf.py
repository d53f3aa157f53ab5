"""A month's showback as a PDF (reportlab's platypus): the same figures as the page and the CSV,
from the same `showback.Report` (no ORM here)."""

from __future__ import annotations

import io

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from usage import showback

ROW_LABELS = {"total": "Total", "itself": "itself", "subtree": "subtree", "day": ""}


def _cell(value: object) -> str:
    return "—" if value is None else str(value)


def _table(report: showback.Report, lines: list[tuple[str, showback.Line]]) -> Table:
    priced = bool(report.prices)
    header = ["", *[f"{r.label}\n{r.unit}\nused / allocated" for r in showback.RESOURCES]]
    if priced:
        header.append(f"Cost ({report.prices.currency})\nused / allocated")
    rows = [header]
    for label, line in lines:
        figures = showback.line_figures(line)
        row = [label]
        row += [
            f"{_cell(figures[f'{r.key}_used'])} / {_cell(figures[f'{r.key}_allocated'])}"
            for r in showback.RESOURCES
        ]
        if priced:
            row.append(f"{_cell(figures['cost_used'])} / {_cell(figures['cost_allocated'])}")
        rows.append(row)
    table = Table(rows, repeatRows=1, hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 7),
                ("FONT", (0, 1), (-1, -1), "Helvetica", 7),
                ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def showback_pdf(report: showback.Report, *, demo: bool) -> bytes:
    """The month's totals (the subtree, what it used itself, each sub-tenant), then every day."""
    buffer = io.BytesIO()
    window = report.window
    title = f"Showback {window.month:%Y-%m}: {report.total.name_path}"
    document = SimpleDocTemplate(
        buffer,
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=title,
        author="Canopy",
    )
    styles = getSampleStyleSheet()
    span = f"{window.start:%Y-%m-%d %H:%M} to {window.end:%Y-%m-%d %H:%M} UTC"
    story: list[Flowable] = [
        Paragraph(title, styles["Title"]),
        Paragraph(
            f"{span}{'' if window.complete else ' (the month so far)'}. From the usage rollups: each hour's "
            "average (a day's, before the hourly ones are kept) x its hours; allocated figures are the "
            "allocations (HDFS: the quota); a tenant's row is its whole subtree.",
            styles["Normal"],
        ),
    ]
    if demo:
        story.append(Paragraph("Demo figures: made up by the embedded demo's generator.", styles["Normal"]))
    if report.prices:
        story.append(Paragraph(f"Costs at the pools' prices, in {report.prices.currency}.", styles["Normal"]))
    story.append(Spacer(1, 4 * mm))
    lines = [("Total", report.total)]
    lines += [
        (f"{line.name_path} ({ROW_LABELS[line.kind]})", line) for line in report.lines if line.kind != "total"
    ]
    story.append(_table(report, lines))
    story += [Spacer(1, 6 * mm), Paragraph("Per day", styles["Heading2"])]
    story.append(_table(report, [(day.isoformat(), line) for day, line in report.day_lines()]))
    document.build(story)
    return buffer.getvalue()
