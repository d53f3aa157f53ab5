"""Resource pools of a cluster (platform admins): capacities that level-1 allocations must fit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from tenants import labels, rules
from tenants.audit import audited_delete, audited_save, snapshot
from tenants.changes import TenantChange, change_record
from tenants.models import (
    Allocation,
    Cluster,
    QuotaPlan,
    ResourcePool,
    Tenant,
)
from tenants.permissions import AnyUser, require_platform_admin
from tenants.services._common import _errors, _lock_pools, _raise_if
from tenants.services.allocations import _holding, _pool_figures

POOL_FIELDS = (
    "name",
    "node_selector",
    "description",
    "gpu_capacity",
    "cpu_capacity_millicores",
    "memory_capacity_bytes",
)


POOL_API_NAMES = {"cpu_capacity_millicores": "cpu_capacity", "memory_capacity_bytes": "memory_capacity"}


def _clean_pool(pool: ResourcePool) -> None:
    """Django's field checks, with errors under the API's names."""
    try:
        pool.full_clean()
    except ValidationError as exc:
        raise ValidationError({POOL_API_NAMES.get(k, k): v for k, v in exc.message_dict.items()}) from exc


def _pool_errors(pool: ResourcePool) -> dict[str, list[str]]:
    errors = _errors()
    check_selector = labels.yarn_node_label_errors if pool.is_yarn else labels.node_selector_errors
    selector_errors = check_selector(pool.node_selector)
    if selector_errors:
        errors["node_selector"] = selector_errors
    level1 = Allocation.objects.filter(pool=pool, tenant__depth=1).select_related("tenant") if pool.pk else []
    rules.extend(errors, rules.pool_errors(_pool_figures(pool), [_holding(row) for row in level1]))
    return errors


def pool_create(
    *,
    acting_user: AnyUser,
    cluster: Cluster,
    name: str,
    node_selector: str = "",
    description: str = "",
    gpu_capacity: int = 0,
    cpu_capacity_millicores: int = 0,
    memory_capacity_bytes: int = 0,
) -> ResourcePool:
    require_platform_admin(acting_user)
    pool = ResourcePool(
        cluster=cluster,
        name=name,
        node_selector=node_selector,
        description=description,
        gpu_capacity=gpu_capacity,
        cpu_capacity_millicores=cpu_capacity_millicores,
        memory_capacity_bytes=memory_capacity_bytes,
    )
    _clean_pool(pool)
    _raise_if(_pool_errors(pool))
    with transaction.atomic():
        audited_save(pool, acting_user=acting_user, action="POOL_CREATED", tenant=None, after=POOL_FIELDS)
    return pool


def pool_update(*, acting_user: AnyUser, pool: ResourcePool, **changes: Any) -> ResourcePool:
    """Change a pool's selector, description or capacity. Capacity never drops below what level-1
    tenants hold; the error names them."""
    require_platform_admin(acting_user)
    allowed = set(POOL_FIELDS) - {"name"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError({name: ["This field cannot be changed."] for name in unknown})
    with transaction.atomic():
        pool = _lock_pools([pool])[pool.pk]
        before = snapshot(pool, POOL_FIELDS)
        for name, value in changes.items():
            setattr(pool, name, value)
        _clean_pool(pool)
        _raise_if(_pool_errors(pool))
        audited_save(
            pool,
            acting_user=acting_user,
            action="POOL_UPDATED",
            tenant=None,
            before=before,
            after=POOL_FIELDS,
        )
        if before["node_selector"] != pool.node_selector:
            # Where the pool's pods may run (Kueue flavors, namespaces' pools, YARN partitions).
            change_record(
                TenantChange(
                    tenants=list(Tenant.objects.filter(allocations__pool=pool).distinct()),
                    reason="POOL_UPDATED",
                )
            )
    return pool


@dataclass
class PoolDeletionImpact:
    """What deleting a pool would take or is held up by: the default pool stays, tenants holding
    allocations in it (`holders`) keep it; the `plans`' entries for it go with it."""

    is_default: bool
    holders: list[Tenant] = field(default_factory=list)
    plans: list[str] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return self.is_default or bool(self.holders)


def pool_deletion_impact(pool: ResourcePool) -> PoolDeletionImpact:
    """What deleting `pool` would take with it, or what keeps it (two queries)."""
    return PoolDeletionImpact(
        is_default=pool.name == ResourcePool.DEFAULT_NAME,
        holders=list(Tenant.objects.filter(allocations__pool=pool).order_by("name_path")),
        plans=list(
            QuotaPlan.objects.filter(allocations__pool=pool).order_by("name").values_list("name", flat=True)
        ),
    )


def pool_delete(*, acting_user: AnyUser, pool: ResourcePool) -> None:
    """Delete a pool and the plans' entries for it; never a cluster's default pool, and refused,
    naming them, while tenants hold allocations in it."""
    require_platform_admin(acting_user)
    with transaction.atomic():
        pool = _lock_pools([pool])[pool.pk]
        impact = pool_deletion_impact(pool)
        if impact.is_default:
            raise ValidationError({"name": ["Every cluster keeps its default pool."]})
        if impact.holders:
            holders = ", ".join(tenant.name_path for tenant in impact.holders)
            raise ValidationError(
                {"pool": [f"Tenants {holders} have allocations in {pool}; remove them first."]}
            )
        audited_delete(
            pool,
            acting_user=acting_user,
            action="POOL_DELETED",
            tenant=None,
            before=snapshot(pool, POOL_FIELDS),
        )
