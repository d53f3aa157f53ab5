"""tenants/quantities.py: Kubernetes quantity strings to exact integers (millicores, bytes, counts)
and back to the form Kubernetes users write."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tenants import quantities as q
from tenants.quantities import QuantityError

KI, MI, GI, TI = 2**10, 2**20, 2**30, 2**40


# ---------------------------------------------------------------------------------------------
# CPU


@pytest.mark.parametrize(
    ("value", "millicores"),
    [
        ("500m", 500),
        ("1m", 1),
        ("0.5", 500),
        (0.5, 500),
        ("1.5", 1500),
        (1.5, 1500),
        ("8", 8000),
        (8, 8000),
        (Decimal("0.25"), 250),
        ("0.001", 1),
        ("1e3", 1_000_000),
        ("2k", 2_000_000),
        (" 2 ", 2000),
        ("0", 0),
        (0, 0),
    ],
)
def test_cpu_is_parsed_to_millicores(value, millicores):
    assert q.parse_cpu_millicores(value) == millicores


@pytest.mark.parametrize(
    ("millicores", "text"),
    [(0, "0"), (1, "1m"), (250, "250m"), (500, "500m"), (1000, "1"), (1500, "1500m"), (12_000, "12")],
)
def test_cpu_is_formatted_in_whole_cores_or_millicores(millicores, text):
    assert q.format_cpu(millicores) == text


@pytest.mark.parametrize("millicores", [0, 1, 250, 999, 1000, 1500, 8000, 12_000, 10**9])
def test_cpu_round_trips_through_its_text(millicores):
    assert q.parse_cpu_millicores(q.format_cpu(millicores)) == millicores


@pytest.mark.parametrize("value", ["0.0005", "0.0001", "1u", "1n", "1.0005", 0.0005])
def test_cpu_finer_than_a_millicore_is_refused(value):
    with pytest.raises(QuantityError, match="whole millicores"):
        q.parse_cpu_millicores(value)


# ---------------------------------------------------------------------------------------------
# Memory


@pytest.mark.parametrize(
    ("value", "num_bytes"),
    [
        ("60Gi", 60 * GI),
        (64424509440, 60 * GI),
        ("512Mi", 512 * MI),
        ("1.5Gi", 1536 * MI),
        ("1Ki", KI),
        ("10Ti", 10 * TI),
        ("1G", 10**9),
        ("1k", 1000),
        ("1e3", 1000),
        ("100", 100),
        ("0", 0),
    ],
)
def test_memory_is_parsed_to_bytes(value, num_bytes):
    assert q.parse_memory_bytes(value) == num_bytes


@pytest.mark.parametrize(
    ("num_bytes", "text"),
    [
        (0, "0"),
        (60 * GI, "60Gi"),
        (90 * GI, "90Gi"),
        (512 * MI, "512Mi"),
        (1536 * MI, "1536Mi"),
        (10 * TI, "10Ti"),
        (2**60, "1Ei"),
        (10**9, "1G"),
        (1000, "1k"),
        (1500, "1500"),
        (123_456_789, "123456789"),
    ],
)
def test_memory_is_formatted_with_the_largest_exact_suffix(num_bytes, text):
    assert q.format_memory(num_bytes) == text


@pytest.mark.parametrize(
    "num_bytes",
    [0, 1, 999, 1000, KI, 1536 * MI, 60 * GI, 10**9, 10**12, 4 * 10**9, 2**60, 3 * 10**18, 123_456_789],
)
def test_memory_round_trips_through_its_text(num_bytes):
    assert q.parse_memory_bytes(q.format_memory(num_bytes)) == num_bytes


@pytest.mark.parametrize(("text", "num_bytes"), [("1T", 10**12), ("4G", 4 * 10**9), ("10T", 10 * 10**12)])
def test_decimal_memory_comes_back_in_its_short_form(text, num_bytes):
    assert q.format_memory(q.parse_memory_bytes(text)) == text


@pytest.mark.parametrize("value", ["0.5", 0.5, "500m", "1.5", "1e-3", "1u"])
def test_fractions_of_a_byte_are_refused(value):
    with pytest.raises(QuantityError, match="whole bytes"):
        q.parse_memory_bytes(value)


@pytest.mark.parametrize(
    ("num_bytes", "text"),
    [
        (None, "unlimited"),
        (0, "0 B"),
        (1023, "1023 B"),
        (KI, "1 KiB"),
        (60 * GI, "60 GiB"),
        (1536 * GI, "1.5 TiB"),
    ],
)
def test_memory_for_pages_is_human(num_bytes, text):
    assert q.format_memory_human(num_bytes) == text


# ---------------------------------------------------------------------------------------------
# Counts (GPUs, file quotas)


@pytest.mark.parametrize(
    ("value", "count"), [("2", 2), (2, 2), ("1M", 1_000_000), (1_000_000, 1_000_000), ("0", 0)]
)
def test_counts_are_whole_numbers(value, count):
    assert q.parse_count(value) == count


@pytest.mark.parametrize("value", ["1.5", 1.5, "500m", "0.1"])
def test_fractional_counts_are_refused_with_what_is_counted(value):
    with pytest.raises(QuantityError, match="GPUs are counted in whole units"):
        q.parse_count(value)
    with pytest.raises(QuantityError, match="Files are counted in whole units"):
        q.parse_count(value, what="Files")


# ---------------------------------------------------------------------------------------------
# Refusals shared by every kind

PARSERS = [q.parse_cpu_millicores, q.parse_memory_bytes, q.parse_count]


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize("value", ["-1", -1, "-500m", "-60Gi", -0.5, Decimal("-1")])
def test_negative_values_are_refused(parse, value):
    with pytest.raises(QuantityError, match="cannot be negative"):
        parse(value)


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_refused(parse, value):
    with pytest.raises(QuantityError, match="not a boolean"):
        parse(value)


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize(
    "value", ["60GB", "8 cores", "abc", "1Gb", "10gi", "1.5.2", "0x10", "Gi", "1iG", "Gi1"]
)
def test_unknown_units_and_garbage_are_refused_naming_the_value(parse, value):
    with pytest.raises(QuantityError) as exc:
        parse(value)
    assert f"{value!r} is not a Kubernetes quantity" in str(exc.value)


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize("value", ["2 Gi", "1 k", "1_000"])
def test_strings_kubernetes_itself_refuses_are_refused(parse, value):
    with pytest.raises(QuantityError):
        parse(value)


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize("value", [None, [], {}, object()])
def test_values_of_other_types_are_refused(parse, value):
    with pytest.raises(QuantityError, match="Expected a quantity"):
        parse(value)


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize(
    "value",
    [
        pytest.param("NaN", id="NaN"),
        pytest.param("Infinity", id="Infinity"),
        pytest.param("inf", id="inf"),
        pytest.param(float("inf"), id="float-inf"),
    ],
)
def test_not_a_number_and_infinity_are_refused(parse, value):
    with pytest.raises(QuantityError):
        parse(value)


# ---------------------------------------------------------------------------------------------
# Unlimited


@pytest.mark.parametrize("value", [None, "unlimited", "Unlimited", " UNLIMITED ", "", "  "])
def test_unlimited_is_none_the_word_or_empty(value):
    assert q.is_unlimited(value)


@pytest.mark.parametrize("value", [0, "0", "none", "infinite", False])
def test_zero_and_other_words_are_not_unlimited(value):
    assert not q.is_unlimited(value)


@pytest.mark.parametrize("format_", [q.format_cpu, q.format_memory])
def test_unlimited_is_formatted_as_none(format_):
    assert format_(None) is None
