"""What several of the provisioning services share: the open intents, the retry backoff, the
tenant's sync row, and how a push to a target is scoped and planned (the reconcile and the previews
plan alike)."""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists

from provisioning import selectors
from provisioning.backends.base import Backend, Plan, Scope, plans_joined
from provisioning.desired.kubernetes import KUEUE_ENGINE, ClusterSettings, fit_name, namespace_name
from provisioning.desired.kueue import (
    CLUSTER_KINDS,
    CLUSTER_OWNER_ID,
    NAMED_KINDS,
    TENANT_KINDS,
    engine_cluster_objects,
    is_kueue,
    objects_fingerprint,
    tenant_kinds,
    tenant_named_kinds,
)
from provisioning.models import ClusterSyncStatus, ProvisioningIntent, TenantSync
from tenants.models import Tenant

OPEN = (ProvisioningIntent.State.PENDING, ProvisioningIntent.State.FAILED)
State = ClusterSyncStatus.State


def _ensure_sync(tenant: Tenant) -> TenantSync:
    """The tenant's row, made on first use for tenants created before provisioning existed (with a
    hash suffix if the plain name is taken). Keeps the path snapshot current after a move."""
    sync = TenantSync.objects.filter(tenant_id=tenant.pk).first()
    if sync is not None:
        if sync.tenant_path != tenant.name_path:
            sync.tenant_path = tenant.name_path
            sync.save(update_fields=["tenant_path", "updated_at"])
        return sync
    name = namespace_name(tenant.name_path)
    if TenantSync.objects.filter(namespace=name).exists():
        name = fit_name(f"{name}-t{tenant.pk}", f"{tenant.name_path}#{tenant.pk}")
    try:
        with transaction.atomic():
            return TenantSync.objects.create(
                tenant_id=tenant.pk, tenant_path=tenant.name_path, namespace=name
            )
    except IntegrityError:
        return TenantSync.objects.get(tenant_id=tenant.pk)


def _backoff(attempts: int) -> datetime.timedelta:
    base = settings.CANOPY_PROVISIONING_RETRY_BASE_SECONDS
    seconds = min(base * 2 ** max(attempts - 1, 0), settings.CANOPY_PROVISIONING_RETRY_MAX_SECONDS)
    return datetime.timedelta(seconds=seconds)


# The cluster's own objects under the Kueue engine (flavors, root cohort, admission policy) are an
# owner of their own (CLUSTER_OWNER_ID), pushed like a tenant: a TenantSync row of that id (no
# namespace), a status per cluster, intents. A tenant's push needs them in place first and checks
# that through their status, without a call (`_cluster_objects_ensure`); the full reconcile compares
# them with the cluster like any tenant's.
CLUSTER_SCOPE = Scope(CLUSTER_OWNER_ID, "", CLUSTER_KINDS)
CLUSTER_OBJECTS_PATH = "(the cluster's own objects)"


def tenant_scope(
    settings_: ClusterSettings, tenant_id: int, namespace: str, *, leaving_kueue: bool = False
) -> Scope:
    """What a push of the tenant covers on a cluster: its objects of the kinds the engine writes;
    `leaving_kueue` (the tenant was last pushed under Kueue and the cluster left it), Kueue's too,
    so its queues and cohort are found and deleted."""
    if leaving_kueue:
        return Scope(tenant_id, namespace, TENANT_KINDS, NAMED_KINDS)
    return Scope(tenant_id, namespace, tenant_kinds(settings_), tenant_named_kinds(settings_))


def _plan(
    backend: Backend,
    target: selectors.Target,
    sync: TenantSync,
    desired: list[dict[str, Any]],
    *,
    leaving_kueue: bool = False,
    with_cluster_objects: bool = False,
) -> Plan:
    """The target's plan (see `tenant_scope` for `leaving_kueue`); `with_cluster_objects`: joined
    with the cluster's own objects' plan, as a preview shows a push that sees to them first."""
    if target.cluster_objects:
        return backend.plan(CLUSTER_SCOPE, desired)
    scope = tenant_scope(target.settings, sync.tenant_id, sync.namespace, leaving_kueue=leaving_kueue)
    plan = backend.plan(scope, desired)
    if with_cluster_objects:
        plan = plans_joined(backend.plan(CLUSTER_SCOPE, engine_cluster_objects(target.settings)), plan)
    return plan


def _cluster_objects_due(target: selectors.Target, leaving_kueue: bool) -> bool:
    """Whether a tenant's push to the target's cluster must see to the cluster's own objects first:
    under Kueue, unless their status says they were applied (synced) from this very rendering with
    no change of theirs waiting (one query, no call); leaving Kueue, until they are gone. Raises
    `RuleViolation` when a pool breaks Kueue's rules."""
    if target.yarn is not None or not (is_kueue(target.settings) or leaving_kueue):
        return False
    desired = engine_cluster_objects(target.settings)
    waiting = ProvisioningIntent.objects.filter(tenant_id=CLUSTER_OWNER_ID, state__in=OPEN)
    status = (
        ClusterSyncStatus.objects.filter(sync__tenant_id=CLUSTER_OWNER_ID, cluster=target.cluster)
        .annotate(waiting=Exists(waiting))
        .first()
    )
    return (
        status is None
        or status.state != State.SYNCED
        or status.waiting
        or status.last_result.get("fingerprint") != objects_fingerprint(desired)
    )


def _leaving_kueue(status: ClusterSyncStatus | None, settings_: ClusterSettings) -> bool:
    """Whether the tenant was last pushed to the cluster under Kueue and the cluster has left it."""
    last = status.last_result.get("quota_engine") if status is not None else None
    return last == KUEUE_ENGINE and not is_kueue(settings_)
