"""Roles on a tenant, in one place: what they are, their order and their reach.

Order: admin > member > viewer. Someone who holds several roles on one tenant (their own, their
groups', a tenant admin's from above) has the strongest of them.
Reach: a tenant admin's role holds on the tenant's whole subtree; a member's or a viewer's on the
tenant alone.

The permission helper (`tenants.permissions`), the console's "my roles" (`selectors.effective_roles`),
the services (which tenants a role change touches) and the clusters' push (who acts in each
namespace) all ask here. No queries: roles and tree paths in, answers out.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Tenant admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


# Weakest first.
ORDER = (Role.VIEWER, Role.MEMBER, Role.ADMIN)


def rank(role: str) -> int:
    """Where `role` stands in the order: a higher rank is a stronger role."""
    return ORDER.index(Role(role))


def at_least(role: str, weakest: str) -> bool:
    """Whether `role` is `weakest` or stronger."""
    return rank(role) >= rank(weakest)


def strongest(roles: Iterable[str]) -> str:
    return max(roles, key=rank)


def reaches_below(role: str) -> bool:
    """Whether `role`, held on a tenant, also holds on every tenant below it (a tenant admin's)."""
    return role == Role.ADMIN


def reaches(role: str, granted_path: str, path: str) -> bool:
    """Whether `role`, held on the tenant at tree path `granted_path`, holds on the tenant at `path`."""
    return path == granted_path or (reaches_below(role) and path.startswith(granted_path))
