"""The audit trail: one AuditEvent per write, inside the writing service's transaction, and how
people read it.

Services of every app call these (tenants, provisioning, identity). `audited_save` and
`audited_delete` are the usual write-then-record pairs: a row saved with what it was before and
what it is now, or a row recorded as it was and then deleted. Every action is one of
`tenants.models.AuditAction`, which gives its label.

Reading: `AuditReader` (built for a person by `tenants.selectors.audit_reader`) turns a row the
person may see into an `AuditEntry`: the label, the tenant's path, and the details (before, after,
the target, and `changes` in units: "GPUs: 1 GPU → 2 GPUs") or none where they would tell the
person more than they may know. The console's page, its CSV and the API all read rows this way; the
rule is in docs/security.md (*Who reads which audit rows*).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import Any

from django.db.models import Model

from tenants.amounts import KUBERNETES_RESOURCES, YARN_FIELDS, stored_amount_human
from tenants.models import AuditAction, AuditEvent, Tenant
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
    if action not in AuditAction.values:
        raise ValueError(
            f"{action} is no audit action: add it, with its label, to tenants.models.AuditAction."
        )
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


# ---------------------------------------------------------------------------------------------
# Reading


# Actions whose details a viewer or member of the tenant reads (a time-bound grant's: its own allocation) (an admin of it, or above, reads every
# action's): what they describe is the tenant itself and what it holds, which its Summary, Resources,
# Storage, Services and Members tabs show them anyway. Withheld from them: a suspension's or resumption's count
# of sub-tenants (they see none), a volume's or an NFS grant's share (shares are read by tenant
# admins; a shared volume also names its other tenants), a kubeconfig download's address (someone
# else's).
DETAILS_FOR_EVERY_READER = frozenset(
    {
        AuditAction.TENANT_CREATED,
        AuditAction.TENANT_UPDATED,
        AuditAction.TENANT_MOVED,
        AuditAction.TENANT_PLAN_APPLIED,
        AuditAction.ALLOCATION_CREATED,
        AuditAction.ALLOCATION_UPDATED,
        AuditAction.ALLOCATION_DELETED,
        AuditAction.ALLOCATION_GRANT_ENDED,
        AuditAction.ALLOCATION_GRANT_WAITING,
        AuditAction.ALLOCATION_GRANT_REFUSED,
        AuditAction.ALLOCATION_GRANT_SUPERSEDED,
        AuditAction.ALLOCATION_GRANT_CANCELLED,
        AuditAction.STORAGE_CREATED,
        AuditAction.STORAGE_UPDATED,
        AuditAction.STORAGE_DELETED,
        AuditAction.TENANT_SERVICE_CREATED,
        AuditAction.TENANT_SERVICE_DELETED,
        AuditAction.MEMBERSHIP_GRANTED,
        AuditAction.MEMBERSHIP_CHANGED,
        AuditAction.MEMBERSHIP_REVOKED,
        AuditAction.PROVISIONING_REQUESTED,
    }
)

# Labels of recorded fields, in the order a row's changes are listed (PostgreSQL's jsonb keeps a
# row's keys in an order of its own; fields not named here come after, alphabetically).
FIELD_LABELS = {
    "username": "User name",
    "name": "Name",
    "name_path": "Path",
    "display_name": "Display name",
    "description": "Description",
    "leaf": "Leaf tenant",
    "state": "State",
    "plan": "Plan",
    "user": "User",
    "group": "Group",
    "role": "Role",
    "pool": "Pool",
    "cluster": "Cluster",
    "share": "Share",
    **{
        name: label
        for resource in KUBERNETES_RESOURCES
        for name, label in (
            (resource.field, resource.label),
            (resource.burst_field, f"{resource.label} burst"),
        )
    },
    "gpu_capacity": "GPU capacity",
    "cpu_capacity_millicores": "CPU capacity",
    "memory_capacity_bytes": "Memory capacity",
    "capacity_percent": "YARN capacity",
    "max_capacity_percent": "YARN maximum capacity",
    "space_quota_bytes": "Space quota",
    "file_quota": "File quota",
    "capacity_bytes": "Capacity",
    "allocations": "Allocations",
    "sub_tenants": "Sub-tenants",
    "members": "Memberships",
    "volumes_deleted": "Volumes deleted",
    "tenants_changed": "Tenants changed",
    "storage": "HDFS directories",
    "email": "Email",
    "first_name": "First name",
    "last_name": "Last name",
    "is_staff": "Platform admin",
    "is_active": "Active",
}
# Ids say nothing to a reader (the plan's name is beside its id where it matters).
HIDDEN_FIELDS = frozenset({"plan_id"})
# Columns where nothing (None) is an amount: unlimited. Elsewhere nothing is left out of a new or
# removed row's details (no burst, no description).
UNLIMITED_WHEN_NONE = frozenset(
    {resource.field for resource in KUBERNETES_RESOURCES} | {"space_quota_bytes", "file_quota"}
)
_KUBERNETES_FIELDS = frozenset(
    name for resource in KUBERNETES_RESOURCES for name in (resource.field, resource.burst_field)
)


def field_label(key: str) -> str:
    return FIELD_LABELS.get(key) or key.replace("_", " ").capitalize()


def value_text(key: str, value: Any) -> str:
    """One recorded value as people read it, amounts in units (`tenants.amounts.STORED_AMOUNTS`)."""
    amount = stored_amount_human(key, value)
    if amount is not None:
        return amount
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return "; ".join(_row_text(item) if isinstance(item, dict) else str(item) for item in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{name} ({item})" for name, item in value.items()) or "none"
    return str(value)


_FIELD_RANK = {key: rank for rank, key in enumerate(FIELD_LABELS)}


def _in_order(keys: Iterable[str]) -> list[str]:
    return sorted(keys, key=lambda key: (_FIELD_RANK.get(key, len(_FIELD_RANK)), key))


def _shown_keys(row: dict[str, Any]) -> list[str]:
    """The keys of a recorded row worth reading, in order: a YARN allocation's percentages, a
    Kubernetes allocation's amounts (each row keeps both kinds' columns)."""
    keys = _in_order(key for key in row if key not in HIDDEN_FIELDS)
    if "capacity_percent" in row:
        yarn = row.get("capacity_percent") is not None
        dropped = _KUBERNETES_FIELDS if yarn else frozenset(YARN_FIELDS)
        keys = [key for key in keys if key not in dropped]
    return keys


def _worth_listing(key: str, value: Any) -> bool:
    return key in UNLIMITED_WHEN_NONE or value not in (None, "", [], {})


def _row_text(row: dict[str, Any]) -> str:
    """A row inside a snapshot (a new tenant's allocations, a plan's rows): "gpu-cluster/default:
    GPUs 2 GPUs, CPU 4 CPU"."""
    where = row.get("pool") or row.get("cluster") or ""
    parts = [
        f"{field_label(key)} {value_text(key, row[key])}"
        for key in _shown_keys(row)
        if key not in ("pool", "cluster") and _worth_listing(key, row[key])
    ]
    return f"{where}: {', '.join(parts)}" if where else ", ".join(parts)


@dataclass(frozen=True)
class Change:
    """One recorded field: `before` None for a new value, `after` None for one removed."""

    field: str
    label: str
    before: str | None
    after: str | None

    def __str__(self) -> str:
        if self.before is not None and self.after is not None:
            return f"{self.label}: {self.before} → {self.after}"
        if self.after is not None:
            return f"{self.label}: {self.after}"
        return f"{self.label} was {self.before}"


def changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[Change]:
    """What a row records, field by field and in units: the fields that changed (both sides), or
    what a new row holds, or what a removed one held."""
    if before and after:
        keys = [key for key in _shown_keys({**before, **after}) if before.get(key) != after.get(key)]
        return [
            Change(
                key,
                field_label(key),
                value_text(key, before[key]) if key in before else None,
                value_text(key, after[key]) if key in after else None,
            )
            for key in keys
        ]
    side, new = (after, True) if after else (before or {}, False)
    return [
        Change(
            key,
            field_label(key),
            None if new else value_text(key, side[key]),
            value_text(key, side[key]) if new else None,
        )
        for key in _shown_keys(side)
        if _worth_listing(key, side[key])
    ]


def tenant_paths_named(event: AuditEvent) -> list[str]:
    """The tenant paths a row's details name besides its tenant's: a move's two paths, a volume's
    tenants, a deleted tenant's own path and its sub-tenants'."""
    paths: list[str] = []
    for side in (event.before, event.after):
        if not side:
            continue
        if isinstance(side.get("name_path"), str):
            paths.append(side["name_path"])
        if event.action == AuditAction.TENANT_MOVED and isinstance(side.get("path"), str):
            paths.append(side["path"])
        if isinstance(side.get("tenants"), dict):
            paths.extend(side["tenants"])
        if isinstance(side.get("sub_tenants"), list):
            paths.extend(str(path) for path in side["sub_tenants"])
    return paths


@dataclass(frozen=True)
class AuditEntry:
    """A row as one person reads it. `withheld`: the details (target, before, after) are not theirs
    to read; the label, the time, who acted and the tenant are."""

    event: AuditEvent
    tenant_path: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    withheld: bool

    @property
    def label(self) -> str:
        return self.event.label

    @cached_property
    def changes(self) -> list[Change]:
        return [] if self.withheld else changes(self.before, self.after)

    @property
    def summary(self) -> str:
        return "; ".join(str(change) for change in self.changes)


@dataclass(frozen=True)
class AuditReader:
    """What one person reads of the audit rows they see (which rows: `RESTRICT_RULES`' "audit").

    Platform admins read every row as recorded. Anyone else reads a row's tenant as its path now,
    and its details only when they administer the tenant (it or an ancestor) or the action is one
    of `DETAILS_FOR_EVERY_READER`, and when every tenant path the row names is one they may read: a
    tenant they hold a role on or one of its ancestors, or a path inside a subtree they administer.
    A row recorded under an earlier path (before a move), or a move from or to a parent they cannot
    see, keeps its details to itself.
    """

    everything: bool = False
    administered: tuple[str, ...] = ()  # tree paths of the tenants whose subtrees they administer
    administered_names: tuple[str, ...] = ()  # the same tenants' paths of names
    held_names: tuple[str, ...] = ()  # paths of names of every tenant they hold a role on

    def reads_path(self, name_path: str) -> bool:
        if self.everything:
            return True
        if not name_path:
            return False
        return any(
            name_path == top or name_path.startswith(f"{top}/") for top in self.administered_names
        ) or any(held == name_path or held.startswith(f"{name_path}/") for held in self.held_names)

    def entry(self, event: AuditEvent) -> AuditEntry:
        if self.everything:
            return AuditEntry(event, event.tenant_path, event.target_repr, event.before, event.after, False)
        tenant = event.tenant
        if tenant is None:  # never reached: rows of no tenant are the platform's
            return AuditEntry(event, "", "", None, None, True)
        administers = any(tenant.path.startswith(top) for top in self.administered)
        shown = (administers or event.action in DETAILS_FOR_EVERY_READER) and all(
            self.reads_path(path) for path in [event.tenant_path, *tenant_paths_named(event)]
        )
        if not shown:
            return AuditEntry(event, tenant.name_path, "", None, None, True)
        return AuditEntry(event, tenant.name_path, event.target_repr, event.before, event.after, False)
