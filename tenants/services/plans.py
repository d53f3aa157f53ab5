"""Quota plans, and applying one to a tenant."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction

from tenants import rules
from tenants.audit import audit, audited_delete, audited_save, snapshot
from tenants.changes import TenantChange, change_record
from tenants.models import (
    Cluster,
    QuotaPlan,
    QuotaPlanAllocation,
    QuotaPlanStorage,
    StorageDirectory,
    Tenant,
)
from tenants.permissions import Action, AnyUser, require, require_platform_admin
from tenants.services._common import _errors, _listed_once, _locked_tenant, _parent_of, _raise_if
from tenants.services.allocations import ALLOCATION_FIELDS, AllocationSpec, _write_allocation
from tenants.services.storage import StorageSpec, _storage_update, _storage_write


def _plan_allocation_specs(plan: QuotaPlan) -> list[AllocationSpec]:
    return [
        AllocationSpec(pool=row.pool, **{name: getattr(row, name) for name in ALLOCATION_FIELDS})
        for row in plan.allocations.select_related("pool__cluster")
    ]


def _plan_storage_specs(plan: QuotaPlan) -> list[StorageSpec]:
    return [
        StorageSpec(cluster=row.cluster, space_quota_bytes=row.space_quota_bytes, file_quota=row.file_quota)
        for row in plan.storage.select_related("cluster")
    ]


def tenant_apply_plan(*, acting_user: AnyUser, tenant: Tenant, plan: QuotaPlan) -> Tenant:
    """Copy a plan's allocations and storage quotas onto a tenant. Later edits to the plan do not
    touch the tenant."""
    require(acting_user, Action.MANAGE, tenant)
    with transaction.atomic():
        tenant = _locked_tenant(tenant)
        parent = _parent_of(tenant)
        for spec in _plan_allocation_specs(plan):
            _write_allocation(acting_user=acting_user, tenant=tenant, spec=spec, parent=parent)
        for spec in _plan_storage_specs(plan):
            existing = (
                StorageDirectory.objects.filter(tenant=tenant, cluster=spec.cluster).order_by("pk").first()
            )
            if existing is None:
                _storage_write(acting_user=acting_user, tenant=tenant, spec=spec)
            else:
                _storage_update(
                    acting_user=acting_user,
                    directory=existing,
                    space_quota_bytes=spec.space_quota_bytes,
                    file_quota=spec.file_quota,
                )
        before_plan = tenant.plan_id
        tenant.plan = plan
        audited_save(
            tenant,
            acting_user=acting_user,
            action="TENANT_PLAN_APPLIED",
            tenant=tenant,
            before={"plan_id": before_plan},
            after=lambda applied: {"plan_id": applied.plan_id, "plan": plan.name},
            update_fields=["plan", "updated_at"],
        )
        change_record(TenantChange(tenants=[tenant], parents=True, reason="TENANT_PLAN_APPLIED"))
    return tenant


def _plan_write_entries(
    plan: QuotaPlan, allocations: Sequence[AllocationSpec], storage: Sequence[StorageSpec]
) -> None:
    errors = _errors()
    for spec in allocations:
        if refused := rules.entry_errors(str(spec.pool), spec.pool.is_yarn, spec.values()):
            errors["allocations"].extend(refused)
    for spec in storage:
        if spec.cluster.kind != Cluster.Kind.YARN:
            errors["storage"].append(f"{spec.cluster} is not a Hadoop cluster.")
    for key, messages in {
        **_listed_once([spec.pool for spec in allocations], "allocations", "Pool"),
        **_listed_once([spec.cluster for spec in storage], "storage", "Cluster"),
    }.items():
        errors[key].extend(messages)
    _raise_if(errors)
    plan.allocations.all().delete()
    plan.storage.all().delete()
    for spec in allocations:
        values = rules.with_defaults(spec.pool.is_yarn, spec.values())
        QuotaPlanAllocation.objects.create(plan=plan, pool=spec.pool, **values)
    for spec in storage:
        QuotaPlanStorage.objects.create(
            plan=plan,
            cluster=spec.cluster,
            space_quota_bytes=spec.space_quota_bytes,
            file_quota=spec.file_quota,
        )


def _plan_snapshot(plan: QuotaPlan) -> dict[str, Any]:
    return {
        "name": plan.name,
        "description": plan.description,
        "allocations": [
            {"pool": str(a.pool), **snapshot(a, ALLOCATION_FIELDS)}
            for a in plan.allocations.select_related("pool__cluster")
        ],
        "storage": [
            {"cluster": s.cluster.name, **snapshot(s, ("space_quota_bytes", "file_quota"))}
            for s in plan.storage.select_related("cluster")
        ],
    }


def plan_create(
    *,
    acting_user: AnyUser,
    name: str,
    description: str = "",
    allocations: Sequence[AllocationSpec] = (),
    storage: Sequence[StorageSpec] = (),
) -> QuotaPlan:
    require_platform_admin(acting_user)
    plan = QuotaPlan(name=name, description=description)
    plan.full_clean()
    with transaction.atomic():
        plan.save()
        _plan_write_entries(plan, allocations, storage)
        audit(
            acting_user=acting_user,
            action="PLAN_CREATED",
            target=plan,
            tenant=None,
            after=_plan_snapshot(plan),
        )
    return plan


def plan_update(
    *,
    acting_user: AnyUser,
    plan: QuotaPlan,
    description: str | None = None,
    allocations: Sequence[AllocationSpec] | None = None,
    storage: Sequence[StorageSpec] | None = None,
) -> QuotaPlan:
    """Change a plan. Tenants created from it keep what they were given."""
    require_platform_admin(acting_user)
    with transaction.atomic():
        plan = QuotaPlan.objects.select_for_update().get(pk=plan.pk)
        before = _plan_snapshot(plan)
        if description is not None:
            plan.description = description
            plan.save()
        if allocations is not None or storage is not None:
            _plan_write_entries(
                plan,
                allocations if allocations is not None else _plan_allocation_specs(plan),
                storage if storage is not None else _plan_storage_specs(plan),
            )
        audit(
            acting_user=acting_user,
            action="PLAN_UPDATED",
            target=plan,
            tenant=None,
            before=before,
            after=_plan_snapshot(plan),
        )
    return plan


def plan_delete(*, acting_user: AnyUser, plan: QuotaPlan) -> None:
    require_platform_admin(acting_user)
    with transaction.atomic():
        audited_delete(
            plan, acting_user=acting_user, action="PLAN_DELETED", tenant=None, before=_plan_snapshot(plan)
        )
