"""Storage (HDFS directories)."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from tenants import paths
from tenants.audit import audited_delete, audited_save, snapshot
from tenants.changes import TenantChange, change_record
from tenants.models import (
    Cluster,
    StorageDirectory,
    Tenant,
)
from tenants.permissions import Action, AnyUser, require
from tenants.services._common import _errors, _locked_tenant, _raise_if


@dataclass
class StorageSpec:
    cluster: Cluster
    path: str | None = None
    space_quota_bytes: int | None = None
    file_quota: int | None = None


STORAGE_FIELDS = ("path", "space_quota_bytes", "file_quota")


def hdfs_root() -> str:
    """CANOPY_HDFS_ROOT in its plain form: every tenant's HDFS directories live below it."""
    return paths.plain_absolute(settings.CANOPY_HDFS_ROOT)


def default_storage_path(tenant: Tenant) -> str:
    """The tenant's own HDFS root, CANOPY_HDFS_ROOT/<tenant path>: its directories lie at or below it."""
    return posixpath.join(hdfs_root(), tenant.name_path)


def _storage_path_errors(tenant: Tenant, cluster: Cluster, path: str) -> list[str]:
    """Where `tenant` may have an HDFS directory on `cluster` (issue 15): a plain absolute path at or
    below its own root; not at or below the root of one of its sub-tenants (their namespace); not
    at, inside or around a directory of any tenant but itself and (around it) its ancestors and (inside
    it) its descendants. The first rule broken is named, with the root the tenant may use."""
    root = default_storage_path(tenant)
    problems = paths.absolute_path_problems(path, what="an HDFS path", example=root, forbidden=":")
    if problems:
        return problems
    if not paths.inside(path, root):
        return [
            f"{tenant.name_path}'s HDFS directories live at or below its root {root} "
            f"(CANOPY_HDFS_ROOT/<tenant path>); {path} is outside it."
        ]
    first = path[len(root) :].lstrip("/").partition("/")[0]
    if first and Tenant.objects.filter(name_path=f"{tenant.name_path}/{first}").exists():
        return [
            f"{root}/{first} is the root of sub-tenant {tenant.name_path}/{first}: directories there are "
            f"its own, not {tenant.name_path}'s. {tenant.name_path}'s go elsewhere below {root}."
        ]
    around = StorageDirectory.objects.filter(cluster=cluster, path__in=[path, *paths.ancestors(path)])
    for directory in around.select_related("tenant").order_by("-path"):
        if directory.path == path:
            return [f"{path} is already a tenant directory on {cluster}."]
        if not tenant.path.startswith(directory.tenant.path):
            return [
                f"{path} would lie inside {directory.path}, a directory of another tenant; "
                f"{tenant.name_path}'s directories stay out of other tenants' (below {root})."
            ]
    within = (
        StorageDirectory.objects.filter(cluster=cluster, path__startswith=f"{path}/")
        .exclude(tenant__path__startswith=tenant.path)
        .order_by("path")
        .first()
    )
    if within is not None:
        return [
            f"{path} would contain {within.path}, a directory of another tenant; "
            f"{tenant.name_path}'s directories stay out of other tenants' (below {root})."
        ]
    return []


def _storage_write(*, acting_user: AnyUser, tenant: Tenant, spec: StorageSpec) -> StorageDirectory:
    errors = _errors()
    if spec.cluster.kind != Cluster.Kind.YARN:
        errors["cluster"].append(
            f"{spec.cluster} is not a Hadoop cluster; HDFS directories live on Hadoop clusters."
        )
        _raise_if(errors)
    # One writer of a cluster's directories at a time: the checks below read the others' paths.
    Cluster.objects.select_for_update().filter(pk=spec.cluster.pk).first()
    path = spec.path or default_storage_path(tenant)
    errors["path"].extend(_storage_path_errors(tenant, spec.cluster, path))
    _raise_if({k: v for k, v in errors.items() if v})
    directory = StorageDirectory(
        tenant=tenant,
        cluster=spec.cluster,
        path=path,
        space_quota_bytes=spec.space_quota_bytes,
        file_quota=spec.file_quota,
    )
    audited_save(
        directory, acting_user=acting_user, action="STORAGE_CREATED", tenant=tenant, after=STORAGE_FIELDS
    )
    return directory


def storage_create(*, acting_user: AnyUser, tenant: Tenant, spec: StorageSpec) -> StorageDirectory:
    require(acting_user, Action.MANAGE, tenant)
    with transaction.atomic():
        directory = _storage_write(acting_user=acting_user, tenant=_locked_tenant(tenant), spec=spec)
        change_record(TenantChange(tenants=[directory.tenant], reason="STORAGE_CREATED"))
        return directory


def _storage_update(
    *,
    acting_user: AnyUser,
    directory: StorageDirectory,
    space_quota_bytes: int | None,
    file_quota: int | None,
) -> StorageDirectory:
    before = snapshot(directory, STORAGE_FIELDS)
    directory.space_quota_bytes = space_quota_bytes
    directory.file_quota = file_quota
    audited_save(
        directory,
        acting_user=acting_user,
        action="STORAGE_UPDATED",
        tenant=directory.tenant,
        before=before,
        after=STORAGE_FIELDS,
    )
    return directory


def storage_update(
    *,
    acting_user: AnyUser,
    directory: StorageDirectory,
    space_quota_bytes: int | None,
    file_quota: int | None,
) -> StorageDirectory:
    """Change a directory's quotas (None: unlimited). The path is fixed once created."""
    require(acting_user, Action.MANAGE, directory.tenant)
    with transaction.atomic():
        directory = StorageDirectory.objects.select_for_update().select_related("tenant").get(pk=directory.pk)
        directory = _storage_update(
            acting_user=acting_user,
            directory=directory,
            space_quota_bytes=space_quota_bytes,
            file_quota=file_quota,
        )
        change_record(TenantChange(tenants=[directory.tenant], reason="STORAGE_UPDATED"))
        return directory


def storage_delete(*, acting_user: AnyUser, directory: StorageDirectory) -> None:
    require(acting_user, Action.MANAGE, directory.tenant)
    with transaction.atomic():
        audited_delete(
            directory,
            acting_user=acting_user,
            action="STORAGE_DELETED",
            tenant=directory.tenant,
            before=snapshot(directory, STORAGE_FIELDS),
        )
        # The directory and its data stay on HDFS (like a Retain volume); the push stops managing it.
        change_record(TenantChange(tenants=[directory.tenant], reason="STORAGE_DELETED"))
