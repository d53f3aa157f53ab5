"""Memberships (roles of users and groups on tenants) and the groups mirrored at sign-in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from tenants.audit import audit, audited_delete, audited_save
from tenants.changes import TenantChange, change_record
from tenants.cluster_names import name_problem
from tenants.models import (
    Membership,
    Tenant,
)
from tenants.permissions import Action, AnyUser, require
from tenants.roles import reaches_below
from tenants.services._common import _locked_tenant

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def _membership_subject(membership: Membership) -> dict[str, str]:
    """How an audit row names a membership's subject: {"user": name} or {"group": name}."""
    return {membership.subject_kind: membership.subject_name}


def _membership_role(membership: Membership) -> dict[str, str]:
    return {**_membership_subject(membership), "role": membership.role}


def membership_grant(
    *,
    acting_user: AnyUser,
    tenant: Tenant,
    role: str,
    user: User | None = None,
    group: Group | str | None = None,
) -> Membership:
    """Give a user or a group (a Group or a group name) a role on a tenant. A group named here that
    does not exist yet is created, so a directory group can be granted before anyone of it signs in."""
    require(acting_user, Action.ADMINISTER, tenant)
    if (user is None) == (group is None):
        raise ValidationError({"user": ["Give either a user or a group."]})
    if role not in Membership.Role.values:
        raise ValidationError({"role": [f"Choose one of: {', '.join(Membership.Role.values)}."]})
    if user is not None and not user.is_active:
        raise ValidationError({"user": [f"{user.get_username()} is deactivated."]})
    if isinstance(group, str):
        group = group.strip()
    # A role ends up in YARN and HDFS ACLs and Kubernetes bindings by name: a name those read as
    # syntax ("*", "a,b", "x:rwx") would give the role to others (tenants.cluster_names).
    if user is not None:
        field, name = "user", user.get_username()
    elif isinstance(group, Group):
        field, name = "group", group.name
    else:
        field, name = "group", group or ""
    if problem := name_problem(name):
        raise ValidationError({field: [problem]})
    with transaction.atomic():
        tenant = _locked_tenant(tenant)
        if isinstance(group, str):
            group, _ = Group.objects.get_or_create(name=group)
        subject = {"user": user} if user is not None else {"group": group}
        existing = Membership.objects.filter(tenant=tenant, **subject).first()
        if existing is not None:
            raise ValidationError(
                {
                    field: [
                        f"{name} is already {existing.role} of {tenant.name_path}; change the role instead."
                    ]
                }
            )
        try:
            with transaction.atomic():
                membership = Membership.objects.create(tenant=tenant, role=role, **subject)
        except IntegrityError as exc:
            raise ValidationError({field: [f"{name} already has a role on {tenant.name_path}."]}) from exc
        audit(
            acting_user=acting_user,
            action="MEMBERSHIP_GRANTED",
            target=membership,
            tenant=tenant,
            after={field: name, "role": role},
        )
        change_record(
            TenantChange(tenants=[tenant], subtree=reaches_below(role), reason="MEMBERSHIP_GRANTED")
        )
    return membership


def membership_change_role(*, acting_user: AnyUser, membership: Membership, role: str) -> Membership:
    require(acting_user, Action.ADMINISTER, membership.tenant)
    if role not in Membership.Role.values:
        raise ValidationError({"role": [f"Choose one of: {', '.join(Membership.Role.values)}."]})
    with transaction.atomic():
        membership = (
            Membership.objects.select_for_update(of=("self",))
            .select_related("tenant", "user", "group")
            .get(pk=membership.pk)
        )
        before = membership.role
        membership.role = role
        audited_save(
            membership,
            acting_user=acting_user,
            action="MEMBERSHIP_CHANGED",
            tenant=membership.tenant,
            before={**_membership_subject(membership), "role": before},
            after=_membership_role,
        )
        change_record(
            TenantChange(
                tenants=[membership.tenant],
                subtree=reaches_below(before) or reaches_below(role),
                reason="MEMBERSHIP_CHANGED",
            )
        )
    return membership


def membership_revoke(*, acting_user: AnyUser, membership: Membership) -> None:
    require(acting_user, Action.ADMINISTER, membership.tenant)
    with transaction.atomic():
        audited_delete(
            membership,
            acting_user=acting_user,
            action="MEMBERSHIP_REVOKED",
            tenant=membership.tenant,
            before=_membership_role(membership),
        )
        change_record(
            TenantChange(
                tenants=[membership.tenant],
                subtree=reaches_below(membership.role),
                reason="MEMBERSHIP_REVOKED",
            )
        )


def user_groups_mirror(
    *, user: User, names: Sequence[str], source: str, skipped: Sequence[str] = ()
) -> list[Group]:
    """Set the user's groups to exactly `names`, creating the groups that do not exist yet, as the
    identity provider (`source`: "ldap" or "oidc") said at sign-in; no acting user. `skipped`: the
    upstream names left out because a cluster cannot hold them, listed in the audit row.

    A change of groups is a change of roles: it gets one audit row (GROUPS_MIRRORED) naming the
    groups joined and left and the roles that come or go with them, and the affected tenants are
    pushed again. A name a cluster cannot hold is refused here as everywhere else."""
    if problems := [problem for name in names if (problem := name_problem(name))]:
        raise ValidationError({"groups": problems})
    wanted = list(names)
    with transaction.atomic():
        before = set(user.groups.values_list("name", flat=True))
        existing = {group.name: group for group in Group.objects.filter(name__in=wanted)}
        for name in wanted:
            if name not in existing:
                existing[name], _ = Group.objects.get_or_create(name=name)
        groups = [existing[name] for name in wanted]
        user.groups.set(groups)
        joined, left = sorted(set(wanted) - before), sorted(before - set(wanted))
        if joined or left:
            roles = list(
                Membership.objects.filter(group__name__in=[*joined, *left])
                .select_related("tenant", "group")
                .order_by("tenant__path", "group__name")
            )
            changes = [
                {
                    "tenant": row.tenant.name_path,
                    "group": row.subject_name,  # a group's role: its name
                    "role": row.role,
                    "change": "gained" if row.subject_name in joined else "lost",
                }
                for row in roles
            ]
            audit(
                acting_user=None,
                action="GROUPS_MIRRORED",
                target=user,
                tenant=None,
                before={"groups": sorted(before)},
                after={
                    "groups": wanted,
                    "source": source,
                    "joined": joined,
                    "left": left,
                    "roles": changes,
                    "skipped": list(skipped),
                },
            )
            # The tenants where a joined or left group holds a role get this person's service
            # account and bindings added or removed, like any other membership change (an admin's
            # reach every namespace below).
            change_record(
                TenantChange(
                    reason="GROUPS_MIRRORED",
                    tenants=[row.tenant for row in roles if reaches_below(row.role)],
                    tenant_ids=[row.tenant_id for row in roles],
                    subtree=True,
                )
            )
    return groups
