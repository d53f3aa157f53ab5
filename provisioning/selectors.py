"""Reads for provisioning.

Two kinds: reads for a person (`status_list`, `connection_list`), restricted like every other
read; and the worker's reads (`tenant_targets`), which turn the database's truth about one tenant
into the plain dataclasses `provisioning.desired` renders. The worker acts for the system, not
for a person, so those take no user.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import QuerySet

from provisioning.desired.kubernetes import (
    KUEUE_ENGINE,
    RESOURCE_QUOTA_ENGINE,
    ClusterSettings,
    ContainerDefaults,
    OidcNames,
    Pool,
    PoolShare,
    Principal,
    Quota,
    Subject,
    TenantState,
    VolumeClaim,
    namespace_name,
)
from provisioning.desired.kueue import CLUSTER_OWNER_ID
from provisioning.desired.yarn import QueueShare, StorageDir, YarnTenant
from provisioning.models import ClusterSyncStatus, HadoopConnection, KubernetesConnection, TenantSync
from tenants.amounts import KUBERNETES_RESOURCES, maximum_of
from tenants.models import (
    Allocation,
    Cluster,
    Membership,
    ResourcePool,
    StorageDirectory,
    Tenant,
    TenantService,
    VolumeAttachment,
)
from tenants.permissions import Action, AnyUser, can, is_platform_admin
from tenants.quantities import parse_cpu_millicores, parse_memory_bytes
from tenants.roles import rank, reaches
from tenants.rules import left
from tenants.services.tenant_services import service_path

PROVISIONED_KINDS = (Cluster.Kind.KUBERNETES, Cluster.Kind.YARN)

# ---------------------------------------------------------------------------------------------
# For people


def status_list(*, user: AnyUser | None, action: Action = Action.VIEW) -> QuerySet[ClusterSyncStatus]:
    return ClusterSyncStatus.objects.restrict(user, action).select_related("sync", "cluster")


def connection_list(*, user: AnyUser | None) -> QuerySet[KubernetesConnection]:
    """Connections hold credentials: platform admins only."""
    if not is_platform_admin(user):
        return KubernetesConnection.objects.none()
    return KubernetesConnection.objects.select_related("cluster").order_by("cluster__name")


def hadoop_connection_list(*, user: AnyUser | None) -> QuerySet[HadoopConnection]:
    """Platform admins only, like Kubernetes connections."""
    if not is_platform_admin(user):
        return HadoopConnection.objects.none()
    return HadoopConnection.objects.select_related("cluster").order_by("cluster__name")


def connection_of(
    *, user: AnyUser | None, cluster: Cluster
) -> KubernetesConnection | HadoopConnection | None:
    """How Canopy reaches `cluster` (its Kubernetes or its Hadoop connection), for platform admins;
    None when it has none or `user` may not see connections."""
    listed = hadoop_connection_list if cluster.kind == Cluster.Kind.YARN else connection_list
    return listed(user=user).filter(cluster=cluster).first()


def kubernetes_clusters_by_tenant(tenant_ids: list[int], *, user: AnyUser | None) -> dict[int, list[Cluster]]:
    """The Kubernetes clusters each tenant `user` may see has an allocation on (a namespace there),
    by name, with their connection joined: one query."""
    by_tenant: dict[int, list[Cluster]] = defaultdict(list)
    rows = (
        Allocation.objects.restrict(user, Action.VIEW)
        .filter(tenant_id__in=tenant_ids, pool__cluster__kind=Cluster.Kind.KUBERNETES)
        .select_related("pool__cluster__kubernetes_connection")
        .order_by("pool__cluster__name")
    )
    for allocation in rows:
        clusters = by_tenant[allocation.tenant_id]
        if all(cluster.pk != allocation.pool.cluster_id for cluster in clusters):
            clusters.append(allocation.pool.cluster)
    return dict(by_tenant)


def tenant_namespaces(tenants: Iterable[Tenant], *, user: AnyUser | None) -> dict[int, str]:
    """Each tenant's Kubernetes namespace, as every page names it (My access, My jobs, the Clusters
    tab, the kubeconfig help), for the tenants `user` may see (`can`: from the request's grants, no
    query): the name fixed when it was first assigned (`TenantSync`, kept through moves), or for a
    tenant not given one yet the name `desired.kubernetes.namespace_name` gives its path
    ("department1/dev1" -> "department1-dev1", never the tenant's name alone). One query for any
    number."""
    return _namespaces([tenant for tenant in tenants if can(user, Action.VIEW, tenant)])


def tenant_namespaces_for_system(tenants: Iterable[Tenant]) -> dict[int, str]:
    """`tenant_namespaces` for the worker and the demo generator, which act for no one."""
    return _namespaces(list(tenants))


def _namespaces(tenants: list[Tenant]) -> dict[int, str]:
    stored = dict(
        TenantSync.objects.filter(tenant_id__in=[tenant.pk for tenant in tenants]).values_list(
            "tenant_id", "namespace"
        )
    )
    return {tenant.pk: stored.get(tenant.pk) or namespace_name(tenant.name_path) for tenant in tenants}


# ---------------------------------------------------------------------------------------------
# For the worker


@dataclass
class YarnCluster:
    """Everything a Hadoop cluster should have: its queue tree is planned as one (sibling
    capacities depend on each other), so every tenant on it, and the partitions of its pools."""

    tenants: list[YarnTenant]
    partitions: list[str]


@dataclass
class Target:
    """One cluster a tenant is (or was) on, with what it should have there (None: nothing).
    `cluster_objects`: the target is the cluster's own objects (Kueue's flavors, root cohort,
    admission policy; owner id 0), not a tenant's."""

    cluster: Cluster
    connection: KubernetesConnection | HadoopConnection | None
    settings: ClusterSettings
    state: TenantState | YarnTenant | None
    yarn: YarnCluster | None = None
    cluster_objects: bool = False


def container_defaults() -> ContainerDefaults:
    return ContainerDefaults(
        request_cpu_millicores=parse_cpu_millicores(settings.CANOPY_DEFAULT_REQUEST_CPU),
        request_memory_bytes=parse_memory_bytes(settings.CANOPY_DEFAULT_REQUEST_MEMORY),
        limit_cpu_millicores=parse_cpu_millicores(settings.CANOPY_DEFAULT_LIMIT_CPU),
        limit_memory_bytes=parse_memory_bytes(settings.CANOPY_DEFAULT_LIMIT_MEMORY),
    )


def cluster_settings(cluster: Cluster, connection: KubernetesConnection | None) -> ClusterSettings:
    engine = connection.quota_engine if connection is not None else RESOURCE_QUOTA_ENGINE
    return ClusterSettings(
        name=cluster.name,
        gpu_resource=connection.gpu_resource if connection else "nvidia.com/gpu",
        network_policy=bool(connection and connection.network_policy),
        defaults=container_defaults(),
        oidc=OidcNames(connection.oidc_username_prefix, connection.oidc_groups_prefix)
        if connection is not None and connection.oidc
        else None,
        quota_engine=engine,
        pools=_kueue_pools(cluster) if engine == KUEUE_ENGINE else (),
    )


def _kueue_pools(cluster: Cluster) -> tuple[Pool, ...]:
    """Every pool of the cluster (each is a ResourceFlavor under the Kueue engine). One query."""
    return tuple(
        Pool(
            name=pool.name,
            node_selector=pool.node_selector,
            capacity=Quota(pool.gpu_capacity, pool.cpu_capacity_millicores, pool.memory_capacity_bytes),
        )
        for pool in ResourcePool.objects.filter(cluster=cluster).order_by("name")
    )


def _ancestor_paths(tenant: Tenant) -> list[str]:
    return Tenant.path_prefixes(tenant.path, include_self=False)


ResourceHeld = dict[tuple[str, int, str], int]  # (parent's tree path, pool id, field) -> held by its children


def _held_by_children(child_allocations: Iterable[Allocation]) -> ResourceHeld:
    """What sub-tenants hold, summed per parent, pool and resource (unlimited holds nothing)."""
    held: ResourceHeld = defaultdict(int)
    for allocation in child_allocations:
        parent = allocation.tenant.parent_tree_path
        for resource in KUBERNETES_RESOURCES:
            held[(parent or "", allocation.pool_id, resource.field)] += (
                getattr(allocation, resource.field) or 0
            )
    return held


def _own(tenant: Tenant, allocation: Allocation, held: ResourceHeld) -> dict[str, int | None]:
    """What the tenant may use itself in one pool, per resource: what is left of its allocation
    once its sub-tenants hold theirs (`tenants.rules.left`), so a parent's namespace and its
    children's never add up to more than the parent was given. None: unlimited."""
    return {
        resource.field: left(
            getattr(allocation, resource.field),
            held.get((tenant.path, allocation.pool_id, resource.field), 0),
        )
        for resource in KUBERNETES_RESOURCES
    }


def _quota(tenant: Tenant, allocations: list[Allocation], held: ResourceHeld) -> Quota:
    """What the tenant may use itself (`_own`), summed over the cluster's pools. Unlimited anywhere
    is unlimited."""
    owns = [_own(tenant, allocation, held) for allocation in allocations]
    totals = {
        resource.field: None
        if any(own[resource.field] is None for own in owns)
        else sum(own[resource.field] or 0 for own in owns)  # none is None here
        for resource in KUBERNETES_RESOURCES
    }
    return Quota(**totals)


def _pool_shares(tenant: Tenant, allocations: list[Allocation], held: ResourceHeld) -> tuple[PoolShare, ...]:
    """Per pool (the Kueue engine): what the tenant's own queue is guaranteed (`_own`) and how much
    more its burst lets it borrow. `allocations` with their pools."""
    shares = []
    for allocation in allocations:
        extra: dict[str, int | None] = {}
        for resource in KUBERNETES_RESOURCES:
            amount = getattr(allocation, resource.field)
            most = maximum_of(amount, getattr(allocation, resource.burst_field))
            extra[resource.field] = None if amount is None else max((most or 0) - amount, 0)
        shares.append(
            PoolShare(allocation.pool.name, Quota(**_own(tenant, allocation, held)), Quota(**extra))
        )
    return tuple(sorted(shares, key=lambda share: share.pool))


def _memberships(paths: Iterable[str]) -> QuerySet[Membership]:
    """Roles on the tenants with these tree paths, with their people (a group's members too)."""
    rows = Membership.objects.filter(tenant__path__in=list(paths)).select_related("user", "tenant")
    if hasattr(Membership, "group"):  # group roles: every member of the group holds the role
        rows = rows.select_related("group").prefetch_related("group__user_set")
    return rows.order_by("tenant__depth")


def _subjects(tenant: Tenant, rows: Iterable[Membership]) -> tuple[Subject, ...]:
    """Active people with a role on the tenant (their own, or a group's they are in), and admins
    of its ancestors; each once, with their strongest role. `rows`: the roles on the tenant and
    its ancestors, level 1 first."""
    best: dict[str, Subject] = {}
    for row in rows:
        if not reaches(row.role, row.tenant.path, tenant.path):
            continue
        inherited = row.tenant_id != tenant.pk
        group = getattr(row, "group", None)
        people = list(group.user_set.all()) if group is not None else [row.user]
        for person in people:
            if person is None or not person.is_active:
                continue
            username = person.get_username()
            subject = Subject(
                username=username, role=row.role, inherited_from=row.tenant.name_path if inherited else None
            )
            current = best.get(username)
            if current is None or rank(subject.role) > rank(current.role):
                best[username] = subject
    return tuple(sorted(best.values(), key=lambda s: s.username))


def _principals(tenant: Tenant, rows: Iterable[Membership]) -> tuple[Principal, ...]:
    """The memberships' own subjects (users and groups, not the people in the groups) with a role
    on the tenant, and admins of its ancestors; each once, with its strongest role. For OIDC
    clusters, whose API server knows people's groups itself. `rows` as for `_subjects`."""
    best: dict[tuple[str, str], Principal] = {}
    for row in rows:
        if not reaches(row.role, row.tenant.path, tenant.path):
            continue
        inherited = row.tenant_id != tenant.pk
        if row.group is not None:
            kind, name = "Group", row.group.name
        elif row.user is not None and row.user.is_active:
            kind, name = "User", row.user.get_username()
        else:
            continue
        principal = Principal(kind, name, row.role, row.tenant.name_path if inherited else None)
        current = best.get((kind, name))
        if current is None or rank(principal.role) > rank(current.role):
            best[(kind, name)] = principal
    return tuple(sorted(best.values(), key=lambda p: (p.kind, p.name)))


def _claims(attachments: Iterable[VolumeAttachment]) -> tuple[VolumeClaim, ...]:
    return tuple(
        VolumeClaim(
            claim_name=a.claim_name,
            volume_name=a.volume.name,
            share=a.volume.share.name,
            server=a.volume.share.server,
            base_path=a.volume.share.base_path,
            sub_path=a.volume.sub_path,
            capacity_bytes=a.volume.capacity_bytes,
            access_mode=a.volume.access_mode,
            shared=a.volume.scope == a.volume.Scope.SHARED,
        )
        for a in attachments
    )


@dataclass(frozen=True)
class KueuePlace:
    """Where a tenant sits in the Kueue engine's cohort tree: its parent's namespace (None at
    level 1) and whether it has sub-tenants on the cluster."""

    parent_namespace: str | None
    has_subtenants: bool


def _state(
    tenant: Tenant,
    sync: TenantSync,
    allocations: list[Allocation],
    held: ResourceHeld,
    memberships: list[Membership],
    attachments: Iterable[VolumeAttachment],
    kueue: KueuePlace | None = None,
) -> TenantState | None:
    if not allocations or tenant.state == Tenant.State.DELETING:
        return None
    return TenantState(
        tenant_id=tenant.pk,
        path=tenant.name_path,
        level=tenant.depth,
        namespace=sync.namespace,
        quota=_quota(tenant, allocations, held),
        suspended=tenant.state == Tenant.State.SUSPENDED,
        subjects=_subjects(tenant, memberships),
        claims=_claims(attachments),
        principals=_principals(tenant, memberships),
        pools=_pool_shares(tenant, allocations, held) if kueue else (),
        parent_namespace=kueue.parent_namespace if kueue else None,
        has_subtenants=kueue.has_subtenants if kueue else False,
    )


def tenant_state(
    tenant: Tenant, sync: TenantSync, cluster: Cluster, *, kueue: bool = False
) -> TenantState | None:
    """What the tenant should have on the cluster; None when it has no allocation there. `kueue`:
    with what the Kueue engine needs too (its pools, its place in the cohort tree)."""
    allocations = list(Allocation.objects.filter(tenant=tenant, pool__cluster=cluster).select_related("pool"))
    if not allocations or tenant.state == Tenant.State.DELETING:
        return None
    children = list(
        Allocation.objects.filter(
            pool_id__in=[a.pool_id for a in allocations],
            tenant__depth=tenant.depth + 1,
            tenant__path__startswith=tenant.path,
        ).select_related("tenant")
    )
    attachments = VolumeAttachment.objects.filter(tenant=tenant, volume__cluster=cluster).select_related(
        "volume__share"
    )
    memberships = list(_memberships([*_ancestor_paths(tenant), tenant.path]))
    place = None
    if kueue:
        parent = tenant.parent_tree_path
        parent_namespace = (
            TenantSync.objects.filter(tenant_id__in=Tenant.objects.filter(path=parent).values("pk"))
            .values_list("namespace", flat=True)
            .first()
            if parent
            else None
        )
        place = KueuePlace(parent_namespace, bool(children))
    return _state(tenant, sync, allocations, _held_by_children(children), memberships, attachments, place)


def cluster_states(cluster: Cluster, *, kueue: bool = False) -> dict[int, TenantState]:
    """What every tenant should have on a Kubernetes cluster, by tenant id, in six queries for any
    number of tenants (for the full reconcile, which compares the whole cluster at once). Tenants
    without a namespace name yet are left out: their first push gives them one. `kueue`: as
    `tenant_state`, at no extra query (a tenant's parent is on the cluster wherever it is)."""
    allocations: dict[int, list[Allocation]] = defaultdict(list)
    for allocation in Allocation.objects.filter(pool__cluster=cluster).select_related("tenant", "pool"):
        allocations[allocation.tenant_id].append(allocation)
    tenants = {pk: rows[0].tenant for pk, rows in allocations.items()}
    syncs = {sync.tenant_id: sync for sync in TenantSync.objects.filter(tenant_id__in=list(tenants))}
    # A child holds part of its parent's allocation only on the parent's pools, which are this
    # cluster's: every allocation that counts is among those just read.
    held = _held_by_children(a for rows in allocations.values() for a in rows)
    by_path: dict[str, list[Membership]] = defaultdict(list)
    paths = {prefix for tenant in tenants.values() for prefix in Tenant.path_prefixes(tenant.path)}
    for membership in _memberships(paths):
        by_path[membership.tenant.path].append(membership)
    attachments: dict[int, list[VolumeAttachment]] = defaultdict(list)
    for attachment in VolumeAttachment.objects.filter(volume__cluster=cluster).select_related(
        "volume__share"
    ):
        attachments[attachment.tenant_id].append(attachment)
    by_tree_path = {tenant.path: pk for pk, tenant in tenants.items()}
    parents = {parent for parent, _, _ in held}
    states = {}
    for pk, tenant in tenants.items():
        if pk not in syncs:
            continue
        memberships = [row for prefix in Tenant.path_prefixes(tenant.path) for row in by_path[prefix]]
        place = None
        if kueue:
            parent_sync = syncs.get(by_tree_path.get(tenant.parent_tree_path or "", -1))
            place = KueuePlace(parent_sync.namespace if parent_sync else None, tenant.path in parents)
        state = _state(tenant, syncs[pk], allocations[pk], held, memberships, attachments[pk], place)
        if state is not None:
            states[pk] = state
    return states


def _yarn_subjects(tenant: Tenant) -> dict[str, tuple[str, ...]]:
    """The tenant's own roles as YARN ACL users and groups (YARN ACLs inherit down the queue tree,
    so ancestors' admins are not repeated)."""
    found: dict[str, set[str]] = defaultdict(set)
    rows = Membership.objects.filter(tenant=tenant).select_related("user")
    if hasattr(Membership, "group"):
        rows = rows.select_related("group")
    for row in rows:
        group = getattr(row, "group", None)
        if group is not None:
            names, kind = [group.name], "groups"
        elif row.user is not None and row.user.is_active:
            names, kind = [row.user.get_username()], "users"
        else:
            continue
        if row.role == Membership.Role.ADMIN:
            found[f"admin_{kind}"].update(names)
            found[f"submit_{kind}"].update(names)
        elif row.role == Membership.Role.MEMBER:
            found[f"submit_{kind}"].update(names)
        elif kind == "users":
            found["read_users"].update(names)
    return {key: tuple(sorted(values)) for key, values in found.items()}


def yarn_tenant(tenant: Tenant, group: str, cluster: Cluster) -> YarnTenant | None:
    """The tenant's queue and directories on a Hadoop cluster; None when it has no allocation there."""
    allocations = list(Allocation.objects.filter(tenant=tenant, pool__cluster=cluster).select_related("pool"))
    if not allocations or tenant.state == Tenant.State.DELETING:
        return None
    shares = tuple(
        QueueShare(a.pool.node_selector, a.capacity_percent or Decimal(0), a.max_capacity_percent)
        for a in sorted(allocations, key=lambda a: a.pool.node_selector)
    )
    directories = tuple(
        StorageDir(d.path, d.space_quota_bytes, d.file_quota)
        for d in StorageDirectory.objects.filter(tenant=tenant, cluster=cluster).order_by("path")
    )
    # A Hive database of the tenant is its warehouse directory: the tenant's group and ACLs, no quota.
    directories += tuple(
        StorageDir(service_path(kind, name))
        for kind, name in TenantService.objects.filter(tenant=tenant, cluster=cluster)
        .order_by("name")
        .values_list("kind", "name")
    )
    return YarnTenant(
        tenant_id=tenant.pk,
        path=tenant.name_path,
        group=group,
        shares=shares,
        suspended=tenant.state == Tenant.State.SUSPENDED,
        directories=directories,
        **_yarn_subjects(tenant),
    )


def yarn_cluster(cluster: Cluster) -> YarnCluster:
    tenant_ids = set(Allocation.objects.filter(pool__cluster=cluster).values_list("tenant_id", flat=True))
    groups = dict(TenantSync.objects.filter(tenant_id__in=tenant_ids).values_list("tenant_id", "namespace"))
    tenants = []
    for tenant in Tenant.objects.filter(pk__in=tenant_ids):
        state = yarn_tenant(tenant, groups.get(tenant.pk) or tenant.name_path.replace("/", "-"), cluster)
        if state is not None:
            tenants.append(state)
    partitions = sorted({label for label in cluster.pools.values_list("node_selector", flat=True) if label})
    return YarnCluster(tenants, partitions)


def tenant_targets(*, tenant_id: int, sync: TenantSync, cluster_id: int | None = None) -> list[Target]:
    """Every Kubernetes or Hadoop cluster the tenant has an allocation on or was provisioned on before."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    cluster_ids = set(sync.statuses.values_list("cluster_id", flat=True))
    if tenant is not None:
        cluster_ids |= set(
            Allocation.objects.filter(tenant=tenant, pool__cluster__kind__in=PROVISIONED_KINDS).values_list(
                "pool__cluster_id", flat=True
            )
        )
    if cluster_id is not None:
        cluster_ids &= {cluster_id}
    clusters = Cluster.objects.filter(pk__in=cluster_ids, kind__in=PROVISIONED_KINDS).order_by("name")
    connections: dict[int, KubernetesConnection | HadoopConnection] = {
        c.cluster_id: c for c in KubernetesConnection.objects.filter(cluster_id__in=cluster_ids)
    }
    connections |= {c.cluster_id: c for c in HadoopConnection.objects.filter(cluster_id__in=cluster_ids)}
    targets = []
    for cluster in clusters:
        connection = connections.get(cluster.pk)
        settings_ = cluster_settings(
            cluster, connection if isinstance(connection, KubernetesConnection) else None
        )
        if cluster.kind == Cluster.Kind.YARN:
            whole = yarn_cluster(cluster)
            mine = next((t for t in whole.tenants if t.tenant_id == tenant_id), None)
            targets.append(Target(cluster, connection, settings_, mine, whole))
            continue
        kueue = settings_.quota_engine == KUEUE_ENGINE
        state = tenant_state(tenant, sync, cluster, kueue=kueue) if tenant is not None else None
        targets.append(Target(cluster, connection, settings_, state))
    return targets


def cluster_objects_target(target: Target) -> Target:
    """The cluster's own objects on a tenant's target cluster."""
    return Target(target.cluster, target.connection, target.settings, None, cluster_objects=True)


def cluster_objects_targets(*, cluster_id: int | None = None) -> list[Target]:
    """Every Kubernetes cluster whose own objects Canopy keeps (its quota engine is Kueue) or kept
    (a status of the cluster's owner id remains: they are to be removed)."""
    cluster_ids = set(
        KubernetesConnection.objects.filter(quota_engine=KUEUE_ENGINE).values_list("cluster_id", flat=True)
    )
    cluster_ids |= set(
        ClusterSyncStatus.objects.filter(sync__tenant_id=CLUSTER_OWNER_ID).values_list(
            "cluster_id", flat=True
        )
    )
    if cluster_id is not None:
        cluster_ids &= {cluster_id}
    connections = {c.cluster_id: c for c in KubernetesConnection.objects.filter(cluster_id__in=cluster_ids)}
    return [
        Target(
            cluster,
            connections.get(cluster.pk),
            cluster_settings(cluster, connections.get(cluster.pk)),
            None,
            cluster_objects=True,
        )
        for cluster in Cluster.objects.filter(pk__in=cluster_ids, kind=Cluster.Kind.KUBERNETES).order_by(
            "name"
        )
    ]


def tenant_clusters() -> dict[int, set[int]]:
    """Every tenant that is, or should be, on a Kubernetes or Hadoop cluster -> those clusters' ids
    (for the full reconcile)."""
    allocated = Allocation.objects.filter(pool__cluster__kind__in=PROVISIONED_KINDS).values_list(
        "tenant_id", "pool__cluster_id"
    )
    known = ClusterSyncStatus.objects.values_list("sync__tenant_id", "cluster_id")
    clusters: dict[int, set[int]] = defaultdict(set)
    for tenant_id, cluster_id in {*allocated, *known}:
        clusters[tenant_id].add(cluster_id)
    return dict(clusters)
