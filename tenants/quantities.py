"""Kubernetes quantity strings ("500m", "8", "60Gi") to exact integers and back.

Parsing is the official client's `parse_quantity`; we only decide the unit we store:
CPU in millicores (Kubernetes' own resolution), memory in bytes, GPUs as a count.
"""

import re
import unicodedata
from decimal import Decimal, InvalidOperation

from kubernetes.utils.quantity import parse_quantity

UNLIMITED_WORDS = {"unlimited", ""}

# Kubernetes' own grammar (apimachinery resource.ParseQuantity: <digit> ::= 0 | 1 | ... | 9, signs
# "+" and "-", the suffixes below). The client's parser is laxer: it takes "2 Gi", "1_000", "NaN" and,
# through Python's Decimal, digits of any script ("٢", "１２"), which an API server refuses in a quota.
# [0-9], not \d: in a str pattern \d is any Unicode decimal digit.
QUANTITY = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[KMGTPE]i|[numkMGTPE])?")
# Only ASCII white space around a quantity is ignored (as a form trims it), not a no-break or
# ideographic space: str.strip() would drop those too.
ASCII_SPACE = " \t\n\r\f\v"
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
        text = value.strip(ASCII_SPACE)
        refusal = non_ascii_refusal(value)
        if refusal:
            raise QuantityError(refusal)
        if not QUANTITY.fullmatch(text):
            raise invalid
        try:
            number = parse_quantity(text)
        except (ValueError, InvalidOperation, TypeError, OverflowError) as exc:
            raise invalid from exc
    else:
        raise QuantityError("Expected a quantity such as 8, 500m or 60Gi.")
    if not number.is_finite():
        raise invalid
    if number < 0:
        raise QuantityError("A quantity cannot be negative.")
    return number


def non_ascii_refusal(
    value: str, what: str = "a Kubernetes quantity", examples: str = "8, 500m, 1.5, 60Gi, 512Mi"
) -> str | None:
    """Why `value` (trimmed of ASCII white space) is refused for holding a character that is not
    ASCII (a digit of another script, a full-width or no-break space, a minus sign), or None."""
    text = value.strip(ASCII_SPACE)
    char = next((c for c in text if not c.isascii()), None)
    if char is None:
        return None
    name = unicodedata.name(char, "a character without a name")
    return (
        f"{value!r} is not {what}: {char!r} (U+{ord(char):04X} {name}) is not allowed; "
        f"write it with the ASCII digits 0-9 (examples: {examples})."
    )


def is_unlimited(value: object) -> bool:
    """None, "", or "unlimited" in any case, with only ASCII white space around it."""
    if value is None:
        return True
    if not isinstance(value, str):
        return False
    text = value.strip(ASCII_SPACE)
    return text.isascii() and text.lower() in UNLIMITED_WORDS


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


def format_memory_exact(num_bytes: int | None) -> str:
    """For figures a refusal or a hint gives (what is left, held, free): never more than the amount.
    '4 GiB' or '1.25 GiB' where two decimals of the binary unit say it exactly; otherwise the bytes,
    then the unit rounded down: '4294967295 bytes (3.99 GiB)', never '4 GiB'."""
    if num_bytes is None:
        return "unlimited"
    for suffix, factor in _BINARY_SUFFIXES:
        if num_bytes >= factor:
            hundredths = num_bytes * 100 // factor
            text = f"{hundredths // 100}.{hundredths % 100:02d}".rstrip("0").rstrip(".")
            if hundredths * factor == num_bytes * 100:
                return f"{text} {suffix}B"
            return f"{num_bytes} bytes ({text} {suffix}B)"
    return f"{num_bytes} B"
