"""Kubernetes quantity strings ("500m", "8", "60Gi") to exact integers and back.

Parsing is the official client's `parse_quantity`; we only decide the unit we store:
CPU in millicores (Kubernetes' own resolution), memory in bytes, GPUs as a count.
"""

from decimal import Decimal, InvalidOperation

from kubernetes.utils.quantity import parse_quantity

UNLIMITED_WORDS = {"unlimited", ""}

_BINARY_SUFFIXES = [("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)]
_DECIMAL_SUFFIXES = [("E", 10**18), ("P", 10**15), ("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)]


class QuantityError(ValueError):
    """A value that is not a quantity of the expected kind; the message is shown to the user."""


def _to_decimal(value: object) -> Decimal:
    if isinstance(value, bool):
        raise QuantityError("Expected a quantity such as 8, 500m or 60Gi, not a boolean.")
    if isinstance(value, int | Decimal):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(str(value))
    elif isinstance(value, str):
        try:
            number = parse_quantity(value.strip())
        except (ValueError, InvalidOperation, TypeError) as exc:
            raise QuantityError(
                f"{value!r} is not a Kubernetes quantity (examples: 8, 500m, 1.5, 60Gi, 512Mi)."
            ) from exc
    else:
        raise QuantityError("Expected a quantity such as 8, 500m or 60Gi.")
    if number < 0:
        raise QuantityError("A quantity cannot be negative.")
    return number


def is_unlimited(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in UNLIMITED_WORDS)


def parse_cpu_millicores(value: object) -> int:
    """'500m' -> 500, '2' -> 2000, 1.5 -> 1500. Finer than a millicore is refused."""
    millicores = _to_decimal(value) * 1000
    if millicores != millicores.to_integral_value():
        raise QuantityError("CPU is counted in whole millicores (1m = 0.001 CPU); use e.g. 250m or 0.25.")
    return int(millicores)


def parse_memory_bytes(value: object) -> int:
    """'60Gi' -> 64424509440, '1G' -> 1000000000. Fractions of a byte are refused."""
    number = _to_decimal(value)
    if number != number.to_integral_value():
        raise QuantityError(
            "Memory is counted in whole bytes; use a unit such as Mi or Gi (e.g. 512Mi, 60Gi)."
        )
    return int(number)


def parse_count(value: object, what: str = "GPUs") -> int:
    """GPUs and file counts: whole, non-negative numbers ('2', 2; '1.5' and '500m' are refused)."""
    number = _to_decimal(value)
    if number != number.to_integral_value():
        raise QuantityError(f"{what} are counted in whole units.")
    return int(number)


def format_cpu(millicores: int | None) -> str | None:
    if millicores is None:
        return None
    if millicores % 1000 == 0:
        return str(millicores // 1000)
    return f"{millicores}m"


def format_memory(num_bytes: int | None) -> str | None:
    """The shortest exact form: binary suffixes first (Kubernetes users write Gi), then decimal ones."""
    if num_bytes is None:
        return None
    if num_bytes == 0:
        return "0"
    for suffixes in (_BINARY_SUFFIXES, _DECIMAL_SUFFIXES):
        for suffix, factor in suffixes:
            if num_bytes % factor == 0:
                return f"{num_bytes // factor}{suffix}"
    return str(num_bytes)


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
