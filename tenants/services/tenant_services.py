"""The services a tenant uses on a cluster (MRS's "tenant service association"): Hive databases.

A Hive database of a tenant is pushed as its warehouse directory,
`CANOPY_HIVE_WAREHOUSE_ROOT/<name>.db`, owned by the tenant's group with the tenant's ACLs (the
Hadoop push renders it beside the tenant's HDFS directories). Creating the database in the Hive
metastore is left to the tenant (`CREATE DATABASE <name>`, which finds the directory ready): the
metastore has no REST API Canopy can reach (docs/provisioning-hadoop.md, "Services").
"""

from __future__ import annotations

import re

from django.conf import settings
from django.db import transaction

from tenants import paths
from tenants.audit import audited_delete, audited_save, snapshot
from tenants.changes import TenantChange, change_record
from tenants.models import Cluster, StorageDirectory, Tenant, TenantService
from tenants.permissions import Action, AnyUser, require
from tenants.services._common import _errors, _locked_tenant, _raise_if

TENANT_SERVICE_FIELDS = ("kind", "name")

HIVE_DATABASE_MAX = 128
# Letters, digits and '_' are what Hive takes in a database name; it keeps names in lower case, so
# Canopy asks for them that way (the name shown is the name Hive has) and for a letter first.
_HIVE_DATABASE = re.compile(r"[a-z][a-z0-9_]*")
# Hive's own databases: `default` is the warehouse root itself, `sys` and `information_schema` are
# made by Hive's schema tool.
HIVE_RESERVED = frozenset({"default", "sys", "information_schema"})
HIVE_DATABASE_RULE = (
    f"1 to {HIVE_DATABASE_MAX} lower-case letters, digits and '_', starting with a letter "
    "(e.g. sales or etl_2024)"
)


def hive_warehouse_root() -> str:
    """CANOPY_HIVE_WAREHOUSE_ROOT in its plain form: the Hive warehouse of every Hadoop cluster."""
    return paths.plain_absolute(settings.CANOPY_HIVE_WAREHOUSE_ROOT)


def service_path(kind: str, name: str) -> str:
    """Where a service lives on HDFS: a Hive database's warehouse directory, `<root>/<name>.db`."""
    if kind != TenantService.Kind.HIVE_DATABASE:
        raise ValueError(f"no HDFS path for a service of kind {kind!r}")
    return f"{hive_warehouse_root().rstrip('/')}/{name}.db"


def service_name_problems(kind: str, name: str) -> list[str]:
    """Why `name` cannot name a service of `kind` (empty: it can)."""
    if kind != TenantService.Kind.HIVE_DATABASE:
        return []
    if not isinstance(name, str) or len(name) > HIVE_DATABASE_MAX or not _HIVE_DATABASE.fullmatch(name):
        return [f"A Hive database name is {HIVE_DATABASE_RULE}."]
    if name in HIVE_RESERVED:
        return [f"{name} is one of Hive's own databases; choose another name."]
    return []


def _path_errors(cluster: Cluster, path: str) -> list[str]:
    """A warehouse directory never lies at, inside or around a tenant's HDFS directory: the push
    would give two tenants' ACLs to one directory."""
    around = StorageDirectory.objects.filter(cluster=cluster, path__in=[path, *paths.ancestors(path)])
    within = StorageDirectory.objects.filter(cluster=cluster, path__startswith=f"{path}/")
    if around.exists() or within.exists():
        return [
            f"{path} would share its place with a tenant's HDFS directory on {cluster}; choose another name."
        ]
    return []


def tenant_service_create(
    *, acting_user: AnyUser, tenant: Tenant, cluster: Cluster, kind: str, name: str
) -> TenantService:
    """Link `tenant` to a service on `cluster` (a Hive database `name`). Who may: those who manage
    the tenant's storage (admins above it). The name is the cluster's: one tenant owns it."""
    require(acting_user, Action.MANAGE, tenant)
    errors = _errors()
    if kind not in TenantService.Kind.values:
        errors["kind"].append(f"Choose one of: {', '.join(TenantService.Kind.values)}.")
    if cluster.kind != Cluster.Kind.YARN:
        errors["cluster"].append(
            f"{cluster} is not a Hadoop cluster; Hive databases live on Hadoop clusters."
        )
    _raise_if(errors)
    errors["name"].extend(service_name_problems(kind, name))
    _raise_if({key: value for key, value in errors.items() if value})
    with transaction.atomic():
        tenant = _locked_tenant(tenant)
        # One writer of a cluster's names at a time: the checks below read the others'.
        Cluster.objects.select_for_update().filter(pk=cluster.pk).first()
        if TenantService.objects.filter(cluster=cluster, kind=kind, name=name).exists():
            errors["name"].append(f"{name} is already a {TenantService.Kind(kind).label} on {cluster}.")
        else:
            errors["name"].extend(_path_errors(cluster, service_path(kind, name)))
        _raise_if({key: value for key, value in errors.items() if value})
        service = TenantService(tenant=tenant, cluster=cluster, kind=kind, name=name)
        audited_save(
            service,
            acting_user=acting_user,
            action="TENANT_SERVICE_CREATED",
            tenant=tenant,
            after=TENANT_SERVICE_FIELDS,
        )
        change_record(TenantChange(tenants=[tenant], reason="TENANT_SERVICE_CREATED"))
        return service


def tenant_service_delete(*, acting_user: AnyUser, service: TenantService) -> None:
    """Unlink the service. Its warehouse directory and the tables in it stay on HDFS (the data is
    the tenant's, as with a removed HDFS directory); the push stops managing it."""
    require(acting_user, Action.MANAGE, service.tenant)
    with transaction.atomic():
        audited_delete(
            service,
            acting_user=acting_user,
            action="TENANT_SERVICE_DELETED",
            tenant=service.tenant,
            before=snapshot(service, TENANT_SERVICE_FIELDS),
        )
        change_record(TenantChange(tenants=[service.tenant], reason="TENANT_SERVICE_DELETED"))
