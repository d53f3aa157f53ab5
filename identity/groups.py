"""Directory and identity-provider groups become Django groups of the same name."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import transaction

from provisioning import services as provisioning
from tenants import services as tenant_services
from tenants.cluster_names import name_problem
from tenants.models import Membership

log = logging.getLogger(__name__)


def groups_mirror(*, user: AbstractBaseUser, names: Iterable[str], source: str) -> list[Group]:
    """Set the user's groups to exactly the usable `names`, creating the groups that do not exist yet.

    Called at each sign-in (`source`: "ldap" or "oidc"), so someone removed from a group upstream
    loses it (and every tenant role it carried) at their next sign-in. A change of groups is a
    change of roles: it gets one audit row (GROUPS_MIRRORED) naming the groups joined and left and
    the roles that come or go with them, and the affected tenants are pushed again.

    A group whose name cannot be written into a cluster's ACLs or bindings (tenants.cluster_names:
    "*", "Domain Users", "a,b") is not mirrored: the person is not put in it, so it gives them no
    role in the console either, and console and clusters never disagree about who holds a role.
    Signing in still works; the skipped names are logged and listed in the audit row.
    """
    upstream = sorted({name.strip() for name in names if isinstance(name, str) and name.strip()})
    skipped = [name for name in upstream if name_problem(name)]
    wanted = [name for name in upstream if name not in skipped]
    if skipped:
        log.warning(
            "%s groups of %s not mirrored (not usable as names on the clusters): %s",
            source,
            user.get_username(),
            ", ".join(repr(name) for name in skipped),
        )
    with transaction.atomic():
        before = set(user.groups.values_list("name", flat=True))  # type: ignore[attr-defined]
        existing = {group.name: group for group in Group.objects.filter(name__in=wanted)}
        for name in wanted:
            if name not in existing:
                existing[name], _ = Group.objects.get_or_create(name=name)
        groups = [existing[name] for name in wanted]
        user.groups.set(groups)  # type: ignore[attr-defined]
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
                    "group": row.group.name,
                    "role": row.role,
                    "change": "gained" if row.group.name in joined else "lost",
                }
                for row in roles
            ]
            tenant_services.audit(
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
                    "skipped": skipped,
                },
            )
            # The tenants where a joined or left group holds a role get this person's service
            # account and bindings added or removed, like any other membership change (an admin's
            # reach every namespace below).
            provisioning.intent_record(
                tenants=[row.tenant for row in roles if row.role == Membership.Role.ADMIN],
                tenant_ids=[row.tenant_id for row in roles],
                subtree=True,
                reason="GROUPS_MIRRORED",
            )
    return groups
