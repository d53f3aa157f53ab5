"""Reads for provisioning.

Two kinds: reads for a person (`status_list`, `connection_list`), restricted like every other
read; and the worker's reads (`tenant_targets`), which turn the database's truth about one tenant
into the plain dataclasses `provisioning.desired` renders. The worker acts for the system, not
for a person, so those take no user.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from provisioning.desired.kubernetes import (
    ClusterSettings,
    ContainerDefaults,
    Quota,
    Subject,
    TenantState,
    VolumeClaim,
)
from provisioning.models import ClusterSyncStatus, KubernetesConnection, TenantSync
from tenants.amounts import KUBERNETES_RESOURCES
from tenants.models import Allocation, Cluster, Membership, Tenant, VolumeAttachment
from tenants.permissions import Action, is_platform_admin
from tenants.quantities import parse_cpu_millicores, parse_memory_bytes

ROLE_RANK = {"viewer": 0, "member": 1, "admin": 2}

# ---------------------------------------------------------------------------------------------
# For people


def status_list(
    *, user: AbstractBaseUser | None, action: Action = Action.VIEW
) -> QuerySet[ClusterSyncStatus]:
    return ClusterSyncStatus.objects.restrict(user, action).select_related("sync", "cluster")


def connection_list(*, user: AbstractBaseUser | None) -> QuerySet[KubernetesConnection]:
    """Connections hold credentials: platform admins only."""
    if not is_platform_admin(user):
        return KubernetesConnection.objects.none()
    return KubernetesConnection.objects.select_related("cluster").order_by("cluster__name")


# ---------------------------------------------------------------------------------------------
# For the worker


@dataclass
class Target:
    """One cluster a tenant is (or was) on, with what it should have there (None: nothing)."""

    cluster: Cluster
    connection: KubernetesConnection | None
    settings: ClusterSettings
    state: TenantState | None


def container_defaults() -> ContainerDefaults:
    return ContainerDefaults(
        request_cpu_millicores=parse_cpu_millicores(settings.CANOPY_DEFAULT_REQUEST_CPU),
        request_memory_bytes=parse_memory_bytes(settings.CANOPY_DEFAULT_REQUEST_MEMORY),
        limit_cpu_millicores=parse_cpu_millicores(settings.CANOPY_DEFAULT_LIMIT_CPU),
        limit_memory_bytes=parse_memory_bytes(settings.CANOPY_DEFAULT_LIMIT_MEMORY),
    )


def cluster_settings(cluster: Cluster, connection: KubernetesConnection | None) -> ClusterSettings:
    return ClusterSettings(
        name=cluster.name,
        gpu_resource=connection.gpu_resource if connection else "nvidia.com/gpu",
        network_policy=bool(connection and connection.network_policy),
        defaults=container_defaults(),
    )


def _ancestor_paths(tenant: Tenant) -> list[str]:
    return [tenant.path[:end] for end in range(Tenant.steplen, len(tenant.path), Tenant.steplen)]


def _quota(tenant: Tenant, allocations: list[Allocation]) -> Quota:
    """What the tenant may use itself: its allocation minus what its sub-tenants hold (so a parent's
    namespace and its children's never add up to more than the parent was given), summed over the
    cluster's pools. Unlimited anywhere is unlimited."""
    pools = [a.pool_id for a in allocations]
    held: dict[tuple[int, str], int] = defaultdict(int)
    children = Allocation.objects.filter(
        pool_id__in=pools, tenant__depth=tenant.depth + 1, tenant__path__startswith=tenant.path
    ).values("pool_id", *(r.field for r in KUBERNETES_RESOURCES))
    for row in children:
        for resource in KUBERNETES_RESOURCES:
            held[(row["pool_id"], resource.field)] += row[resource.field] or 0
    totals: dict[str, int | None] = {}
    for resource in KUBERNETES_RESOURCES:
        total: int | None = 0
        for allocation in allocations:
            amount = getattr(allocation, resource.field)
            if amount is None or total is None:
                total = None
                continue
            total += max(amount - held[(allocation.pool_id, resource.field)], 0)
        totals[resource.field] = total
    return Quota(
        gpu=totals["gpu"], cpu_millicores=totals["cpu_millicores"], memory_bytes=totals["memory_bytes"]
    )


def _subjects(tenant: Tenant) -> tuple[Subject, ...]:
    """Active people with a role on the tenant (their own, or a group's they are in), and admins
    of its ancestors; each once, with their strongest role."""
    ancestors = _ancestor_paths(tenant)
    rows = (
        Membership.objects.filter(tenant__path__in=[*ancestors, tenant.path])
        .select_related("user", "tenant")
        .order_by("tenant__depth")
    )
    if hasattr(Membership, "group"):  # group roles: every member of the group holds the role
        rows = rows.select_related("group").prefetch_related("group__user_set")
    best: dict[str, Subject] = {}
    for row in rows:
        inherited = row.tenant_id != tenant.pk
        if inherited and row.role != Membership.Role.ADMIN:
            continue
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
            if current is None or ROLE_RANK[subject.role] > ROLE_RANK[current.role]:
                best[username] = subject
    return tuple(sorted(best.values(), key=lambda s: s.username))


def _claims(tenant: Tenant, cluster: Cluster) -> tuple[VolumeClaim, ...]:
    attachments = VolumeAttachment.objects.filter(tenant=tenant, volume__cluster=cluster).select_related(
        "volume"
    )
    return tuple(
        VolumeClaim(
            claim_name=a.claim_name,
            volume_name=a.volume.name,
            server=a.volume.server,
            export_path=a.volume.export_path,
            capacity_bytes=a.volume.capacity_bytes,
            access_mode=a.volume.access_mode,
            shared=a.volume.scope == a.volume.Scope.SHARED,
        )
        for a in attachments
    )


def tenant_state(tenant: Tenant, sync: TenantSync, cluster: Cluster) -> TenantState | None:
    """What the tenant should have on the cluster; None when it has no allocation there."""
    allocations = list(Allocation.objects.filter(tenant=tenant, pool__cluster=cluster))
    if not allocations or tenant.state == Tenant.State.DELETING:
        return None
    return TenantState(
        tenant_id=tenant.pk,
        path=tenant.name_path,
        level=tenant.depth,
        namespace=sync.namespace,
        quota=_quota(tenant, allocations),
        suspended=tenant.state == Tenant.State.SUSPENDED,
        subjects=_subjects(tenant),
        claims=_claims(tenant, cluster),
    )


def tenant_targets(*, tenant_id: int, sync: TenantSync, cluster_id: int | None = None) -> list[Target]:
    """Every Kubernetes cluster the tenant has an allocation on or was provisioned on before."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    cluster_ids = set(sync.statuses.values_list("cluster_id", flat=True))
    if tenant is not None:
        cluster_ids |= set(
            Allocation.objects.filter(tenant=tenant, pool__cluster__kind=Cluster.Kind.KUBERNETES).values_list(
                "pool__cluster_id", flat=True
            )
        )
    if cluster_id is not None:
        cluster_ids &= {cluster_id}
    clusters = Cluster.objects.filter(pk__in=cluster_ids, kind=Cluster.Kind.KUBERNETES).order_by("name")
    connections = {c.cluster_id: c for c in KubernetesConnection.objects.filter(cluster_id__in=cluster_ids)}
    targets = []
    for cluster in clusters:
        connection = connections.get(cluster.pk)
        state = tenant_state(tenant, sync, cluster) if tenant is not None else None
        targets.append(Target(cluster, connection, cluster_settings(cluster, connection), state))
    return targets


def tenants_on_kubernetes() -> list[int]:
    """Ids of every tenant that is, or should be, on a Kubernetes cluster (for the full reconcile)."""
    allocated = Allocation.objects.filter(pool__cluster__kind=Cluster.Kind.KUBERNETES).values_list(
        "tenant_id", flat=True
    )
    known = ClusterSyncStatus.objects.values_list("sync__tenant_id", flat=True)
    return sorted(set(allocated) | set(known))
