"""Helpers the aggregates' services share: row locks, the tree's parent and children, error dicts."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError

from tenants.models import (
    ResourcePool,
    Tenant,
    dns_label_validator,
)


def _locked_tenant(tenant: Tenant) -> Tenant:
    return Tenant.objects.select_for_update().get(pk=tenant.pk)


def _lock_pools(pools: Iterable[ResourcePool]) -> dict[int, ResourcePool]:
    """Lock pool rows in id order (a fixed order, so two writers never deadlock)."""
    ids = sorted({pool.pk for pool in pools})
    return {
        pool.pk: pool
        for pool in ResourcePool.objects.select_for_update()
        .select_related("cluster")
        .filter(pk__in=ids)
        .order_by("pk")
    }


def _parent_of(tenant: Tenant) -> Tenant | None:
    parent_path = tenant.parent_tree_path
    return Tenant.objects.get(path=parent_path) if parent_path else None


def _children_filter(parent: Tenant | None, prefix: str = "") -> dict[str, Any]:
    if parent is None:
        return {f"{prefix}depth": 1}
    return {f"{prefix}depth": parent.depth + 1, f"{prefix}path__startswith": parent.path}


def _errors() -> defaultdict[str, list[str]]:
    return defaultdict(list)


def _raise_if(errors: dict[str, list[str]]) -> None:
    if errors:
        raise ValidationError(dict(errors))


def _listed_once(items: Iterable[Any], field: str, what: str) -> dict[str, list[str]]:
    """Refuse a pool (or cluster) named twice in one request, by name: keeping one of the two rows
    silently would write something the caller did not ask for."""
    counts = Counter(items)
    errors = _errors()
    for item, count in counts.items():
        if count > 1:
            errors[field].append(f"{what} {item} is listed {count} times; list each {what.lower()} once.")
    return errors


def _validate_name(name: str, field_name: str = "name") -> None:
    try:
        dns_label_validator(name)
    except ValidationError as exc:
        raise ValidationError({field_name: exc.messages}) from exc
