"""Filters for showing amounts the way Kubernetes and YARN users read them."""

from decimal import Decimal
from typing import Any

from django import template
from django.conf import settings
from django.utils.safestring import mark_safe

from tenants.amounts import RESOURCE_BY_NAME, burst_phrase, percent_human

register = template.Library()


@register.filter
def amount(value: Any, resource: str) -> str:
    """`{{ allocation.cpu_millicores|amount:"cpu" }}` -> "8 CPU"; None -> "unlimited"."""
    if resource == "capacity":
        return percent_human(value) if value is not None else "-"
    return RESOURCE_BY_NAME[resource].human(value)


@register.filter
def allocated(row: Any, resource: str) -> str:
    """`{{ allocation|allocated:"gpu" }}` -> "2 GPUs", or with a burst "guaranteed 2, may burst to
    4 GPUs" (an allocation or a plan's row)."""
    found = RESOURCE_BY_NAME[resource]
    return burst_phrase(found, getattr(row, found.field), getattr(row, found.burst_field))


@register.filter
def left_amount(value: Any, resource: str) -> str:
    """What is left, never shown as more than it is: "4294967295 bytes (3.99 GiB)", not "4 GiB"."""
    if resource == "capacity":
        return percent_human(value) if value is not None else "-"
    return RESOURCE_BY_NAME[resource].exactly(value)


@register.filter
def percent(value: Decimal | None) -> str:
    return percent_human(value)


@register.simple_tag
def demo_usage_label() -> str:
    """On every page that shows usage: made-up figures say so (the embedded demo's generator)."""
    if not settings.CANOPY_DEMO_USAGE:
        return ""
    return mark_safe(  # nosec B308 # a constant string, nothing from a user
        '<p class="demo-label" role="note"><strong>Demo figures — made up, not read from a cluster.</strong></p>'
    )
