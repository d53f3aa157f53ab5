"""The audit trail: one AuditEvent per write, inside the writing service's transaction.

Services of every app call these (tenants, provisioning, identity). `audited_save` and
`audited_delete` are the usual write-then-record pairs: a row saved with what it was before and
what it is now, or a row recorded as it was and then deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from django.db.models import Model

from tenants.models import AuditEvent, Tenant
from tenants.permissions import AnyUser
from tenants.quantities import decimal_text

Snapshot = Callable[[Any], dict[str, Any]]


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return decimal_text(value)
    return value


def snapshot(obj: Any, fields: Iterable[str]) -> dict[str, Any]:
    """`obj`'s `fields` as an audit row keeps them (decimals as text)."""
    return {name: _json(getattr(obj, name)) for name in fields}


def audit(
    *,
    acting_user: AnyUser | None,
    action: str,
    target: Any,
    tenant: Tenant | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Write one audit row. Called inside the service's transaction, so it commits with the change."""
    return AuditEvent.objects.create(
        actor=acting_user if acting_user is not None and acting_user.pk else None,
        actor_name=acting_user.get_username() if acting_user is not None else "system",
        action=action,
        tenant=tenant,
        tenant_path=tenant.name_path if tenant else "",
        target_type=type(target)._meta.model_name if target is not None else "",
        target_id=str(getattr(target, "pk", "") or ""),
        target_repr=str(target)[:300] if target is not None else "",
        before=before,
        after=after,
    )


def audited_save(
    obj: Model,
    *,
    acting_user: AnyUser | None,
    action: str,
    tenant: Tenant | None,
    after: Snapshot | tuple[str, ...],
    before: dict[str, Any] | None = None,
    update_fields: list[str] | None = None,
) -> AuditEvent:
    """Save `obj` and record it: `before` (None: a new row) -> `obj` as saved, by `after`: its
    snapshot function, or the fields to keep."""
    obj.save(update_fields=update_fields)
    kept = snapshot(obj, after) if isinstance(after, tuple) else after(obj)
    return audit(acting_user=acting_user, action=action, target=obj, tenant=tenant, before=before, after=kept)


def audited_delete(
    obj: Model,
    *,
    acting_user: AnyUser | None,
    action: str,
    tenant: Tenant | None,
    before: dict[str, Any],
) -> None:
    """Record `obj` as it was (`before`), then delete it."""
    audit(acting_user=acting_user, action=action, target=obj, tenant=tenant, before=before)
    obj.delete()
