"""Clusters (platform admins)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from tenants.audit import audit, audited_save, snapshot
from tenants.models import (
    Allocation,
    Cluster,
    QuotaPlanAllocation,
    QuotaPlanStorage,
    ResourcePool,
    StorageDirectory,
)
from tenants.permissions import AnyUser, require_platform_admin


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


def cluster_delete(*, acting_user: AnyUser, cluster: Cluster) -> None:
    require_platform_admin(acting_user)
    with transaction.atomic():
        in_use = sorted(
            {
                a.tenant.name_path
                for a in Allocation.objects.filter(pool__cluster=cluster).select_related("tenant")
            }
            | {
                s.tenant.name_path
                for s in StorageDirectory.objects.filter(cluster=cluster).select_related("tenant")
            }
            | {s.tenant.name_path for s in cluster.tenant_services.select_related("tenant")}
        )
        if in_use or cluster.volumes.exists() or cluster.nfs_shares.exists():
            users = ", ".join(in_use) or "volumes and NFS shares"
            raise ValidationError(
                {"cluster": [f"Cluster {cluster} is still used by {users}; remove those first."]}
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
