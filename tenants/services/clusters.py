"""Clusters (platform admins)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from tenants.audit import audit, audited_save, snapshot
from tenants.models import (
    Cluster,
    QuotaPlan,
    QuotaPlanAllocation,
    QuotaPlanStorage,
    ResourcePool,
    StorageDirectory,
    Tenant,
)
from tenants.permissions import AnyUser, require_platform_admin
from tenants.services._common import _lock_pools


def cluster_create(*, acting_user: AnyUser, name: str, kind: str, description: str = "") -> Cluster:
    """A new cluster, with its `default` pool (capacity 0 until the admin sets it)."""
    require_platform_admin(acting_user)
    cluster = Cluster(name=name, kind=kind, description=description)
    cluster.full_clean()
    with transaction.atomic():
        cluster.save()
        ResourcePool.objects.create(cluster=cluster, name=ResourcePool.DEFAULT_NAME)
        audit(
            acting_user=acting_user,
            action="CLUSTER_CREATED",
            target=cluster,
            tenant=None,
            after={"name": name, "kind": kind, "description": description},
        )
    return cluster


def cluster_update(*, acting_user: AnyUser, cluster: Cluster, description: str) -> Cluster:
    require_platform_admin(acting_user)
    with transaction.atomic():
        before = snapshot(cluster, ("description",))
        cluster.description = description
        audited_save(
            cluster,
            acting_user=acting_user,
            action="CLUSTER_UPDATED",
            tenant=None,
            before=before,
            after=("description",),
            update_fields=["description", "updated_at"],
        )
    return cluster


@dataclass
class ClusterDeletionImpact:
    """What deleting a cluster would take or is held up by. Tenants' allocations in its pools
    (`holders`), their HDFS directories on it (`directories`), their Hive databases on it
    (`hive_databases`), `volumes` and `nfs_shares` keep it;
    its `pools` and the `plans`' entries for it go with it."""

    holders: list[Tenant] = field(default_factory=list)
    directories: list[StorageDirectory] = field(default_factory=list)
    hive_databases: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    nfs_shares: list[str] = field(default_factory=list)
    pools: list[str] = field(default_factory=list)
    plans: list[str] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return bool(
            self.holders or self.directories or self.hive_databases or self.volumes or self.nfs_shares
        )

    def in_the_way(self) -> str:
        """'tenants a, a/b, HDFS directories /tenant/a, volumes v and NFS shares nas'."""
        parts = [
            f"{what} {', '.join(names)}"
            for what, names in (
                ("tenants", [tenant.name_path for tenant in self.holders]),
                ("HDFS directories", [directory.path for directory in self.directories]),
                ("Hive databases", self.hive_databases),
                ("volumes", self.volumes),
                ("NFS shares", self.nfs_shares),
            )
            if names
        ]
        return " and ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 1 else parts)


def cluster_deletion_impact(cluster: Cluster) -> ClusterDeletionImpact:
    """What deleting `cluster` would take with it, or what keeps it (seven queries)."""
    return ClusterDeletionImpact(
        holders=list(
            Tenant.objects.filter(allocations__pool__cluster=cluster).distinct().order_by("name_path")
        ),
        directories=list(
            StorageDirectory.objects.filter(cluster=cluster).select_related("tenant").order_by("path")
        ),
        hive_databases=[
            f"{service.name} ({service.tenant.name_path})"
            for service in cluster.tenant_services.select_related("tenant").order_by("name")
        ],
        volumes=list(cluster.volumes.order_by("name").values_list("name", flat=True)),
        nfs_shares=list(cluster.nfs_shares.order_by("name").values_list("name", flat=True)),
        pools=list(cluster.pools.order_by("name").values_list("name", flat=True)),
        plans=list(
            QuotaPlan.objects.filter(Q(allocations__pool__cluster=cluster) | Q(storage__cluster=cluster))
            .distinct()
            .order_by("name")
            .values_list("name", flat=True)
        ),
    )


def cluster_delete(*, acting_user: AnyUser, cluster: Cluster) -> None:
    """Delete a cluster with its pools and the plans' entries for it; refused, naming them, while
    tenants hold allocations or HDFS directories there or volumes or NFS shares are on it."""
    require_platform_admin(acting_user)
    with transaction.atomic():
        _lock_pools(cluster.pools.all())  # no allocation comes in between the check and the delete
        impact = cluster_deletion_impact(cluster)
        if impact.refused:
            raise ValidationError(
                {
                    "cluster": [
                        f"Cluster {cluster} is still used by {impact.in_the_way()}; remove those first."
                    ]
                }
            )
        audit(
            acting_user=acting_user,
            action="CLUSTER_DELETED",
            target=cluster,
            tenant=None,
            before={"name": cluster.name, "kind": cluster.kind},
        )
        QuotaPlanAllocation.objects.filter(pool__cluster=cluster).delete()
        QuotaPlanStorage.objects.filter(cluster=cluster).delete()
        cluster.pools.all().delete()
        cluster.delete()
