"""Filters for showing amounts the way Kubernetes and YARN users read them."""

from decimal import Decimal
from typing import Any

from django import template

from tenants.amounts import RESOURCE_BY_NAME, percent_human

register = template.Library()


@register.filter
def amount(value: Any, resource: str) -> str:
    """`{{ allocation.cpu_millicores|amount:"cpu" }}` -> "8 CPU"; None -> "unlimited"."""
    if resource == "capacity":
        return percent_human(value) if value is not None else "-"
    return RESOURCE_BY_NAME[resource].human(value)


@register.filter
def percent(value: Decimal | None) -> str:
    return percent_human(value)


@register.filter
def change_summary(event: Any) -> str:
    """'gpu: 2 -> 1; cpu_millicores: 8000 -> 4000' for the fields an audit event changed."""
    before, after = event.before or {}, event.after or {}
    keys = [k for k in dict.fromkeys([*before, *after]) if before.get(k) != after.get(k)]
    parts = []
    for key in keys[:6]:
        if key in before and key in after:
            parts.append(f"{key}: {before[key]} → {after[key]}")
        elif key in after:
            parts.append(f"{key}: {after[key]}")
        else:
            parts.append(f"{key} was {before[key]}")
    return "; ".join(parts)
