"""Directory and identity-provider groups become Django groups of the same name."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.contrib.auth.models import Group

from tenants import services as tenant_services
from tenants.cluster_names import name_problem

if TYPE_CHECKING:
    from django.contrib.auth.models import User

log = logging.getLogger(__name__)


def groups_mirror(*, user: User, names: Iterable[str], source: str) -> list[Group]:
    """Set the user's groups to exactly the usable `names`, creating the groups that do not exist yet.

    Called at each sign-in (`source`: "ldap" or "oidc"), so someone removed from a group upstream
    loses it (and every tenant role it carried) at their next sign-in. A change of groups is a
    change of roles: `tenants.services.user_groups_mirror` audits it (GROUPS_MIRRORED) and pushes
    the affected tenants again.

    A group whose name cannot be written into a cluster's ACLs or bindings (tenants.cluster_names:
    "*", "Domain Users", "a,b") is not mirrored: the person is not put in it, so it gives them no
    role in the console either, and console and clusters never disagree about who holds a role.
    Signing in still works; the skipped names are logged and listed in the audit row.
    """
    upstream = sorted({name.strip() for name in names if isinstance(name, str) and name.strip()})
    skipped = [name for name in upstream if name_problem(name)]
    if skipped:
        log.warning(
            "%s groups of %s not mirrored (not usable as names on the clusters): %s",
            source,
            user.get_username(),
            ", ".join(repr(name) for name in skipped),
        )
    wanted = [name for name in upstream if name not in skipped]
    return tenant_services.user_groups_mirror(user=user, names=wanted, source=source, skipped=skipped)
