"""Spreadsheet files Canopy hands out (CSV), written by one helper so none can forget to neutralise
formulas (CSV injection, OWASP): a text cell starting with = + - @, a tab or a carriage return is
read by Excel, LibreOffice and Google Sheets as a formula (`=HYPERLINK(...)`, `@SUM(...)`,
`-2+3+cmd|'/c calc'!A0`), so it gets a leading single quote, which they show as text.

Numbers stay numbers: a cell that is an int, float or Decimal is written as the number, a negative
one too (a spreadsheet reads "-5" as minus five and runs nothing). Text that merely looks like a
negative number ("-5" as a name) is text, and is quoted like any other."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from django.http import HttpResponse

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
Cell = str | int | float | Decimal | None


def spreadsheet_cell(value: Cell) -> Any:
    """The value as a CSV cell no spreadsheet runs: numbers as they are, risky text quoted."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float | Decimal):
        return value
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_TRIGGERS) else text


def csv_response(filename: str, rows: Iterable[Sequence[Cell]]) -> HttpResponse:
    """A CSV download (UTF-8, one header row first) with every cell passed through `spreadsheet_cell`."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    # RFC 4180's CRLF: the csv module quotes a cell holding any character of the line terminator, so
    # with CRLF a carriage return inside a cell is quoted too (with "\n" alone it split the row).
    writer = csv.writer(response, lineterminator="\r\n")
    writer.writerows([spreadsheet_cell(cell) for cell in row] for row in rows)
    return response
