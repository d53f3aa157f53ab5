"""Every read of Canopy's domain, always for a given user, always through `restrict`.

List selectors return querysets with what their callers show already joined, so a page of any size
costs the same number of queries; `tenant_summaries` adds, in two queries for the whole page, what
each tenant is allocated, what its sub-tenants hold and what remains.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Length, Substr
from django.http import Http404

from tenants import usage
from tenants.amounts import HUNDRED, KUBERNETES_RESOURCES, POOL_CAPACITY_FIELDS
from tenants.models import (
    Allocation,
    AuditEvent,
    Cluster,
    FlavorUsage,
    Membership,
    NfsShare,
    NfsShareGrant,
    QuotaPlan,
    ResourcePool,
    StorageDirectory,
    Tenant,
    UsageRollup,
    UsageSample,
    Volume,
    VolumeAttachment,
    Workload,
    parent_tree_path,
)
from tenants.permissions import Action, restrict_users, subject_q, top_paths

User = get_user_model()


def _parent_id_subquery() -> Subquery:
    parent_path = Substr(OuterRef("path"), 1, Length(OuterRef("path")) - Tenant.steplen)
    return Subquery(Tenant.objects.filter(path=parent_path).values("pk")[:1], output_field=IntegerField())


def tenant_list(*, user: AbstractBaseUser | None, action: Action = Action.VIEW) -> QuerySet[Tenant]:
    """Tenants the user may see (or act on), in tree order, each with `parent_id` annotated."""
    return (
        Tenant.objects.restrict(user, action)
        .select_related("plan")
        .annotate(parent_id=_parent_id_subquery())
        .order_by("path")
    )


def tenant_get(*, user: AbstractBaseUser | None, pk: Any, action: Action = Action.VIEW) -> Tenant:
    try:
        return tenant_list(user=user, action=action).get(pk=pk)
    except (Tenant.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such tenant.") from exc


def tenant_children(*, user: AbstractBaseUser | None, parent: Tenant | None) -> QuerySet[Tenant]:
    qs = tenant_list(user=user)
    if parent is None:
        return qs.filter(depth=1)
    return qs.filter(depth=parent.depth + 1, path__startswith=parent.path)


def tenant_subtree(*, user: AbstractBaseUser | None, tenant: Tenant) -> QuerySet[Tenant]:
    """The tenant and everything below it that the user may see: one query."""
    return tenant_list(user=user).filter(path__startswith=tenant.path)


def tenant_ancestors(*, user: AbstractBaseUser | None, tenant: Tenant) -> QuerySet[Tenant]:
    """The tenant's ancestors the user may see, from level 1 down: one query. (Every user may read
    the *names* of all ancestors in `tenant.name_path`.)"""
    prefixes = Tenant.path_prefixes(tenant.path, include_self=False)
    return tenant_list(user=user).filter(path__in=prefixes)


def tenant_tree_roots(*, user: AbstractBaseUser | None) -> QuerySet[Tenant]:
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
    *, user: AbstractBaseUser | None, selected: Tenant | None = None, query: str = "", match_limit: int = 50
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
    if len(capacities) != len(prefixes) or any(c is None for c in capacities):
        return None
    share = Decimal(1)
    for capacity in capacities:
        share *= capacity / HUNDRED
    return share


@dataclass
class ResourceSummary:
    allocated: Any  # None = unlimited
    children: Any = 0  # what limited sub-tenants hold
    children_unlimited: int = 0  # how many sub-tenants are unlimited here

    @property
    def remaining(self) -> Any:
        if self.allocated is None:
            return None
        return self.allocated - self.children


@dataclass
class PoolSummary:
    allocation: Allocation
    resources: dict[str, ResourceSummary] = field(default_factory=dict)


def tenant_summaries(tenants: list[Tenant]) -> None:
    """Attach `pool_summaries` (a list of PoolSummary) to each tenant. Two queries for any number."""
    if not tenants:
        return
    by_path = {tenant.path: tenant for tenant in tenants}
    own = (
        Allocation.objects.filter(tenant__in=tenants)
        .select_related("pool__cluster")
        .order_by("pool__cluster__name", "pool__name")
    )
    per_tenant: dict[int, list[Allocation]] = defaultdict(list)
    for allocation in own:
        per_tenant[allocation.tenant_id].append(allocation)

    sums = {f"sum_{r.name}": Sum(r.field) for r in KUBERNETES_RESOURCES}
    sums.update(
        {
            f"unlimited_{r.name}": Count("pk", filter=Q(**{f"{r.field}__isnull": True}))
            for r in KUBERNETES_RESOURCES
        }
    )
    sums["sum_capacity"] = Sum("capacity_percent")
    child_rows = (
        Allocation.objects.annotate(parent_path=parent_tree_path("tenant__"))
        .filter(parent_path__in=list(by_path))
        .values("parent_path", "pool_id")
        .annotate(**sums)
        .order_by()
    )
    held: dict[tuple[str, int], dict[str, Any]] = {
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


def allocation_list(*, user: AbstractBaseUser | None, action: Action = Action.VIEW) -> QuerySet[Allocation]:
    return Allocation.objects.restrict(user, action).select_related("tenant", "pool__cluster")


def cluster_list(*, user: AbstractBaseUser | None) -> QuerySet[Cluster]:
    return Cluster.objects.restrict(user, Action.VIEW)


def pool_list(*, user: AbstractBaseUser | None) -> QuerySet[ResourcePool]:
    """Pools with what level-1 tenants hold of each (limited amounts only) and how many are unlimited."""
    level1 = Q(allocations__tenant__depth=1)
    annotations: dict[str, Any] = {}
    for resource in KUBERNETES_RESOURCES:
        annotations[f"allocated_{resource.name}"] = Sum(f"allocations__{resource.field}", filter=level1)
    annotations["allocated_capacity"] = Sum("allocations__capacity_percent", filter=level1)
    return (
        ResourcePool.objects.restrict(user, Action.VIEW)
        .select_related("cluster")
        .annotate(**annotations)
        .order_by("cluster__name", "name")
    )


def pool_free(pool: ResourcePool) -> dict[str, Any]:
    """Capacity minus what level-1 tenants hold, per resource; needs a pool from `pool_list`."""
    free: dict[str, Any] = {}
    for resource in KUBERNETES_RESOURCES:
        capacity = getattr(pool, POOL_CAPACITY_FIELDS[resource.name])
        free[resource.name] = capacity - (getattr(pool, f"allocated_{resource.name}") or 0)
    free["capacity"] = HUNDRED - (pool.allocated_capacity or Decimal(0))
    return free


def plan_list(*, user: AbstractBaseUser | None) -> QuerySet[QuotaPlan]:
    return QuotaPlan.objects.restrict(user, Action.VIEW).prefetch_related(
        "allocations__pool__cluster", "storage__cluster"
    )


def storage_list(*, user: AbstractBaseUser | None) -> QuerySet[StorageDirectory]:
    return StorageDirectory.objects.restrict(user, Action.VIEW).select_related("tenant", "cluster")


def volume_list(*, user: AbstractBaseUser | None) -> QuerySet[Volume]:
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


def nfs_share_list(*, user: AbstractBaseUser | None) -> QuerySet[NfsShare]:
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


def nfs_share_grant_get(*, user: AbstractBaseUser | None, share: NfsShare, tenant_id: int) -> NfsShareGrant:
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


def membership_list(*, user: AbstractBaseUser | None) -> QuerySet[Membership]:
    return Membership.objects.restrict(user, Action.VIEW).select_related("tenant", "user", "group")


ROLE_STRENGTH = {Membership.Role.VIEWER: 0, Membership.Role.MEMBER: 1, Membership.Role.ADMIN: 2}


@dataclass
class EffectiveRole:
    """A person's strongest role on one tenant and where each of their roles there comes from."""

    tenant: Tenant
    role: str
    sources: list[Membership]  # direct (group is None) or through a group

    @property
    def role_display(self) -> str:
        return Membership.Role(self.role).label


def effective_roles(*, user: AbstractBaseUser | None, person: AbstractBaseUser) -> list[EffectiveRole]:
    """`person`'s roles on the tenants `user` can see, direct and through groups, one entry per tenant
    (ordered by tree path). One query."""
    rows = membership_list(user=user).filter(subject_q(person)).order_by("tenant__path", "group__name")
    by_tenant: dict[int, EffectiveRole] = {}
    for membership in rows:
        entry = by_tenant.setdefault(
            membership.tenant_id, EffectiveRole(tenant=membership.tenant, role=membership.role, sources=[])
        )
        if ROLE_STRENGTH[membership.role] > ROLE_STRENGTH[entry.role]:
            entry.role = membership.role
        if membership.group_id is None:
            entry.sources.insert(0, membership)  # the direct role first, then the groups by name
        else:
            entry.sources.append(membership)
    return list(by_tenant.values())


def user_list(*, user: AbstractBaseUser | None) -> QuerySet:
    return restrict_users(User.objects.all(), user, Action.VIEW).order_by("username")


def audit_list(*, user: AbstractBaseUser | None) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.restrict(user, Action.VIEW).select_related("tenant")


# ---------------------------------------------------------------------------------------------
# Usage (issue 7). Members (Action.USE) see a tenant's usage and workloads; viewers do not.


@dataclass
class UsageQuery:
    """A validated request for series: which figures, the range and the step between points."""

    metrics: list[str]
    start: datetime.datetime
    end: datetime.datetime
    step: datetime.timedelta


def usage_source(query: UsageQuery, now: datetime.datetime) -> str:
    """Where a range is read from: raw samples for steps under an hour while they are kept, hourly
    rollups for steps under a day, daily rollups beyond."""
    raw_from = now - datetime.timedelta(days=settings.CANOPY_USAGE_RAW_DAYS)
    if query.step < datetime.timedelta(hours=1) and query.start >= raw_from:
        return "raw"
    if query.step < datetime.timedelta(days=1):
        return UsageRollup.Resolution.HOUR
    return UsageRollup.Resolution.DAY


def usage_series(
    *, user: AbstractBaseUser | None, tenant: Tenant, query: UsageQuery, now: datetime.datetime
) -> tuple[str, dict[str, list[usage.Series]]]:
    """For each metric, one series per cluster and partition the tenant has figures on, averaged
    into `query.step` buckets. One query, whatever the subtree's size (figures are subtree totals).
    Raises Http404 when the user may not use the tenant."""
    tenant = tenant_get(user=user, pk=tenant.pk, action=Action.USE)
    source = usage_source(query, now)
    if source == "raw":
        rows = UsageSample.objects.restrict(user, Action.USE).filter(tenant=tenant)
    else:
        rows = UsageRollup.objects.restrict(user, Action.USE).filter(tenant=tenant, resolution=source)
    rows = rows.filter(time__gte=query.start, time__lt=query.end).order_by("cluster_id", "partition", "time")
    grouped: dict[tuple[int, str], list[tuple[Any, ...]]] = defaultdict(list)
    for row in rows.values_list("cluster_id", "partition", "time", *query.metrics):
        grouped[(row[0], row[1])].append(row[2:])
    result: dict[str, list[usage.Series]] = {metric: [] for metric in query.metrics}
    for (cluster_id, partition), values in grouped.items():
        averaged = usage.bucket_averages(values, query.start, query.step)
        for metric, points in zip(query.metrics, averaged, strict=True):
            if points:
                result[metric].append(usage.Series(cluster_id, partition, points))
    return source, result


def usage_latest(
    *, user: AbstractBaseUser | None, tenant_ids: list[int], now: datetime.datetime
) -> dict[int, dict[tuple[int, str], dict[str, float | None]]]:
    """The newest figures of each tenant on each cluster partition, from the last few collection
    passes (older figures are stale and not shown). One query for any number of tenants."""
    since = now - datetime.timedelta(seconds=3 * settings.CANOPY_USAGE_INTERVAL_SECONDS + 60)
    rows = (
        UsageSample.objects.restrict(user, Action.USE)
        .filter(tenant_id__in=tenant_ids, time__gte=since)
        .order_by("-time")
        .values("tenant_id", "cluster_id", "partition", "time", *usage.USAGE_METRICS)
    )
    latest: dict[int, dict[tuple[int, str], dict[str, float | None]]] = defaultdict(dict)
    for row in rows:
        key = (row["cluster_id"], row["partition"])
        if key not in latest[row["tenant_id"]]:
            latest[row["tenant_id"]][key] = row
    return dict(latest)


def flavor_usage_latest(
    *, user: AbstractBaseUser | None, tenant_ids: list[int], now: datetime.datetime
) -> dict[int, dict[int, FlavorUsage]]:
    """What each tenant's subtree uses, reserves and borrows of each pool of a Kueue cluster, as
    the last collection pass saw it (tenant id -> pool id -> row); figures older than a few passes
    are stale and left out, as in `usage_latest`. One query for any number of tenants."""
    since = now - datetime.timedelta(seconds=3 * settings.CANOPY_USAGE_INTERVAL_SECONDS + 60)
    rows = FlavorUsage.objects.restrict(user, Action.USE).filter(tenant_id__in=tenant_ids, seen_at__gte=since)
    latest: dict[int, dict[int, FlavorUsage]] = defaultdict(dict)
    for row in rows:
        latest[row.tenant_id][row.pool_id] = row
    return dict(latest)


def cluster_names(*, ids: set[int]) -> QuerySet:
    """(id, name) of the clusters named in figures the caller was already allowed to read."""
    return Cluster.objects.filter(pk__in=ids).values_list("pk", "name")


def workload_list(*, user: AbstractBaseUser | None) -> QuerySet[Workload]:
    """Workloads in the tenants the user uses (members and admins), with tenant and cluster joined."""
    return Workload.objects.restrict(user, Action.USE).select_related("tenant", "cluster")


# ---------------------------------------------------------------------------------------------
# Dashboards (issue 7): batched reads, so a page about many tenants costs the same as about one.


def yarn_guaranteed_shares(tenants: list[Tenant]) -> dict[tuple[int, int], Decimal | None]:
    """`yarn_guaranteed_share` for every YARN allocation of `tenants`, keyed (tenant id, pool id):
    one query for the allocations of all their ancestors (needs `tenant_summaries` first)."""
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
            pool_id__in=pool_ids, tenant__path__in=prefixes
        ).values_list("tenant__path", "pool_id", "capacity_percent")
    }
    shares: dict[tuple[int, int], Decimal | None] = {}
    for tenant in tenants:
        for pool_id in pool_ids:
            share: Decimal | None = Decimal(1)
            for prefix in Tenant.path_prefixes(tenant.path):
                percent = capacity.get((prefix, pool_id))
                if percent is None:
                    share = None
                    break
                share *= percent / HUNDRED
            shares[(tenant.pk, pool_id)] = share
    return shares
