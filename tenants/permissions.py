"""The one permission helper. Every tenant-owned queryset goes through `restrict(user, action)`;
every service starts with `require(user, action, tenant)` (or `require_platform_admin(user)`).

The model, from the two source documents:
- Platform admins (staff) see and do everything.
- A role on a tenant (viewer, member, admin) lets a user see that tenant.
- A tenant admin administers the tenant and its whole subtree: sees every tenant in it, adds and
  removes sub-tenants and members; and *manages* the strict descendants: their allocations,
  storage, volumes, state and deletion. A tenant's own allocation is set from above.
- Members (and admins) *use* a tenant: its usage, its kubeconfig.
Anything outside those sets does not exist for the user (a 404, never a 403 that leaks a name).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import StrEnum
from functools import reduce
from operator import or_
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from django.apps import apps
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast
from django.http import Http404

from tenants.roles import Role, at_least, reaches, reaches_below

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

# Whoever a request or a caller hands us: a signed-in user (AUTH_USER_MODEL, Django's User) or the
# anonymous one. Selectors, services and this module take it. A string at run time: for annotations
# in modules that postpone them (`from __future__ import annotations`).
AnyUser: TypeAlias = "User | AnonymousUser"


class Action(StrEnum):
    VIEW = "view"
    USE = "use"
    ADMINISTER = "administer"
    MANAGE = "manage"


NOTHING = Q(pk__in=[])


def is_platform_admin(user: AnyUser | None) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)


# Grants read once per request, by user id, while `grants_memoized` is active (read-only requests:
# nothing in them changes a role or a tree path, so a second read would give the same answer).
_memoized_grants: ContextVar[dict[Any, list[tuple[str, str]]] | None] = ContextVar(
    "canopy_memoized_grants", default=None
)


@contextmanager
def grants_memoized() -> Iterator[None]:
    """Read each user's grants at most once inside this block (see `GrantsPerRequestMiddleware`)."""
    token = _memoized_grants.set({})
    try:
        yield
    finally:
        _memoized_grants.reset(token)


def _grants(user: User) -> list[tuple[str, str]]:
    """(tree path, role) of every tenant the user holds a role on, directly or through one of their
    groups. One query: a union of two index lookups (by user, by the user's groups), because an OR
    of the two makes PostgreSQL scan every membership."""
    memo = _memoized_grants.get()
    if memo is not None and user.pk in memo:
        return memo[user.pk]
    membership = apps.get_model("tenants", "Membership")
    user_groups = apps.get_model(settings.AUTH_USER_MODEL).groups.through
    direct = membership.objects.filter(user_id=user.pk).order_by().values_list("tenant__path", "role")
    via_groups = (
        membership.objects.filter(group_id__in=user_groups.objects.filter(user_id=user.pk).values("group_id"))
        .order_by()
        .values_list("tenant__path", "role")
    )
    grants = list(direct.union(via_groups, all=True))
    if memo is not None:
        memo[user.pk] = grants
    return grants


def subject_q(user: AnyUser, prefix: str = "") -> Q:
    """Memberships of `user`: their own and their groups' (`prefix` reaches Membership from another
    model, e.g. "memberships__")."""
    user_groups = apps.get_model(settings.AUTH_USER_MODEL).groups.through
    group_ids = user_groups.objects.filter(user_id=user.pk).values("group_id")
    return Q(**{f"{prefix}user_id": user.pk}) | Q(**{f"{prefix}group_id__in": group_ids})


def tenant_q(user: AnyUser | None, action: Action | str) -> Q | None:
    """A filter on Tenant for what `user` may do `action` to; None means no restriction."""
    action = Action(action)
    if user is None or not user.is_authenticated or not user.is_active:
        return NOTHING
    if is_platform_admin(user):
        return None
    subtrees, exact, strictly_below = _reach(_grants(user), action)
    if strictly_below:
        return reduce(or_, [Q(path__startswith=path) & ~Q(path=path) for path in subtrees], NOTHING)
    subtree = [Q(path__startswith=path) for path in subtrees]
    return reduce(or_, subtree, Q(path__in=exact) if exact else NOTHING)


# The weakest role that allows each action (managing is also done from above: strictly below the
# admin's tenant, see `_reach`).
WEAKEST_ROLE = {
    Action.VIEW: Role.VIEWER,
    Action.USE: Role.MEMBER,
    Action.ADMINISTER: Role.ADMIN,
    Action.MANAGE: Role.ADMIN,
}


def _reach(grants: list[tuple[str, str]], action: Action) -> tuple[list[str], list[str], bool]:
    """What `action` reaches from these grants: the subtrees (tree paths) it covers, the single
    tenants it covers, and whether the subtrees' own tops are left out (managing is done from above)."""
    allowed = [(path, role) for path, role in grants if at_least(role, WEAKEST_ROLE[action])]
    subtrees = [path for path, role in allowed if reaches_below(role)]
    single = [path for path, role in allowed if not reaches_below(role)]
    return subtrees, single, action == Action.MANAGE


def top_paths(user: AnyUser | None) -> list[str] | None:
    """Tree paths of the highest tenants `user` can see: each visible tenant whose parent is not
    visible. None for platform admins (they see the level-1 tenants). Worked out from the grants
    alone: a top is always a tenant the user holds a role on."""
    if is_platform_admin(user):
        return None
    if user is None or not user.is_authenticated or not user.is_active:
        return []
    grants = _grants(user)
    steplen = apps.get_model("tenants", "Tenant").steplen

    def visible(path: str) -> bool:
        return any(reaches(role, granted, path) for granted, role in grants)

    granted = {path for path, _ in grants}
    return sorted(path for path in granted if len(path) == steplen or not visible(path[:-steplen]))


def administers_somewhere(user: AnyUser | None) -> bool:
    """Whether `user` is a tenant admin somewhere (their own role or a group's): from the grants
    alone, so no query in a request that has read them."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return any(reaches_below(role) for _, role in _grants(user))


def held_tenant_paths(user: AnyUser | None) -> tuple[list[str], list[str]]:
    """Tree paths of the tenants whose subtrees `user` administers, and of every tenant they hold a
    role on (their own or a group's); empty for nobody signed in. From the grants alone."""
    if user is None or not user.is_authenticated or not user.is_active:
        return [], []
    grants = _grants(user)
    administered, _, _ = _reach(grants, Action.ADMINISTER)
    return sorted(set(administered)), sorted({path for path, _ in grants})


def restrict_tenants(queryset: QuerySet, user: AnyUser | None, action: Action | str) -> QuerySet:
    q = tenant_q(user, action)
    return queryset if q is None else queryset.filter(q)


def visible_tenants(user: AnyUser | None, action: Action | str) -> QuerySet:
    tenant = apps.get_model("tenants", "Tenant")
    return restrict_tenants(tenant.objects.all(), user, action)


class RestrictedQuerySetMixin:
    """`Model.objects.restrict(user, action)`: the only way views, the API and tasks reach rows.

    Models owned by a tenant name the path to it in `restrict_tenant_field`; models shared by the
    whole platform (clusters, pools, plans) are readable by every signed-in user and written by
    platform admins only.
    """

    def restrict(self, user: AnyUser | None, action: Action | str) -> QuerySet:
        qs: QuerySet = self  # type: ignore[assignment]
        action = Action(action)
        rule = RESTRICT_RULES.get(qs.model._meta.label, "tenant")
        if rule == "":
            return restrict_tenants(qs, user, action)
        if rule == "platform":
            if is_platform_admin(user):
                return qs
            if action == Action.VIEW and user is not None and user.is_authenticated and user.is_active:
                return qs
            return qs.none()
        if rule == "nfs_share":
            return _restrict_nfs_shares(qs, user, action)
        if rule == "audit":
            return _restrict_audit(qs, user, action)
        if is_platform_admin(user):
            return qs
        allowed_tenants = visible_tenants(user, action)
        if rule == "volume":
            attachment = apps.get_model("tenants", "VolumeAttachment")
            volume_ids = attachment.objects.filter(tenant__in=allowed_tenants).values("volume_id")
            return qs.filter(pk__in=volume_ids)
        return qs.filter(tenant__in=allowed_tenants)


def _restrict_nfs_shares(queryset: QuerySet, user: AnyUser | None, action: Action) -> QuerySet:
    """NFS shares are the platform's: platform admins see and change them; a tenant admin reads
    (only) those usable somewhere in what they administer: granted to a tenant of their subtrees or
    to a tenant above one (a share reaches the granted tenant's whole subtree)."""
    if is_platform_admin(user):
        return queryset
    if action != Action.VIEW or user is None or not user.is_authenticated or not user.is_active:
        return queryset.none()
    admin_paths = [path for path, role in _grants(user) if reaches_below(role)]
    if not admin_paths:
        return queryset.none()
    tenant = apps.get_model("tenants", "Tenant")
    above = {prefix for path in admin_paths for prefix in tenant.path_prefixes(path)}
    reach = reduce(or_, [Q(tenant__path__startswith=path) for path in admin_paths], Q(tenant__path__in=above))
    grant = apps.get_model("tenants", "NfsShareGrant")
    return queryset.filter(pk__in=grant.objects.filter(reach).values("share_id"))


def _restrict_audit(queryset: QuerySet, user: AnyUser | None, action: Action) -> QuerySet:
    """Audit rows (read-only): platform admins read them all; a tenant admin the rows of every tenant
    they administer (their subtrees); a viewer or member the rows of each tenant they hold a role on
    that are about that tenant, not those about another tenant recorded there (a sub-tenant's
    deletion is recorded on its parent and names it). Rows of no tenant are the platform's. What of
    each row a person reads: `tenants.audit.AuditReader`."""
    if is_platform_admin(user):
        return queryset
    if action != Action.VIEW:
        return queryset.none()
    about_another_tenant = Q(target_type="tenant") & ~Q(target_id=Cast("tenant_id", output_field=CharField()))
    return queryset.filter(
        Q(tenant__in=visible_tenants(user, Action.ADMINISTER))
        | (Q(tenant__in=visible_tenants(user, Action.VIEW)) & ~about_another_tenant)
    )


# How each model reaches its tenant: "" the model is Tenant, "tenant" a foreign key named tenant,
# "volume" through its attachments, "platform" not tenant-owned, "audit" an audit event, "nfs_share"
# the platform's, read by tenant admins where it is granted (see _restrict_nfs_shares).
RESTRICT_RULES: dict[str, str] = {
    "tenants.Tenant": "",
    "tenants.Cluster": "platform",
    "tenants.ResourcePool": "platform",
    "tenants.QuotaPlan": "platform",
    "usage.PoolPrice": "platform",  # the showback's prices (issue 19)
    "tenants.Volume": "volume",
    "tenants.NfsShare": "nfs_share",
    "tenants.AuditEvent": "audit",
}


def restrict_users(queryset: QuerySet, user: AnyUser | None, action: Action | str) -> QuerySet:
    """Users a person may see: platform admins all; others themselves and the people who share a
    tenant they can see (so a tenant admin can manage members). Only platform admins write users."""
    action = Action(action)
    if is_platform_admin(user):
        return queryset
    if user is None or not user.is_authenticated or action != Action.VIEW:
        return queryset.none()
    membership = apps.get_model("tenants", "Membership")
    shared = membership.objects.filter(tenant__in=visible_tenants(user, Action.VIEW))
    colleagues = shared.values("user_id")
    # People holding a role through a group are colleagues too.
    user_groups = apps.get_model(settings.AUTH_USER_MODEL).groups.through
    via_groups = user_groups.objects.filter(group_id__in=shared.values("group_id")).values("user_id")
    return queryset.filter(Q(pk=user.pk) | Q(pk__in=colleagues) | Q(pk__in=via_groups))


def restrict_groups(queryset: QuerySet, user: AnyUser | None, action: Action | str) -> QuerySet:
    """Groups a person may see, by the same measure as people (`restrict_users`): platform admins
    all; others their own groups and the groups holding a role on a tenant they can see. Groups
    are mirrored from LDAP or OpenID Connect at sign-in and only platform admins manage them."""
    action = Action(action)
    if is_platform_admin(user):
        return queryset
    if user is None or not user.is_authenticated or not user.is_active or action != Action.VIEW:
        return queryset.none()
    membership = apps.get_model("tenants", "Membership")
    shared = membership.objects.filter(tenant__in=visible_tenants(user, Action.VIEW), group_id__isnull=False)
    user_groups = apps.get_model(settings.AUTH_USER_MODEL).groups.through
    own = user_groups.objects.filter(user_id=user.pk).values("group_id")
    return queryset.filter(Q(pk__in=own) | Q(pk__in=shared.values("group_id")))


def can(user: AnyUser | None, action: Action | str, tenant: Any) -> bool:
    """Whether `user` may do `action` to this one tenant (one query, none for platform admins). In a
    read-only request the grants are already read and the tenant was read in the same request, so
    its path answers without a query."""
    q = tenant_q(user, action)
    if q is None:
        return True
    if q is NOTHING:
        return False
    if _memoized_grants.get() is not None:
        # A filter (neither None nor NOTHING) comes only for a signed-in, active user.
        subtrees, exact, strictly_below = _reach(_grants(cast("User", user)), Action(action))
        path = tenant.path
        return path in exact or any(
            path.startswith(top) and not (strictly_below and path == top) for top in subtrees
        )
    return visible_tenants(user, action).filter(pk=tenant.pk).exists()


def require(user: AnyUser | None, action: Action, tenant: Any) -> None:
    """Refuse unless `user` may do `action` on `tenant`: 404 if they cannot even see it, 403 if
    they see it but may not do this. Every service that acts on a tenant starts here."""
    if can(user, action, tenant):
        return
    if action != Action.VIEW and can(user, Action.VIEW, tenant):
        raise PermissionDenied(f"You may not {action.value} {tenant.name_path}.")
    raise Http404("No such tenant.")


def require_platform_admin(user: AnyUser | None) -> None:
    if not is_platform_admin(user):
        raise PermissionDenied("Only platform admins may do this.")
