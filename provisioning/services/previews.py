"""What a push would do, for people, without pushing: previews of a tenant or of an allocation
before it is made, the manifests rendered or exported as files, a Hadoop cluster's files."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction

from provisioning import selectors
from provisioning.backends.base import BackendError, Change, ObjectRef, Plan, Scope
from provisioning.backends.export import ExportBackend, hadoop_files, manifest_files
from provisioning.backends.yarn import YarnBackend
from provisioning.desired.kubernetes import TenantState, namespace_name
from provisioning.desired.kueue import engine_cluster_objects, engine_tenant_objects, is_kueue
from provisioning.desired.yarn import RuleViolation
from provisioning.models import ClusterSyncStatus, HadoopConnection, TenantSync
from provisioning.services._common import (
    CLUSTER_SCOPE,
    _cluster_objects_due,
    _leaving_kueue,
    _plan,
    tenant_scope,
)
from provisioning.services.reconcile import backend_for, target_objects
from tenants import services as tenant_services
from tenants.models import Cluster, Tenant
from tenants.permissions import Action, AnyUser, require, require_platform_admin


@dataclass
class Preview:
    cluster: Cluster
    namespace: str
    backend: str
    plan: Plan | None = None
    message: str = ""


def _sync_or_new(tenant: Tenant) -> TenantSync:
    """The tenant's row, or an unsaved one with the name it would get (reads must not write)."""
    return TenantSync.objects.filter(tenant_id=tenant.pk).first() or TenantSync(
        tenant_id=tenant.pk, tenant_path=tenant.name_path, namespace=namespace_name(tenant.name_path)
    )


def _previews(tenant: Tenant, cluster: Cluster | None) -> list[Preview]:
    sync = _sync_or_new(tenant)
    previews = []
    for target in selectors.tenant_targets(
        tenant_id=tenant.pk, sync=sync, cluster_id=cluster.pk if cluster else None
    ):
        scope = Scope(tenant.pk, sync.namespace)
        backend = backend_for(target.cluster, target.connection)
        try:
            with backend or contextlib.nullcontext():
                # As a push plans it: queues not Canopy's counted, only the tenant's directories.
                foreign = backend.foreign_queues() if isinstance(backend, YarnBackend) else ()
                desired = target_objects(
                    target, foreign=foreign, own_directories=isinstance(backend, YarnBackend)
                )
                if backend is not None:
                    status = ClusterSyncStatus.objects.filter(
                        sync__tenant_id=tenant.pk, cluster=target.cluster
                    ).first()
                    leaving = _leaving_kueue(status, target.settings)
                    plan = _plan(
                        backend,
                        target,
                        sync,
                        desired,
                        leaving_kueue=leaving,
                        with_cluster_objects=_cluster_objects_due(target, leaving),
                    )
        except RuleViolation as error:
            previews.append(Preview(target.cluster, sync.namespace, "", None, f"Refused: {error}"))
            continue
        except BackendError as error:
            name = backend.name if backend is not None else ""
            previews.append(Preview(target.cluster, sync.namespace, name, None, error.message))
            continue
        if backend is None:
            plan = Plan(
                scope=scope, changes=[Change("create", ObjectRef.of(obj), [], obj) for obj in desired]
            )
            message = "The cluster is not connected: this is what a push would create."
            previews.append(Preview(target.cluster, sync.namespace, "", plan, message))
            continue
        previews.append(Preview(target.cluster, sync.namespace, backend.name, plan, backend.describe()))
    return previews


def tenant_preview(*, acting_user: AnyUser, tenant: Tenant, cluster: Cluster | None = None) -> list[Preview]:
    """What a push of the tenant would do now on each cluster: objects to create, change (with the
    fields) and delete. Reads only."""
    require(acting_user, Action.ADMINISTER, tenant)
    return _previews(tenant, cluster)


class _Rollback(Exception):
    def __init__(self, previews: list[Preview]) -> None:
        self.previews = previews


def allocation_preview(
    *, acting_user: AnyUser, tenant: Tenant, spec: tenant_services.AllocationSpec
) -> list[Preview]:
    """What setting this allocation would do on the cluster, before it is made: the change runs
    through `allocation_set` (same rules, same permission) in a transaction that is rolled back."""
    try:
        with transaction.atomic():
            tenant_services.allocation_set(acting_user=acting_user, tenant=tenant, spec=spec)
            raise _Rollback(_previews(tenant, spec.pool.cluster))
    except _Rollback as rollback:
        return rollback.previews


def manifests_render(
    *, tenants: Iterable[Tenant], cluster: Cluster | None = None, with_cluster_objects: bool = False
) -> dict[str, str]:
    """The desired manifests of these tenants as files: '<cluster>/<namespace>/<file>.yaml' ->
    YAML; `with_cluster_objects` (platform admins): under the Kueue engine also the clusters' own
    objects, '<cluster>/_cluster/<file>.yaml'. Nothing is stored or pushed. A tenant whose objects
    break a rule (a pool's selector Kueue cannot take) gets a REFUSED.txt saying why."""
    files: dict[str, str] = {}
    for tenant in tenants:
        sync = _sync_or_new(tenant)
        for target in selectors.tenant_targets(
            tenant_id=tenant.pk, sync=sync, cluster_id=cluster.pk if cluster else None
        ):
            if not isinstance(target.state, TenantState):
                continue  # Hadoop clusters: capacity-scheduler.xml is not a manifest
            try:
                objects = engine_tenant_objects(target.settings, target.state)
                if with_cluster_objects:
                    objects = [*engine_cluster_objects(target.settings), *objects]
            except RuleViolation as error:
                files[f"{target.cluster.name}/{sync.namespace}/REFUSED.txt"] = f"Not rendered: {error}\n"
                continue
            for path, text in manifest_files(objects).items():
                files[f"{target.cluster.name}/{path}"] = text
    return files


def manifests_export(
    *, tenants: Iterable[Tenant], root: str | Path, cluster: Cluster | None = None
) -> list[str]:
    """Write the tenants' manifests under `root` (a folder per cluster and namespace), replacing
    what was there for them. Returns the folders written."""
    folders = []
    with_cluster_objects: set[int] = set()  # clusters whose own objects are written (once each)
    for tenant in tenants:
        sync = _sync_or_new(tenant)
        for target in selectors.tenant_targets(
            tenant_id=tenant.pk, sync=sync, cluster_id=cluster.pk if cluster else None
        ):
            if not isinstance(target.state, TenantState):
                continue
            backend = ExportBackend(Path(root) / target.cluster.name)
            if is_kueue(target.settings) and target.cluster.pk not in with_cluster_objects:
                backend.sync(CLUSTER_SCOPE, engine_cluster_objects(target.settings))
                with_cluster_objects.add(target.cluster.pk)
            scope = tenant_scope(target.settings, sync.tenant_id, sync.namespace)
            backend.sync(scope, engine_tenant_objects(target.settings, target.state))
            folders.append(f"{target.cluster.name}/{sync.namespace}")
    return folders


def hadoop_files_render(*, acting_user: AnyUser, cluster: Cluster) -> dict[str, str]:
    """A Hadoop cluster's whole tenant tree as `capacity-scheduler.xml` and `hdfs-setup.sh`, for a
    cluster without the scheduler-conf mutation API (platform admins: it names every tenant).
    Raises `RuleViolation` when the tree breaks a Capacity Scheduler rule."""
    require_platform_admin(acting_user)
    if cluster.kind != Cluster.Kind.YARN:
        raise ValidationError({"cluster": [f"{cluster} is not a Hadoop cluster."]})
    connection = HadoopConnection.objects.filter(cluster=cluster).first()
    target = selectors.Target(
        cluster, connection, selectors.cluster_settings(cluster, None), None, selectors.yarn_cluster(cluster)
    )
    return hadoop_files(target_objects(target))
