"""How quota requests are said: what may be asked for, by column and by name, and amounts in units
("GPUs: 2 GPUs (has 1 GPU)"). No queries."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from tenants.amounts import KUBERNETES_RESOURCES, percent_human

# The API's and the forms' names of what may be asked for, by column.
KUBERNETES_ASKED = {resource.field: resource.name for resource in KUBERNETES_RESOURCES}
YARN_ASKED = {"capacity_percent": "capacity", "max_capacity_percent": "max_capacity"}
ASKED_NAMES = {**KUBERNETES_ASKED, **YARN_ASKED}
ASKED_COLUMNS = tuple(ASKED_NAMES)
COLUMN_OF = {name: column for column, name in ASKED_NAMES.items()}


def asked_of(quota_request: Any) -> dict[str, Any]:
    """The totals a request asks for, by column (only those it names)."""
    return {
        column: getattr(quota_request, column)
        for column in ASKED_COLUMNS
        if getattr(quota_request, column) is not None
    }


def say(column: str, value: Any) -> str:
    """One amount of `column` in units: '2 GPUs', '64 GiB', '40 %'."""
    for resource in KUBERNETES_RESOURCES:
        if resource.field == column:
            return resource.exactly(value)
    return percent_human(None if value is None else Decimal(str(value)))


def asked_text(asked: Mapping[str, Any], held: Mapping[str, Any] | None = None) -> str:
    """'GPUs: 2 GPUs (has 1 GPU)', one amount after the other; `held`: what the tenant had (an
    amount missing from it: it had no allocation in the pool)."""
    parts = []
    for column, value in asked.items():
        had = ""
        if held is not None:
            had = f" (has {say(column, held[column])})" if column in held else " (has none)"
        parts.append(f"{amount_label(column)}: {say(column, value)}{had}")
    return ", ".join(parts)


def amount_label(column: str) -> str:
    """'GPUs', 'CPU', 'Memory', 'YARN capacity', 'YARN maximum capacity'."""
    for resource in KUBERNETES_RESOURCES:
        if resource.field == column:
            return resource.label
    return {"capacity_percent": "YARN capacity", "max_capacity_percent": "YARN maximum capacity"}[column]
