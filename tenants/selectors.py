"""Every read of Canopy's domain, always for a given user, always through `restrict`.

List selectors return querysets with what their callers show already joined, so a page of any size
costs the same number of queries; `tenant_summaries` adds, in two queries for the whole page, what
each tenant is allocated, what its sub-tenants hold and what remains.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import (
    Aggregate,
    Count,
    Exists,
    IntegerField,
    Max,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Length, Substr
from django.http import Http404

from tenants.amounts import HUNDRED, KUBERNETES_RESOURCES
from tenants.audit import AuditReader
from tenants.cluster_names import NAME_PATTERN
from tenants.models import (
    Allocation,
    AllocationGrant,
    AuditEvent,
    Cluster,
    Membership,
    NfsShare,
    NfsShareGrant,
    QuotaPlan,
    ResourcePool,
    StorageDirectory,
    Tenant,
    TenantService,
    Volume,
    VolumeAttachment,
    parent_tree_path,
)
from tenants.permissions import (
    Action,
    AnyUser,
    held_tenant_paths,
    is_platform_admin,
    restrict_groups,
    restrict_tenants,
    restrict_users,
    subject_q,
    top_paths,
)
from tenants.roles import reaches, strongest
from tenants.rules import left

if TYPE_CHECKING:
    from django.contrib.auth.models import User
else:
    User = get_user_model()


def _parent_id_subquery() -> Subquery:
    parent_path = Substr(OuterRef("path"), 1, Length(OuterRef("path")) - Tenant.steplen)
    return Subquery(Tenant.objects.filter(path=parent_path).values("pk")[:1], output_field=IntegerField())


def tenant_list(*, user: AnyUser | None, action: Action = Action.VIEW) -> QuerySet[Tenant]:
    """Tenants the user may see (or act on), in tree order, each with `parent_id` annotated."""
    return (
        Tenant.objects.restrict(user, action)
        .select_related("plan")
        .annotate(parent_id=_parent_id_subquery())
        .order_by("path")
    )


def tenant_get(*, user: AnyUser | None, pk: Any, action: Action = Action.VIEW) -> Tenant:
    try:
        return tenant_list(user=user, action=action).get(pk=pk)
    except (Tenant.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such tenant.") from exc


def tenant_children(*, user: AnyUser | None, parent: Tenant | None) -> QuerySet[Tenant]:
    qs = tenant_list(user=user)
    if parent is None:
        return qs.filter(depth=1)
    return qs.filter(depth=parent.depth + 1, path__startswith=parent.path)


def tenant_subtree(*, user: AnyUser | None, tenant: Tenant) -> QuerySet[Tenant]:
    """The tenant and everything below it that the user may see: one query."""
    return tenant_list(user=user).filter(path__startswith=tenant.path)


@dataclass(frozen=True)
class SubtreeShape:
    """What goes along when a tenant moves: its sub-tenants at every level (those being deleted not
    counted) and how many levels they reach below it (0: none)."""

    sub_tenants: int
    height: int


def tenant_subtree_shape(*, user: AnyUser | None, tenant: Tenant) -> SubtreeShape:
    """One query."""
    row = tenant_subtree(user=user, tenant=tenant).aggregate(
        sub_tenants=Count("pk", filter=~Q(pk=tenant.pk) & ~Q(state=Tenant.State.DELETING)),
        deepest=Max("depth"),
    )
    return SubtreeShape(
        sub_tenants=row["sub_tenants"], height=(row["deepest"] or tenant.depth) - tenant.depth
    )


def tenant_move_targets(*, user: AnyUser | None, tenant: Tenant, height: int) -> QuerySet[Tenant]:
    """Where `user` may move `tenant`, whose subtree reaches `height` levels below it: the tenants
    they administer (as `services.tenant_move` asks of the new parent) that may have sub-tenants,
    are neither `tenant` nor below it nor its parent already, are not being deleted, and keep the
    subtree within the tree's depth. The service checks the rest (names, allocations) as it moves."""
    return (
        tenant_list(user=user, action=Action.ADMINISTER)
        .filter(leaf=False, depth__lte=settings.CANOPY_MAX_TENANT_DEPTH - 1 - height)
        .exclude(path__startswith=tenant.path)
        .exclude(path=tenant.parent_tree_path or "")
        .exclude(state=Tenant.State.DELETING)
    )


def tenant_ancestors(*, user: AnyUser | None, tenant: Tenant) -> QuerySet[Tenant]:
    """The tenant's ancestors the user may see, from level 1 down: one query. (Every user may read
    the *names* of all ancestors in `tenant.name_path`.)"""
    prefixes = Tenant.path_prefixes(tenant.path, include_self=False)
    return tenant_list(user=user).filter(path__in=prefixes)


def tenant_tree_roots(*, user: AnyUser | None) -> QuerySet[Tenant]:
    """The tops of what the user can see: level-1 tenants for platform admins, otherwise each visible
    tenant whose parent the user cannot see. One query of index lookups, whatever the tree's size."""
    tops = top_paths(user)
    visible = tenant_list(user=user)
    return visible.filter(depth=1) if tops is None else visible.filter(path__in=tops)


@dataclass
class TreeNode:
    tenant: Tenant
    children: list[TreeNode] = field(default_factory=list)
    expanded: bool = False
    selected: bool = False
    match: bool = False


def tenant_tree(
    *, user: AnyUser | None, selected: Tenant | None = None, query: str = "", match_limit: int = 50
) -> tuple[list[TreeNode], list[Tenant]]:
    """The tree panel: the user's tops, opened down to the selected tenant and to every tenant whose
    path contains `query`. Three queries however large the tree (tops, matches, opened children)."""
    roots = list(tenant_tree_roots(user=user))
    matches = list(tenant_list(user=user).filter(name_path__icontains=query)[:match_limit]) if query else []
    open_paths: set[str] = set()
    for tenant in ([selected] if selected else []) + matches:
        open_paths.update(Tenant.path_prefixes(tenant.path, include_self=False))
    if selected is not None:
        open_paths.add(selected.path)
    children_by_parent: dict[str, list[Tenant]] = defaultdict(list)
    if open_paths:
        children = (
            tenant_list(user=user).alias(parent_path=parent_tree_path()).filter(parent_path__in=open_paths)
        )
        for child in children.order_by("name"):
            children_by_parent[child.parent_tree_path].append(child)
    match_ids = {tenant.pk for tenant in matches}

    def node(tenant: Tenant) -> TreeNode:
        expanded = tenant.path in open_paths and bool(children_by_parent.get(tenant.path))
        return TreeNode(
            tenant=tenant,
            children=[node(child) for child in children_by_parent.get(tenant.path, [])] if expanded else [],
            expanded=expanded,
            selected=selected is not None and tenant.pk == selected.pk,
            match=tenant.pk in match_ids,
        )

    return [node(root) for root in sorted(roots, key=lambda t: (t.depth, t.name))], matches


def yarn_guaranteed_share(tenant: Tenant, pool: ResourcePool) -> Decimal | None:
    """The fraction of a YARN pool a tenant's queue is guaranteed: the product of the capacity
    percents from level 1 down to it. One query."""
    prefixes = Tenant.path_prefixes(tenant.path)
    capacities = list(
        Allocation.objects.filter(pool=pool, tenant__path__in=prefixes).values_list(
            "capacity_percent", flat=True
        )
    )
    known = [c for c in capacities if c is not None]
    if len(capacities) != len(prefixes) or len(known) != len(capacities):
        return None
    share = Decimal(1)
    for capacity in known:
        share *= capacity / HUNDRED
    return share


@dataclass
class ResourceSummary:
    allocated: Any  # None = unlimited
    children: Any = 0  # what limited sub-tenants hold
    children_unlimited: int = 0  # how many sub-tenants are unlimited here

    @property
    def remaining(self) -> Any:
        """What is left for sub-tenants (`tenants.rules.left`); None where unlimited."""
        return left(self.allocated, self.children)


@dataclass
class PoolSummary:
    allocation: Allocation
    resources: dict[str, ResourceSummary] = field(default_factory=dict)


def tenant_summaries(tenants: list[Tenant], *, user: AnyUser | None) -> None:
    """Attach `pool_summaries` (a list of PoolSummary) to each tenant `user` may see (the others get
    none): its own allocations, and what its sub-tenants hold of each as sums (a sum is part of what
    the tenant has left, so it is shown to whoever sees the tenant). Two queries for any number."""
    if not tenants:
        return
    by_path = {tenant.path: tenant for tenant in tenants}
    own = (
        Allocation.objects.restrict(user, Action.VIEW)
        .filter(tenant__in=tenants)
        .select_related("pool__cluster")
        .order_by("pool__cluster__name", "pool__name")
    )
    per_tenant: dict[int, list[Allocation]] = defaultdict(list)
    for allocation in own:
        per_tenant[allocation.tenant_id].append(allocation)

    sums: dict[str, Aggregate] = {f"sum_{r.name}": Sum(r.field) for r in KUBERNETES_RESOURCES}
    sums.update(
        {
            f"unlimited_{r.name}": Count("pk", filter=Q(**{f"{r.field}__isnull": True}))
            for r in KUBERNETES_RESOURCES
        }
    )
    sums["sum_capacity"] = Sum("capacity_percent")
    child_rows = (
        Allocation.objects.annotate(parent_path=parent_tree_path("tenant__"))
        .filter(
            parent_path__in=restrict_tenants(Tenant.objects.filter(path__in=list(by_path)), user, Action.VIEW)
            .order_by()
            .values("path")
        )
        .values("parent_path", "pool_id")
        .annotate(**sums)
        .order_by()
    )
    held: dict[tuple[str, int], Mapping[str, Any]] = {
        (row["parent_path"], row["pool_id"]): row for row in child_rows
    }

    for tenant in tenants:
        summaries = []
        for allocation in per_tenant.get(tenant.pk, []):
            row = held.get((tenant.path, allocation.pool_id), {})
            summary = PoolSummary(allocation=allocation)
            if allocation.pool.is_yarn:
                summary.resources["capacity"] = ResourceSummary(
                    allocated=HUNDRED, children=row.get("sum_capacity") or Decimal(0)
                )
            else:
                for resource in KUBERNETES_RESOURCES:
                    summary.resources[resource.name] = ResourceSummary(
                        allocated=getattr(allocation, resource.field),
                        children=row.get(f"sum_{resource.name}") or 0,
                        children_unlimited=row.get(f"unlimited_{resource.name}") or 0,
                    )
            summaries.append(summary)
        tenant.pool_summaries = summaries


def allocation_list(*, user: AnyUser | None, action: Action = Action.VIEW) -> QuerySet[Allocation]:
    return Allocation.objects.restrict(user, action).select_related("tenant", "pool__cluster")


def allocation_grant_list(*, user: AnyUser | None, action: Action = Action.VIEW) -> QuerySet[AllocationGrant]:
    """Time-bound grants of the allocations the user may see (`action` MANAGE: those they may end)."""
    return AllocationGrant.objects.restrict(user, action).select_related(
        "tenant", "allocation__pool__cluster"
    )


GRANT_SHOWN_STATES = (*AllocationGrant.OPEN_STATES, AllocationGrant.State.REFUSED)


def allocation_grants_shown(
    *, user: AnyUser | None, allocations: list[Allocation]
) -> dict[int, AllocationGrant]:
    """Per allocation id, the grant its readers are shown (`AllocationGrant.shown_of`). One query."""
    by_id: dict[int, list[AllocationGrant]] = defaultdict(list)
    rows = allocation_grant_list(user=user).filter(
        allocation_id__in=[allocation.pk for allocation in allocations], state__in=GRANT_SHOWN_STATES
    )
    for grant in rows.order_by("-created_at", "-pk"):
        by_id[grant.allocation_id].append(grant)
    shown = {
        allocation.pk: AllocationGrant.shown_of(allocation, by_id[allocation.pk])
        for allocation in allocations
    }
    return {pk: grant for pk, grant in shown.items() if grant is not None}


def allocation_list_with_grants(*, user: AnyUser | None) -> QuerySet[Allocation]:
    """`allocation_list` with each allocation's grants that may be shown, newest first, in
    `recent_grants` (`AllocationGrant.shown_of` picks the one): one more query for any number of allocations."""
    recent = Prefetch(
        "grants",
        queryset=allocation_grant_list(user=user)
        .filter(state__in=GRANT_SHOWN_STATES)
        .order_by("-created_at", "-pk"),
        to_attr="recent_grants",
    )
    return allocation_list(user=user).prefetch_related(recent)


def cluster_list(*, user: AnyUser | None) -> QuerySet[Cluster]:
    return Cluster.objects.restrict(user, Action.VIEW)


def pool_list(*, user: AnyUser | None) -> QuerySet[ResourcePool]:
    """Pools with what level-1 tenants hold of each (limited amounts only) and how many are unlimited
    (`tenants.pool_figures.pool_holding` reads them)."""
    level1 = Q(allocations__tenant__depth=1)
    annotations: dict[str, Any] = {}
    for resource in KUBERNETES_RESOURCES:
        annotations[f"allocated_{resource.name}"] = Sum(f"allocations__{resource.field}", filter=level1)
        annotations[f"unlimited_{resource.name}"] = Count(
            "allocations", filter=level1 & Q(**{f"allocations__{resource.field}__isnull": True})
        )
    annotations["allocated_capacity"] = Sum("allocations__capacity_percent", filter=level1)
    return (
        ResourcePool.objects.restrict(user, Action.VIEW)
        .select_related("cluster")
        .annotate(**annotations)
        .order_by("cluster__name", "name")
    )


def plan_list(*, user: AnyUser | None) -> QuerySet[QuotaPlan]:
    return QuotaPlan.objects.restrict(user, Action.VIEW).prefetch_related(
        "allocations__pool__cluster", "storage__cluster"
    )


def storage_list(*, user: AnyUser | None) -> QuerySet[StorageDirectory]:
    return StorageDirectory.objects.restrict(user, Action.VIEW).select_related("tenant", "cluster")


def tenant_service_list(*, user: AnyUser | None) -> QuerySet[TenantService]:
    """The services (Hive databases) of the tenants the user may see."""
    return TenantService.objects.restrict(user, Action.VIEW).select_related("tenant", "cluster")


def volume_list(*, user: AnyUser | None) -> QuerySet[Volume]:
    """Volumes the user can mount or manage. `visible_attachments` holds only the claims of tenants
    the user can see; `attachment_count` counts all, so a shared volume can say "and N others"
    without naming them."""
    visible = VolumeAttachment.objects.filter(tenant__in=Tenant.objects.restrict(user, Action.VIEW))
    return (
        Volume.objects.restrict(user, Action.VIEW)
        .select_related("cluster", "share")
        .annotate(attachment_count=Count("attachments"))
        .prefetch_related(
            Prefetch("attachments", queryset=visible.select_related("tenant"), to_attr="visible_attachments")
        )
        .order_by("cluster__name", "name")
    )


def nfs_share_list(*, user: AnyUser | None) -> QuerySet[NfsShare]:
    """NFS shares: all for platform admins; for a tenant admin those usable in what they administer.
    `visible_grants` holds the grants to tenants the user can see (the others are not named)."""
    visible = NfsShareGrant.objects.filter(tenant__in=Tenant.objects.restrict(user, Action.VIEW))
    return (
        NfsShare.objects.restrict(user, Action.VIEW)
        .select_related("cluster")
        .prefetch_related(
            Prefetch("grants", queryset=visible.select_related("tenant"), to_attr="visible_grants")
        )
        .order_by("cluster__name", "name")
    )


def nfs_share_grant_get(*, user: AnyUser | None, share: NfsShare, tenant_id: int) -> NfsShareGrant:
    """The grant of `share` to a tenant the user can see; anything else does not exist (404)."""
    grant = (
        NfsShareGrant.objects.restrict(user, Action.VIEW)
        .select_related("tenant", "share")
        .filter(share=share, tenant_id=tenant_id)
        .first()
    )
    if grant is None:
        raise Http404("No such grant.")
    return grant


def membership_list(*, user: AnyUser | None) -> QuerySet[Membership]:
    return Membership.objects.restrict(user, Action.VIEW).select_related("tenant", "user", "group")


@dataclass
class EffectiveRole:
    """A person's strongest role on one tenant and where each of their roles that holds there
    comes from: on the tenant itself (direct, or through a group) or, a tenant admin's, above it."""

    tenant: Tenant
    role: str
    sources: list[Membership]  # the tenant's own roles (direct first, then groups), then those from above

    @property
    def role_display(self) -> str:
        return Membership.Role(self.role).label


def effective_roles(*, user: AnyUser | None, person: AnyUser) -> list[EffectiveRole]:
    """`person`'s roles on the tenants `user` can see, direct and through groups, one entry per tenant
    they hold a role on (ordered by tree path), with the strongest role that reaches it: a tenant
    admin's role on an ancestor counts (`tenants.roles`). One query."""
    rows = list(membership_list(user=user).filter(subject_q(person)).order_by("tenant__path", "group__name"))
    entries = []
    for tenant in {row.tenant_id: row.tenant for row in rows}.values():
        holding = [row for row in rows if reaches(row.role, row.tenant.path, tenant.path)]
        holding.sort(key=lambda row: (row.tenant_id != tenant.pk, row.group_id is not None))
        entries.append(
            EffectiveRole(tenant=tenant, role=strongest(row.role for row in holding), sources=holding)
        )
    return entries


def user_list(*, user: AnyUser | None) -> QuerySet:
    return restrict_users(User.objects.all(), user, Action.VIEW).order_by("username")


def user_groups_of(*, user: AnyUser | None, people_ids: list[int]) -> list[tuple[int, int]]:
    """(person id, group id) for each group of these people that the user may see (`user_list`)."""
    visible = user_list(user=user).order_by().values("pk")
    rows = User.groups.through.objects.filter(user_id__in=people_ids).filter(user_id__in=visible)
    return list(rows.values_list("user_id", "group_id"))


def group_list(*, user: AnyUser | None) -> QuerySet[Group]:
    """Groups the user may see (`permissions.restrict_groups`), by name."""
    return restrict_groups(Group.objects.all(), user, Action.VIEW).order_by("name")


@dataclass(frozen=True)
class MemberChoice:
    """One entry of the Members tab's picker: a user or a group that may be given a role."""

    kind: str  # "user" or "group"
    name: str
    full_name: str = ""

    @property
    def value(self) -> str:
        return f"{self.kind}:{self.name}"


# Names a cluster can hold (tenants.cluster_names): anyone else can hold a role through a group only.
_GRANTABLE_NAME = rf"^{NAME_PATTERN}\Z"


def member_choices(
    *, user: AnyUser | None, tenant: Tenant, query: str = "", limit: int = 20
) -> list[MemberChoice]:
    """What the Members tab's picker offers for `query`: the people and groups the user may see
    (`user_list`, `group_list`: never anyone else) whose name (a person's full name too) contains
    it, that hold no role on `tenant` yet and whose names a cluster can hold; at most `limit` of
    each, by name. Two queries. The caller checks that the user administers `tenant`."""
    people = (
        user_list(user=user)
        .filter(is_active=True, username__regex=_GRANTABLE_NAME)
        .exclude(pk__in=Membership.objects.filter(tenant=tenant, user_id__isnull=False).values("user_id"))
    )
    groups = group_list(user=user).filter(name__regex=_GRANTABLE_NAME)
    groups = groups.exclude(
        pk__in=Membership.objects.filter(tenant=tenant, group_id__isnull=False).values("group_id")
    )
    if query:
        people = people.filter(
            Q(username__icontains=query) | Q(first_name__icontains=query) | Q(last_name__icontains=query)
        )
        groups = groups.filter(name__icontains=query)
    choices = [
        MemberChoice(kind="user", name=person.get_username(), full_name=person.get_full_name())
        for person in people.only("username", "first_name", "last_name")[:limit]
    ]
    return choices + [
        MemberChoice(kind="group", name=name) for name in groups.values_list("name", flat=True)[:limit]
    ]


def user_to_grant(*, user: AnyUser | None, username: str) -> Any:
    """The active person named exactly `username`, or None, for a role the user is about to grant.

    Not restricted to `user_list`: an admin grants a role on their tenant to someone who holds none
    there yet, so whom they may list does not decide it; `services.membership_grant` checks that the
    user may grant on the tenant, and nobody unauthenticated gets here."""
    if user is None or not user.is_authenticated:
        return None
    return User.objects.filter(username=username, is_active=True).first()


def membership_admin_exists(*, user: AnyUser) -> bool:
    """Whether the user holds an admin role on some tenant (directly or through a group): their own
    roles, so nothing of anybody else's is read."""
    return Membership.objects.filter(subject_q(user), role=Membership.Role.ADMIN).exists()


def tenant_children_of_id(*, user: AnyUser | None, parent_id: int) -> QuerySet[Tenant]:
    """The tenants directly under the tenant `parent_id` that the user can see; empty if there is
    no such tenant. The parent itself need not be visible (a tenant admin below it lists their own
    tenants by it), and nothing of it is returned."""
    parent = Tenant.objects.filter(pk=parent_id).only("path", "depth").first()
    if parent is None:
        return Tenant.objects.none()
    return tenant_list(user=user).filter(depth=parent.depth + 1, path__startswith=parent.path)


def volume_ids_of_tenant(*, user: AnyUser | None, tenant_id: int) -> QuerySet:
    """The ids of the volumes the tenant `tenant_id` mounts, if the user can see that tenant."""
    visible = tenant_list(user=user).filter(pk=tenant_id)
    return VolumeAttachment.objects.filter(tenant__in=visible).values("volume_id")


def audit_list(*, user: AnyUser | None) -> QuerySet[AuditEvent]:
    """The audit rows `user` may see, newest first; read each through `audit_reader(user=...)`."""
    return AuditEvent.objects.restrict(user, Action.VIEW).select_related("tenant")


def audit_reader(*, user: AnyUser | None) -> AuditReader:
    """What `user` reads of the rows of `audit_list` (tenants.audit.AuditReader). Platform admins:
    no query; anyone else one, for the paths of names of the tenants they hold roles on."""
    if is_platform_admin(user):
        return AuditReader(everything=True)
    administered, held = held_tenant_paths(user)
    names = dict(Tenant.objects.filter(path__in=held).values_list("path", "name_path")) if held else {}
    return AuditReader(
        administered=tuple(administered),
        administered_names=tuple(names[path] for path in administered if path in names),
        held_names=tuple(sorted(names.values())),
    )


# ---------------------------------------------------------------------------------------------
# Dashboards (issue 7): batched reads, so a page about many tenants costs the same as about one.


def yarn_guaranteed_shares(
    tenants: list[Tenant], *, user: AnyUser | None
) -> dict[tuple[int, int], Decimal | None]:
    """`yarn_guaranteed_share` for every YARN allocation of `tenants`, keyed (tenant id, pool id):
    one query for the allocations of all their ancestors (needs `tenant_summaries` first). An
    ancestor's capacity is read only on behalf of a tenant in `tenants` that `user` may see: the
    share is that tenant's figure, even where the ancestor itself is out of the user's sight."""
    prefixes = {prefix for tenant in tenants for prefix in Tenant.path_prefixes(tenant.path)}
    pool_ids = {
        summary.allocation.pool_id
        for tenant in tenants
        for summary in getattr(tenant, "pool_summaries", [])
        if summary.allocation.pool.is_yarn
    }
    if not pool_ids:
        return {}
    capacity = {
        (path, pool_id): percent
        for path, pool_id, percent in Allocation.objects.filter(
            Exists(
                restrict_tenants(
                    Tenant.objects.filter(pk__in=[tenant.pk for tenant in tenants]), user, Action.VIEW
                ).filter(path__startswith=OuterRef("tenant__path"))
            ),
            pool_id__in=pool_ids,
            tenant__path__in=prefixes,
        ).values_list("tenant__path", "pool_id", "capacity_percent")
    }
    shares: dict[tuple[int, int], Decimal | None] = {}
    for tenant in tenants:
        for pool_id in pool_ids:
            share = Decimal(1)
            for prefix in Tenant.path_prefixes(tenant.path):
                percent = capacity.get((prefix, pool_id))
                if percent is None:
                    shares[(tenant.pk, pool_id)] = None
                    break
                share *= percent / HUNDRED
            else:
                shares[(tenant.pk, pool_id)] = share
    return shares
