"""Directory and identity-provider groups become Django groups of the same name."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import transaction

from provisioning import services as provisioning
from tenants.models import Membership


def groups_mirror(*, user: AbstractBaseUser, names: Iterable[str]) -> list[Group]:
    """Set the user's groups to exactly `names`, creating the groups that do not exist yet.

    Called at each sign-in, so someone removed from a group upstream loses it (and every tenant role
    it carried) at their next sign-in.
    """
    wanted = sorted({name.strip() for name in names if name and name.strip()})
    with transaction.atomic():
        before = set(user.groups.values_list("name", flat=True))  # type: ignore[attr-defined]
        existing = {group.name: group for group in Group.objects.filter(name__in=wanted)}
        for name in wanted:
            if name not in existing:
                existing[name], _ = Group.objects.get_or_create(name=name)
        groups = [existing[name] for name in wanted]
        user.groups.set(groups)  # type: ignore[attr-defined]
        changed = before ^ set(wanted)
        if changed:
            # The tenants where a joined or left group holds a role get this person's service
            # account and bindings added or removed, like any other membership change.
            tenant_ids = Membership.objects.filter(group__name__in=changed).values_list(
                "tenant_id", flat=True
            )
            provisioning.intent_record(tenant_ids=list(tenant_ids), reason="GROUPS_MIRRORED")
    return groups
