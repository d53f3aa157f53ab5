"""Filters for measured figures (floats: averages of samples) and waiting workloads."""

from django import template

from tenants.quantities import format_memory_human
from usage import dashboards

register = template.Library()


@register.filter
def cores(millicores: float | None) -> str:
    """Measured CPU (a float of millicores) as cores: 1500.0 -> "1.5"."""
    if millicores is None:
        return "–"
    return f"{millicores / 1000:.3f}".rstrip("0").rstrip(".")


@register.filter
def bytes_human(value: float | None) -> str:
    """Measured bytes (a float) as '1.5 GiB'."""
    if value is None:
        return "–"
    return format_memory_human(round(value))


@register.filter
def in_line(position: int | None) -> str:
    """A waiting workload's place in its Kueue queue: `{{ 1|in_line }}` -> "first in line"."""
    return dashboards.in_line(position)
