"""Kubernetes quantity strings ("500m", "8", "60Gi") to exact integers and back.

Parsing is the official client's `parse_quantity`; we only decide the unit we store:
CPU in millicores (Kubernetes' own resolution), memory in bytes, GPUs as a count.
"""

import re
from decimal import Decimal, InvalidOperation

from kubernetes.utils.quantity import parse_quantity

UNLIMITED_WORDS = {"unlimited", ""}

# Kubernetes' own grammar (apimachinery resource.ParseQuantity). The client's parser is laxer: it takes
# "2 Gi", "1_000" and "NaN", which an API server would refuse in a quota.
_QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[KMGTPE]i|[numkMGTPE])?$")
# The largest amounts the database columns hold.
MAX_BIGINT = 2**63 - 1
MAX_INT = 2**31 - 1

_BINARY_SUFFIXES = [("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)]
_DECIMAL_SUFFIXES = [("E", 10**18), ("P", 10**15), ("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)]


class QuantityError(ValueError):
    """A value that is not a quantity of the expected kind; the message is shown to the user."""


def _to_decimal(value: object) -> Decimal:
    if isinstance(value, bool):
        raise QuantityError("Expected a quantity such as 8, 500m or 60Gi, not a boolean.")
    invalid = QuantityError(f"{value!r} is not a Kubernetes quantity (examples: 8, 500m, 1.5, 60Gi, 512Mi).")
    if isinstance(value, int | Decimal):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(str(value))
    elif isinstance(value, str):
        if not _QUANTITY.match(value.strip()):
            raise invalid
        try:
            number = parse_quantity(value.strip())
        except (ValueError, InvalidOperation, TypeError, OverflowError) as exc:
            raise invalid from exc
    else:
        raise QuantityError("Expected a quantity such as 8, 500m or 60Gi.")
    if not number.is_finite():
        raise invalid
    if number < 0:
        raise QuantityError("A quantity cannot be negative.")
    return number


def is_unlimited(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in UNLIMITED_WORDS)


def _at_most(number: Decimal, limit: int) -> int:
    if number > limit:
        raise QuantityError(f"That is more than Canopy can store (at most {limit}).")
    return int(number)


def parse_cpu_millicores(value: object) -> int:
    """'500m' -> 500, '2' -> 2000, 1.5 -> 1500. Finer than a millicore is refused."""
    millicores = _to_decimal(value) * 1000
    if millicores != millicores.to_integral_value():
        raise QuantityError("CPU is counted in whole millicores (1m = 0.001 CPU); use e.g. 250m or 0.25.")
    return _at_most(millicores, MAX_BIGINT)


def parse_memory_bytes(value: object) -> int:
    """'60Gi' -> 64424509440, '1G' -> 1000000000. Fractions of a byte are refused."""
    number = _to_decimal(value)
    if number != number.to_integral_value():
        raise QuantityError(
            "Memory is counted in whole bytes; use a unit such as Mi or Gi (e.g. 512Mi, 60Gi)."
        )
    return _at_most(number, MAX_BIGINT)


def parse_count(value: object, what: str = "GPUs", limit: int = MAX_INT) -> int:
    """GPUs and file counts: whole, non-negative numbers ('2', 2; '1.5' and '500m' are refused)."""
    number = _to_decimal(value)
    if number != number.to_integral_value():
        raise QuantityError(f"{what} are counted in whole units.")
    return _at_most(number, limit)


def parse_file_count(value: object) -> int:
    """HDFS namespace quotas: whole numbers up to what a 64-bit column holds."""
    return parse_count(value, what="Files", limit=MAX_BIGINT)


def format_cpu(millicores: int | None) -> str | None:
    if millicores is None:
        return None
    if millicores % 1000 == 0:
        return str(millicores // 1000)
    return f"{millicores}m"


def format_memory(num_bytes: int | None) -> str | None:
    """The shortest exact form; on a tie the binary one (Kubernetes users write Gi): 60Gi, 1T, 1500."""
    if num_bytes is None:
        return None
    if num_bytes == 0:
        return "0"
    candidates = [
        f"{num_bytes // factor}{suffix}"
        for suffix, factor in (*_BINARY_SUFFIXES, *_DECIMAL_SUFFIXES)
        if num_bytes % factor == 0
    ]
    return min([*candidates, str(num_bytes)], key=len)


def decimal_text(value: Decimal | None) -> str | None:
    """40.00 -> '40', 12.50 -> '12.5': never scientific notation."""
    if value is None:
        return None
    return f"{value.normalize():f}"


def format_memory_human(num_bytes: int | None) -> str:
    """For pages: '60 GiB', '1.5 TiB', 'unlimited'."""
    if num_bytes is None:
        return "unlimited"
    for suffix, factor in _BINARY_SUFFIXES:
        if num_bytes >= factor:
            value = Decimal(num_bytes) / factor
            text = f"{value:.1f}".rstrip("0").rstrip(".")
            return f"{text} {suffix}B"
    return f"{num_bytes} B"
