"""Every provisioning write, and the work the Celery tasks call.

- `ProvisioningRecorder` follows the tenants (`tenants.changes`; registered in
  `ProvisioningConfig.ready()`): `tenants.services` calls it inside each write's transaction, so
  the namespace name (`namespace_reserve`) and the change to push (`intent_record`) commit (or
  roll back) with the change.
- `tenant_reconcile` is what `provisioning.apply_tenant` runs: load the tenant's truth, render it,
  plan against each cluster, apply, record the outcome; `intents_redrive` and `reconcile_all`
  are what beat runs.
- Connections, the kubeconfig download, previews and exports, for people.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import functools
import logging
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, Q
from django.forms.models import model_to_dict
from django.utils import timezone

from provisioning import selectors
from provisioning.backends import kerberos
from provisioning.backends.base import (
    Backend,
    BackendError,
    Change,
    ObjectMissing,
    ObjectRef,
    Plan,
    Scope,
    plans_joined,
)
from provisioning.backends.export import ExportBackend, HadoopExportBackend, hadoop_files, manifest_files
from provisioning.backends.kubernetes import KubernetesBackend, check_kubeconfig
from provisioning.backends.yarn import YarnBackend
from provisioning.desired import kubernetes as desired_kubernetes
from provisioning.desired import yarn as desired_yarn
from provisioning.desired.kubernetes import (
    KUEUE_ENGINE,
    ClusterSettings,
    TenantState,
    fit_name,
    namespace_name,
    service_account_name,
)
from provisioning.desired.kueue import (
    CLUSTER_KINDS,
    CLUSTER_OWNER_ID,
    NAMED_KINDS,
    TENANT_KINDS,
    engine_cluster_objects,
    engine_tenant_objects,
    is_kueue,
    objects_fingerprint,
    tenant_kinds,
    tenant_named_kinds,
)
from provisioning.desired.yarn import ForeignQueue, RuleViolation, YarnSettings, YarnTenant, desired_objects
from provisioning.models import (
    ClusterSyncStatus,
    HadoopConnection,
    KubernetesConnection,
    ProvisioningIntent,
    TenantSync,
)
from tenants import labels
from tenants import services as tenant_services
from tenants.audit import audit
from tenants.changes import ChangeRecorder, NamespaceImpact, TenantChange
from tenants.cluster_names import name_problem
from tenants.models import Allocation, Cluster, Membership, Tenant
from tenants.permissions import Action, require, require_platform_admin
from tenants.roles import reaches_below

logger = logging.getLogger(__name__)

OPEN = (ProvisioningIntent.State.PENDING, ProvisioningIntent.State.FAILED)
DONE_KEPT = datetime.timedelta(days=7)
State = ClusterSyncStatus.State


class RetryLater(Exception):
    """A push met a transient fault (or another worker holds the tenant); the task retries it."""


class NotProvisioned(Exception):
    """What a person asked for needs the tenant on a live cluster, and it is not (yet)."""


# ---------------------------------------------------------------------------------------------
# Namespace names


def namespace_reserve(*, tenant: Tenant) -> TenantSync:
    """Fix a new tenant's namespace name, refusing one another tenant has (e.g. `a-b/c` and
    `a/b-c` both make `a-b-c`). Called by `tenant_create` in its transaction."""
    name = namespace_name(tenant.name_path)
    holder = TenantSync.objects.filter(namespace=name).exclude(tenant_id=tenant.pk).first()
    if holder is not None:
        if Tenant.objects.filter(pk=holder.tenant_id).exists():
            message = f"Its Kubernetes namespace would be {name}, which tenant {holder.tenant_path} already has; choose another name."
        else:
            message = (
                f"Its Kubernetes namespace would be {name}, which still belongs to the deleted tenant "
                f"{holder.tenant_path} until it is gone from the clusters; choose another name or try again later."
            )
        raise ValidationError({"name": [message]})
    sync, _ = TenantSync.objects.update_or_create(
        tenant_id=tenant.pk, defaults={"tenant_path": tenant.name_path, "namespace": name}
    )
    return sync


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


# ---------------------------------------------------------------------------------------------
# Intents


def _backoff(attempts: int) -> datetime.timedelta:
    base = settings.CANOPY_PROVISIONING_RETRY_BASE_SECONDS
    seconds = min(base * 2 ** max(attempts - 1, 0), settings.CANOPY_PROVISIONING_RETRY_MAX_SECONDS)
    return datetime.timedelta(seconds=seconds)


def _affected(
    tenants: Iterable[Tenant], tenant_ids: Iterable[int], users: Iterable[Any], subtree: bool, parents: bool
) -> set[int]:
    tenants = list(tenants)
    ids = {pk for pk in tenant_ids if pk is not None}
    subtrees = list(tenants) if subtree else []
    for user in users:
        held = Q(user=user)
        if hasattr(Membership, "group"):
            held |= Q(group__in=user.groups.all())
        for membership in Membership.objects.filter(held).select_related("tenant"):
            tenants.append(membership.tenant)
            if reaches_below(membership.role):
                subtrees.append(membership.tenant)  # their rights reach every namespace below
    ids |= {t.pk for t in tenants}
    if subtrees:
        below = Q(pk__in=[])
        for tenant in subtrees:
            below |= Q(path__startswith=tenant.path)
        ids |= set(Tenant.objects.filter(below).values_list("pk", flat=True))
    if parents:
        parent_paths = [t.parent_tree_path for t in tenants if t.parent_tree_path]
        ids |= set(Tenant.objects.filter(path__in=parent_paths).values_list("pk", flat=True))
    return ids


def intent_record(
    *,
    reason: str,
    tenants: Iterable[Tenant] = (),
    tenant_ids: Iterable[int] = (),
    users: Iterable[Any] = (),
    subtree: bool = False,
    parents: bool = False,
) -> list[int]:
    """Record that these tenants must be pushed again, in the caller's transaction, and queue the
    push for after the commit. `subtree` adds everything below each tenant (labels, inherited admin
    bindings), `parents` each parent (its own quota is what its children do not hold), `users`
    every tenant where those people hold a role.

    The row is the promise: if the queueing fails (broker down) or the worker dies, beat sends it
    again (`intents_redrive`)."""
    ids = sorted(_affected(tenants, tenant_ids, users, subtree, parents))
    if not ids:
        return []
    now = timezone.now()
    redrive_at = now + datetime.timedelta(seconds=settings.CANOPY_PROVISIONING_REDRIVE_AFTER_SECONDS)
    ProvisioningIntent.objects.bulk_create(
        [ProvisioningIntent(tenant_id=pk, reason=reason, next_attempt_at=redrive_at) for pk in ids]
    )
    _statuses_pending(ids)
    transaction.on_commit(functools.partial(enqueue, ids))
    return ids


def _statuses_pending(ids: list[int]) -> None:
    """Show the tenants as pending on every Kubernetes or Hadoop cluster they are or will be on."""
    wanted = set(
        Allocation.objects.filter(
            tenant_id__in=ids, pool__cluster__kind__in=selectors.PROVISIONED_KINDS
        ).values_list("tenant_id", "pool__cluster_id")
    )
    existing = set(
        ClusterSyncStatus.objects.filter(sync__tenant_id__in=ids).values_list("sync__tenant_id", "cluster_id")
    )
    ClusterSyncStatus.objects.filter(sync__tenant_id__in=ids).update(
        state=State.PENDING, message="A change is waiting to be pushed."
    )
    missing = wanted - existing
    if not missing:
        return
    syncs = {s.tenant_id: s for s in TenantSync.objects.filter(tenant_id__in={t for t, _ in missing})}
    for tenant in Tenant.objects.filter(pk__in={t for t, _ in missing} - set(syncs)):
        syncs[tenant.pk] = _ensure_sync(tenant)
    ClusterSyncStatus.objects.bulk_create(
        [
            ClusterSyncStatus(
                sync=syncs[tenant_id], cluster_id=cluster_id, message="A change is waiting to be pushed."
            )
            for tenant_id, cluster_id in sorted(missing)
            if tenant_id in syncs
        ],
        ignore_conflicts=True,
    )


def enqueue(tenant_ids: Iterable[int], *, check_drift: bool = False) -> int:
    """Queue `provisioning.apply_tenant` per tenant; returns how many were queued. Never raises:
    the intents are already in the database, so a broker outage only delays them."""
    from provisioning import tasks

    queued = 0
    for tenant_id in tenant_ids:
        try:
            tasks.apply_tenant.delay(tenant_id, check_drift)
        except Exception:
            logger.warning(
                "Could not queue the push of tenant %s; beat sends it again later.", tenant_id, exc_info=True
            )
            if not settings.CELERY_TASK_ALWAYS_EAGER:
                break  # the broker is down: the others would wait for it too
            continue  # in-process, the push itself failed: its intent records why
        queued += 1
    return queued


def intents_redrive() -> list[int]:
    """Beat: send again every intent that is due (its task never ran, or failed and its backoff
    has passed). Each gets a later next attempt, so a tick never sends the same one twice."""
    now = timezone.now()
    due = list(
        ProvisioningIntent.objects.filter(state__in=OPEN, next_attempt_at__lte=now).order_by(
            "next_attempt_at"
        )[:1000]
    )
    floor = datetime.timedelta(seconds=settings.CANOPY_PROVISIONING_REDRIVE_AFTER_SECONDS)
    for intent in due:
        intent.next_attempt_at = now + max(_backoff(intent.attempts + 1), floor)
    ProvisioningIntent.objects.bulk_update(due, ["next_attempt_at"])
    tenant_ids = sorted({intent.tenant_id for intent in due})
    enqueue(tenant_ids)
    # Housekeeping: done intents are only history after a while.
    ProvisioningIntent.objects.filter(
        state=ProvisioningIntent.State.DONE, done_at__lt=now - DONE_KEPT
    ).delete()
    return tenant_ids


def reconcile_all() -> list[int]:
    """Beat: check every tenant on every cluster for drift (and repair it, unless
    CANOPY_PROVISIONING_REPAIR_DRIFT is off). Returns the tenants given a push of their own (the
    cluster's owner id, 0, when a Kueue cluster's own objects are to be pushed).

    A cluster that can be listed whole (Kubernetes) is compared at once first: one paged list per
    kind and the database in a few queries, so a tenant found as wanted costs no call and no query
    of its own. The others (different, pending, failed, or on a cluster compared tenant by tenant)
    get their push, which reads its objects again, records the drift and repairs it."""
    clusters_of = selectors.tenant_clusters()
    in_sync: set[tuple[int, int]] = set()
    for cluster_id in {c for clusters in clusters_of.values() for c in clusters}:
        compared = _cluster_compare(cluster_id)
        if compared.kueue:
            clusters_of.setdefault(CLUSTER_OWNER_ID, set()).add(cluster_id)
        in_sync |= {(owner_id, cluster_id) for owner_id in compared.in_sync}
    tenant_ids = sorted(
        tenant_id
        for tenant_id, clusters in clusters_of.items()
        if any((tenant_id, cluster_id) not in in_sync for cluster_id in clusters)
    )
    enqueue(tenant_ids, check_drift=True)
    return tenant_ids


@dataclass
class ClusterComparison:
    """One cluster compared whole: the owners found exactly as wanted with nothing pending (tenant
    ids; 0 for the cluster's own objects), and whether it has own objects to keep (Kueue)."""

    in_sync: set[int] = field(default_factory=set)
    kueue: bool = False


def _cluster_compare(cluster_id: int) -> ClusterComparison:
    """Which owners' objects on the cluster are exactly as wanted, with nothing pending, compared in
    one pass over the whole cluster; none when it cannot be listed whole."""
    cluster = Cluster.objects.filter(pk=cluster_id, kind=Cluster.Kind.KUBERNETES).first()
    connection = KubernetesConnection.objects.filter(cluster_id=cluster_id).first()
    compared = ClusterComparison(kueue=connection is not None and connection.quota_engine == KUEUE_ENGINE)
    backend = backend_for(cluster, connection) if cluster is not None else None
    if backend is None:
        return compared
    synced = {
        status.sync.tenant_id: status
        for status in ClusterSyncStatus.objects.filter(cluster=cluster, state=State.SYNCED).select_related(
            "sync"
        )
    }
    synced_now = set(synced) - set(
        ProvisioningIntent.objects.filter(tenant_id__in=list(synced), state__in=OPEN).values_list(
            "tenant_id", flat=True
        )
    )
    if not synced_now:
        return compared
    cluster_settings = selectors.cluster_settings(cluster, connection)
    kueue = is_kueue(cluster_settings)
    wanted = selectors.cluster_states(cluster, kueue=kueue)
    kinds = tenant_kinds(cluster_settings)
    try:
        with backend:
            owned = backend.list_owned_by_tenant(
                tuple(dict.fromkeys((*kinds, *CLUSTER_KINDS))) if kueue else kinds
            )
            if owned is None:
                return compared
            if kueue and CLUSTER_OWNER_ID in synced_now:
                with contextlib.suppress(BackendError, RuleViolation):  # its own push says what is wrong
                    own = engine_cluster_objects(cluster_settings)
                    recorded = synced[CLUSTER_OWNER_ID].last_result.get("fingerprint")
                    live = [obj for obj in owned.get(CLUSTER_OWNER_ID, []) if CLUSTER_SCOPE.covers(obj)]
                    if (
                        recorded == objects_fingerprint(own)
                        and backend.plan_against(CLUSTER_SCOPE, own, live).is_empty
                    ):
                        compared.in_sync.add(CLUSTER_OWNER_ID)
            for tenant_id in sorted(synced_now & set(wanted)):
                scope = tenant_scope(cluster_settings, tenant_id, synced[tenant_id].sync.namespace)
                with contextlib.suppress(BackendError, RuleViolation):  # its own push says what is wrong
                    desired = engine_tenant_objects(cluster_settings, wanted[tenant_id])
                    live = [obj for obj in owned.get(tenant_id, []) if scope.covers(obj)]
                    if backend.plan_against(scope, desired, live).is_empty:
                        compared.in_sync.add(tenant_id)
    except BackendError as error:
        logger.warning(
            "Could not list cluster %s whole: %s; each tenant is checked by itself.", cluster, error
        )
        return ClusterComparison(kueue=compared.kueue)
    return compared


# ---------------------------------------------------------------------------------------------
# Reconciling one tenant


def backend_for(
    cluster: Cluster, connection: KubernetesConnection | HadoopConnection | None, *, quick: bool = False
) -> Backend | None:
    """The cluster's backend, or None when nothing can be pushed to it. `quick`: a short timeout and
    no retries, for questions asked while a person waits (and a transaction is open)."""
    export_root = Path(settings.CANOPY_EXPORT_DIR) / cluster.name
    if cluster.kind == Cluster.Kind.YARN and not isinstance(connection, HadoopConnection):
        if settings.CANOPY_PROVISIONING_DEFAULT_BACKEND == "export":
            return HadoopExportBackend(export_root)
        return None
    if connection is None:
        if settings.CANOPY_PROVISIONING_DEFAULT_BACKEND == "export":
            return ExportBackend(export_root)
        return None
    if isinstance(connection, HadoopConnection):
        if connection.mode == HadoopConnection.Mode.EXPORT:
            return HadoopExportBackend(export_root)
        timeout = 5.0 if quick else settings.CANOPY_KUBERNETES_TIMEOUT_SECONDS
        return YarnBackend(connection.access(timeout_seconds=timeout))
    if connection.mode == KubernetesConnection.Mode.EXPORT:
        return ExportBackend(export_root)
    if quick:
        return KubernetesBackend(connection.access(timeout_seconds=5.0, retries=0))
    return KubernetesBackend(
        connection.access(
            timeout_seconds=settings.CANOPY_KUBERNETES_TIMEOUT_SECONDS,
            retries=settings.CANOPY_KUBERNETES_HTTP_RETRIES,
        )
    )


@dataclass
class ClusterOutcome:
    cluster: str
    state: str
    message: str
    transient: bool = False
    summary: dict[str, int] = field(default_factory=dict)


@dataclass
class ReconcileOutcome:
    tenant_id: int
    clusters: list[ClusterOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[ClusterOutcome]:
        return [c for c in self.clusters if c.state == State.FAILED]


def _save(status: ClusterSyncStatus, **values: Any) -> None:
    for name, value in values.items():
        setattr(status, name, value)
    status.save()


def _lease_take(tenant_id: int, owner: str) -> bool:
    now = timezone.now()
    until = now + datetime.timedelta(seconds=settings.CANOPY_PROVISIONING_LEASE_SECONDS)
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=owner)
    return (
        TenantSync.objects.filter(free, tenant_id=tenant_id).update(lease_owner=owner, lease_until=until) == 1
    )


def _lease_release(tenant_id: int, owner: str) -> None:
    TenantSync.objects.filter(tenant_id=tenant_id, lease_owner=owner).update(lease_owner="", lease_until=None)


def _result_message(backend: Backend, summary: dict[str, int], drift: str) -> str:
    done = f"{summary['create']} created, {summary['update']} changed, {summary['delete']} deleted, {summary['unchanged']} unchanged"
    if drift:
        done = f"Drift repaired ({drift}); {done}"
    return f"{done}: {backend.describe()}."


def target_objects(
    target: selectors.Target, *, foreign: Iterable[ForeignQueue] = (), own_directories: bool = False
) -> list[dict[str, Any]]:
    """What the cluster should have for the target. A Hadoop cluster's queue tree is rendered
    whole, even when this tenant is gone from it (its queue then is simply not wanted), counting
    the `foreign` queues (not Canopy's) among its children; `own_directories`: only the target
    tenant's HDFS directories (they do not depend on each other, unlike queues). Raises
    `RuleViolation` before anything is sent when the tree breaks a Capacity Scheduler rule."""
    if target.yarn is not None:
        hadoop = target.connection
        yarn_settings = hadoop.yarn_settings() if isinstance(hadoop, HadoopConnection) else YarnSettings()
        mine = [target.state.tenant_id] if isinstance(target.state, YarnTenant) else []
        return desired_objects(
            target.yarn.tenants,
            yarn_settings,
            hdfs_root=settings.CANOPY_HDFS_ROOT,
            partitions=target.yarn.partitions,
            foreign=foreign,
            directories_of=mine if own_directories else None,
        )
    if target.cluster_objects:
        return engine_cluster_objects(target.settings)
    if isinstance(target.state, TenantState):
        return engine_tenant_objects(target.settings, target.state)
    return []


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


def _cluster_objects_sync() -> TenantSync:
    """The cluster's own objects' row, made on first use."""
    sync, _ = TenantSync.objects.get_or_create(
        tenant_id=CLUSTER_OWNER_ID, defaults={"tenant_path": CLUSTER_OBJECTS_PATH, "namespace": ""}
    )
    return sync


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


def _cluster_objects_ensure(target: selectors.Target, leaving_kueue: bool) -> None:
    """Before a tenant's objects go to a Kueue cluster: the cluster's own as they should be (the
    admission policy before any namespace it guards, flavors and the root cohort before queues name
    them), pushed as their own owner when due. One push at a time per cluster: pushes that arrive
    meanwhile wait for it, then find nothing left to do. Its failure fails the tenant's push, with
    its message, before anything of the tenant's is sent."""
    if not _cluster_objects_due(target, leaving_kueue):
        return
    with cluster_lock(target.cluster, lock_class=CLUSTER_OBJECTS_LOCK_CLASS):
        if not _cluster_objects_due(target, leaving_kueue):
            return
        outcome = _reconcile_cluster(
            _cluster_objects_sync(), selectors.cluster_objects_target(target), drift_check=False
        )
    if outcome.state == State.FAILED:
        raise BackendError(f"The cluster's own objects: {outcome.message}", transient=outcome.transient)


def _leaving_kueue(status: ClusterSyncStatus | None, settings_: ClusterSettings) -> bool:
    """Whether the tenant was last pushed to the cluster under Kueue and the cluster has left it."""
    last = status.last_result.get("quota_engine") if status is not None else None
    return last == KUEUE_ENGINE and not is_kueue(settings_)


def target_names_left_out(target: selectors.Target) -> list[str]:
    """The users and groups holding a role on the target's tenant that its objects leave out, each
    with why: names a row kept from before tenants.cluster_names' rule existed. They are dropped,
    not refused: refusing would freeze the whole queue tree of a Hadoop cluster and leave on it the
    ACL such a name widened; dropping takes the widening away at the next push."""
    if isinstance(target.state, YarnTenant):
        return desired_yarn.names_left_out([target.state])
    if isinstance(target.state, TenantState):
        return desired_kubernetes.names_left_out(target.state, target.settings)
    return []


# The first key of Canopy's advisory locks (PostgreSQL's two-int form), the cluster id the second:
# other applications sharing the database keep clear of ours.
CLUSTER_LOCK_CLASS = 0x43A0  # a Hadoop cluster's queue tree
CLUSTER_OBJECTS_LOCK_CLASS = 0x43A1  # a Kubernetes cluster's own objects (Kueue)


@contextlib.contextmanager
def cluster_lock(cluster: Cluster, *, lock_class: int = CLUSTER_LOCK_CLASS) -> Iterator[None]:
    """One push at a time to a Hadoop cluster's queue tree, across workers and processes: the
    tree is planned whole from the RM's configuration, so two pushes planning at once would send
    the same change twice (the second refused); likewise a Kubernetes cluster's own objects
    (`lock_class` CLUSTER_OBJECTS_LOCK_CLASS). A PostgreSQL session advisory lock keyed by the
    cluster (taken again by the same session, it nests): no transaction stays open during the HTTP
    calls, and a worker that dies lets go with its connection. Waits up to
    CANOPY_PROVISIONING_CLUSTER_LOCK_SECONDS, then the push is retried.
    """
    if connection.vendor != "postgresql":
        # SQLite (the embedded console) has no advisory locks. There, tasks run in the console's own
        # process (no Redis, no worker) and pushes to a real Hadoop cluster are rare; the RM
        # serialises mutations, and a refused PUT is checked against the live configuration again.
        yield
        return
    key = [lock_class, cluster.pk]
    deadline = time.monotonic() + settings.CANOPY_PROVISIONING_CLUSTER_LOCK_SECONDS
    with connection.cursor() as cursor:
        # Polled rather than pg_advisory_lock: a blocked call could not give up at the deadline.
        while True:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", key)
            if cursor.fetchone()[0]:
                break
            if time.monotonic() >= deadline:
                raise BackendError(
                    f"Another push to cluster {cluster.name} is still running; this one is tried again shortly.",
                    transient=True,
                )
            time.sleep(0.1)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)


def _push_lock(target: selectors.Target, hadoop: bool) -> contextlib.AbstractContextManager[None]:
    if hadoop:
        return cluster_lock(target.cluster)
    if target.cluster_objects:
        return cluster_lock(target.cluster, lock_class=CLUSTER_OBJECTS_LOCK_CLASS)
    return contextlib.nullcontext()


def _reconcile_cluster(sync: TenantSync, target: selectors.Target, drift_check: bool) -> ClusterOutcome:
    cluster = target.cluster
    status, _ = ClusterSyncStatus.objects.get_or_create(sync=sync, cluster=cluster)
    backend = backend_for(cluster, target.connection)
    now = timezone.now()
    if backend is None:
        if target.state is None:
            status.delete()
            return ClusterOutcome(cluster.name, "removed", "nothing to remove: never pushed")
        message = (
            f"Cluster {cluster.name} has no connection; nothing is pushed until a platform admin adds one."
        )
        _save(status, state=State.PENDING, backend="", message=message)
        return ClusterOutcome(cluster.name, State.PENDING, message)
    _save(status, state=State.APPLYING, backend=backend.name, last_attempt_at=now)
    engine = target.settings.quota_engine
    leaving_kueue = _leaving_kueue(status, target.settings)
    left_out = target_names_left_out(target)
    if left_out:
        logger.warning("Push of tenant %s to %s: %s", sync.tenant_id, cluster.name, " ".join(left_out))
    note = "".join(f" {reason}" for reason in left_out)
    drift = ""
    hadoop = isinstance(backend, YarnBackend)
    asked = False  # whether the cluster was read yet (for the refusal's wording)
    try:
        # Canopy's own rules first: a tree that breaks them is refused without any call.
        desired = target_objects(target, own_directories=hadoop)
        if target.cluster_objects and status.last_result.get("fingerprint") != objects_fingerprint(desired):
            drift_check = False  # a change of Canopy's (a pool, the engine) waits: not drift
        if not target.cluster_objects:
            _cluster_objects_ensure(target, leaving_kueue)
        # A YARN push reads the RM, plans the whole queue tree and applies it under the cluster's
        # lock; queues made by hand among the planned children count against the 100 %.
        with backend, _push_lock(target, hadoop):
            if isinstance(backend, YarnBackend) and (foreign := backend.foreign_queues()):
                asked = True
                desired = target_objects(target, foreign=foreign, own_directories=True)
            plan = _plan(backend, target, sync, desired, leaving_kueue=leaving_kueue)
            if drift_check and not plan.is_empty:
                drift = plan.describe()
                _save(
                    status,
                    state=State.DRIFTED,
                    drift_detected_at=now,
                    drift_detail=drift[:4000],
                    message=drift,
                )
                if not settings.CANOPY_PROVISIONING_REPAIR_DRIFT:
                    return ClusterOutcome(cluster.name, State.DRIFTED, drift)
            result = backend.execute(plan)
    except RuleViolation as error:
        message = f"Refused before {'any change' if asked else 'anything'} was sent: {error}"
        _save(status, state=State.FAILED, message=message + note)
        return ClusterOutcome(cluster.name, State.FAILED, message)
    except BackendError as error:
        _save(status, state=State.FAILED, message=error.message + note)
        return ClusterOutcome(cluster.name, State.FAILED, error.message, transient=error.transient)
    if (not desired) if target.cluster_objects else target.state is None:
        status.delete()
        return ClusterOutcome(cluster.name, "removed", "objects deleted", summary=result.summary())
    message = _result_message(backend, plan.summary(), drift) + note
    recorded: dict[str, Any] = {"quota_engine": engine} if target.yarn is None else {}
    if target.cluster_objects:
        recorded["fingerprint"] = objects_fingerprint(desired)
    _save(
        status,
        state=State.SYNCED,
        provisioned=True,
        last_synced_at=timezone.now(),
        last_result={**result.summary(), **recorded},
        message=message,
    )
    return ClusterOutcome(cluster.name, State.SYNCED, message, summary=result.summary())


def tenant_reconcile(
    *,
    tenant_id: int,
    check_drift: bool = False,
    cluster_id: int | None = None,
    lease_owner: str | None = None,
) -> ReconcileOutcome:
    """Push one tenant to every cluster it is (or was) on, and record how it went.

    Idempotent: running it twice, or concurrently from two workers (a lease keeps one out), or
    after a crash halfway, ends in the same objects. Intents visible when it starts are covered by
    what it loads next, so they are marked done once every cluster succeeded (or get a backoff
    otherwise). With `check_drift` and nothing pending, any difference found is drift.

    `lease_owner` (the task's id) lets a retry of the same task take back the lease its failed
    run could not release (its database connection was cut): it need not wait for it to expire.

    The cluster's owner id (0) pushes the own objects of every cluster that has (or had) them.

    Raises `RetryLater` when a fault was transient, so the task retries soon."""
    own_objects = tenant_id == CLUSTER_OWNER_ID
    tenant = None if own_objects else Tenant.objects.filter(pk=tenant_id).first()
    if own_objects:
        sync: TenantSync | None = _cluster_objects_sync()  # kept, even with no status left
    elif tenant is not None:
        sync = _ensure_sync(tenant)
    else:
        sync = TenantSync.objects.filter(tenant_id=tenant_id).first()
    outcome = ReconcileOutcome(tenant_id)
    if sync is None:  # deleted before it was ever pushed
        ProvisioningIntent.objects.filter(tenant_id=tenant_id, state__in=OPEN).update(
            state=ProvisioningIntent.State.DONE, done_at=timezone.now()
        )
        return outcome
    owner = lease_owner or uuid.uuid4().hex
    if not _lease_take(tenant_id, owner):
        raise RetryLater(f"Tenant {tenant_id} is being pushed by another worker.")
    try:
        claimed = list(
            ProvisioningIntent.objects.filter(tenant_id=tenant_id, state__in=OPEN).values_list(
                "pk", flat=True
            )
        )
        drift_check = check_drift and not claimed
        if own_objects:
            targets = selectors.cluster_objects_targets(cluster_id=cluster_id)
        else:
            targets = selectors.tenant_targets(tenant_id=tenant_id, sync=sync, cluster_id=cluster_id)
        for target in targets:
            outcome.clusters.append(_reconcile_cluster(sync, target, drift_check))
        _intents_finish(tenant_id, claimed, outcome)
        if tenant is None and not own_objects and not sync.statuses.exists():
            sync.delete()  # gone everywhere: the namespace name is free again
    finally:
        _lease_release(tenant_id, owner)
    if any(c.transient for c in outcome.failed):
        raise RetryLater("; ".join(f"{c.cluster}: {c.message}" for c in outcome.failed))
    return outcome


def _intents_finish(tenant_id: int, claimed: list[int], outcome: ReconcileOutcome) -> None:
    now = timezone.now()
    failed = outcome.failed
    if not failed:
        ProvisioningIntent.objects.filter(pk__in=claimed).update(
            state=ProvisioningIntent.State.DONE, done_at=now, last_error=""
        )
    else:
        error = "; ".join(f"{c.cluster}: {c.message}" for c in failed)[:4000]
        intents = list(ProvisioningIntent.objects.filter(pk__in=claimed))
        for intent in intents:
            intent.attempts += 1
            intent.state = ProvisioningIntent.State.FAILED
            intent.last_error = error
            intent.next_attempt_at = now + _backoff(intent.attempts)
        ProvisioningIntent.objects.bulk_update(
            intents, ["attempts", "state", "last_error", "next_attempt_at"]
        )
    # A change recorded while this push ran is not in it: say so rather than "synced".
    if (
        ProvisioningIntent.objects.filter(tenant_id=tenant_id, state__in=OPEN)
        .exclude(pk__in=claimed)
        .exists()
    ):
        ClusterSyncStatus.objects.filter(sync__tenant_id=tenant_id, state=State.SYNCED).update(
            state=State.PENDING, message="Another change is waiting to be pushed."
        )


# ---------------------------------------------------------------------------------------------
# Connections (platform admins)


@dataclass
class ConnectionSpec:
    """A connection as entered. A secret left None keeps the stored one."""

    mode: str
    server: str = ""
    ca_data: str = ""
    token: str | None = None
    client_certificate: str = ""
    client_key: str | None = None
    kubeconfig: str | None = None
    user_server: str = ""
    user_ca_data: str = ""
    network_policy: bool = False
    gpu_resource: str = "nvidia.com/gpu"
    oidc_issuer_url: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str | None = None
    oidc_extra_scopes: str = "groups email"
    oidc_username_prefix: str = ""
    oidc_groups_prefix: str = "oidc:"
    quota_engine: str = KubernetesConnection.QuotaEngine.RESOURCE_QUOTA


_RESOURCE_NAME = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$"
)
_SECRET_FIELDS = {"token": "token", "client_key": "client_key", "kubeconfig": "kubeconfig"}  # nosec B105 # field names, not passwords
_MODE_SECRETS = {
    KubernetesConnection.Mode.TOKEN: {"token"},
    KubernetesConnection.Mode.CERTIFICATE: {"client_key"},
    KubernetesConnection.Mode.KUBECONFIG: {"kubeconfig"},
}


def _pem_errors(text: str) -> list[str]:
    if not text.strip():
        return []
    try:
        x509.load_pem_x509_certificates(text.encode())
    except ValueError:
        return ["Paste the certificate in PEM form (-----BEGIN CERTIFICATE----- ...)."]
    return []


def _connection_snapshot(connection: KubernetesConnection) -> dict[str, Any]:
    return {
        "mode": connection.mode,
        "server": connection.server,
        "user_server": connection.user_server,
        "network_policy": connection.network_policy,
        "gpu_resource": connection.gpu_resource,
        "quota_engine": connection.quota_engine,
        "oidc_issuer_url": connection.oidc_issuer_url,
        "oidc_client_id": connection.oidc_client_id,
        "oidc_extra_scopes": connection.oidc_extra_scopes,
        "oidc_username_prefix": connection.oidc_username_prefix,
        "oidc_groups_prefix": connection.oidc_groups_prefix,
        # Never the secrets themselves, only whether they are set.
        "token_set": bool(connection.token),
        "client_key_set": bool(connection.client_key),
        "kubeconfig_set": bool(connection.kubeconfig),
        "oidc_client_secret_set": bool(connection.oidc_client_secret),
    }


def connection_set(
    *, acting_user: AbstractBaseUser, cluster: Cluster, spec: ConnectionSpec
) -> KubernetesConnection:
    """Create or replace how Canopy reaches a Kubernetes cluster, then push every tenant on it."""
    require_platform_admin(acting_user)
    errors: dict[str, list[str]] = {}
    if cluster.kind != Cluster.Kind.KUBERNETES:
        raise ValidationError({"cluster": [f"{cluster} is not a Kubernetes cluster."]})
    if spec.mode not in KubernetesConnection.Mode.values:
        raise ValidationError({"mode": [f"Choose one of: {', '.join(KubernetesConnection.Mode.values)}."]})
    with transaction.atomic():
        connection = KubernetesConnection.objects.select_for_update().filter(cluster=cluster).first()
        before = _connection_snapshot(connection) if connection else None
        connection = connection or KubernetesConnection(cluster=cluster)
        connection.mode = spec.mode
        for name in (
            "server",
            "ca_data",
            "client_certificate",
            "user_server",
            "user_ca_data",
            "gpu_resource",
            "oidc_issuer_url",
            "oidc_client_id",
            "oidc_username_prefix",
            "oidc_groups_prefix",
        ):
            setattr(connection, name, (getattr(spec, name) or "").strip())
        connection.oidc_extra_scopes = " ".join((spec.oidc_extra_scopes or "").replace(",", " ").split())
        connection.network_policy = spec.network_policy
        connection.quota_engine = spec.quota_engine
        for name in _SECRET_FIELDS:
            value = getattr(spec, name)
            if value is not None:
                setattr(connection, name, value.strip())
            if name not in _MODE_SECRETS.get(spec.mode, set()):
                setattr(connection, name, "")  # a secret the mode does not use is not kept
        if spec.oidc_client_secret is not None:
            connection.oidc_client_secret = spec.oidc_client_secret.strip()
        if not connection.oidc_issuer_url:
            connection.oidc_client_secret = ""  # no OIDC, no secret kept for it  # nosec B105 # clears the stored secret
        mode = spec.mode
        needs_server = mode in (KubernetesConnection.Mode.TOKEN, KubernetesConnection.Mode.CERTIFICATE)
        if needs_server and not re.match(r"^https?://[^/\s]+", connection.server):
            errors["server"] = ["The API server URL, e.g. https://10.0.0.91:6443."]
        if mode == KubernetesConnection.Mode.TOKEN and not connection.token:
            errors["token"] = ["A bearer token for Canopy's ServiceAccount (see deploy/clusterrole.yaml)."]
        if mode == KubernetesConnection.Mode.CERTIFICATE:
            if not connection.client_certificate or not connection.client_key:
                errors["client_certificate"] = ["A client certificate and its key (PEM)."]
            elif problems := _pem_errors(connection.client_certificate):
                errors["client_certificate"] = problems
        if mode == KubernetesConnection.Mode.KUBECONFIG:
            try:
                check_kubeconfig(connection.kubeconfig)
            except ValueError as error:
                errors["kubeconfig"] = [str(error)]
        for name in ("ca_data", "user_ca_data"):
            if problems := _pem_errors(getattr(connection, name)):
                errors[name] = problems
        if connection.user_server and not re.match(r"^https?://[^/\s]+", connection.user_server):
            errors["user_server"] = ["A URL, e.g. https://k8s.example.com:6443."]
        if not _RESOURCE_NAME.fullmatch(connection.gpu_resource):
            errors["gpu_resource"] = ["An extended resource name such as nvidia.com/gpu."]
        if connection.oidc_issuer_url:
            if not re.match(r"^https://[^/\s]+\S*$", connection.oidc_issuer_url):
                errors["oidc_issuer_url"] = ["The API server's --oidc-issuer-url, an https URL."]
            if not connection.oidc_client_id:
                errors["oidc_client_id"] = ["The API server's --oidc-client-id."]
        if problems := _quota_engine_errors(cluster, connection.quota_engine):
            errors["quota_engine"] = problems
        if errors:
            raise ValidationError(errors)
        connection.save()
        _connection_changed(acting_user, cluster, before=before, after=_connection_snapshot(connection))
    return connection


QUOTA_ENGINE_HELP = (
    "How tenants' allocations are enforced on this cluster. resourcequota: one namespace "
    "ResourceQuota per tenant with its guaranteed amounts, all pools together. kueue: Kueue's "
    "per-pool quotas, the tenant tree as cohorts, guaranteed amounts as nominal quota and bursts as "
    "borrowing; every Kubernetes pool's node selector must then be key=value labels (a "
    "ResourceFlavor's nodeLabels). Changing it pushes every tenant on the cluster again."
)


def _quota_engine_errors(cluster: Cluster, engine: str) -> list[str]:
    """Why `cluster` cannot use `engine`: an unknown engine, or for Kueue a pool whose node selector
    is no key=value label list (a ResourceFlavor's nodeLabels are a map), each pool named."""
    if engine not in KubernetesConnection.QuotaEngine.values:
        return [f"Choose one of: {', '.join(KubernetesConnection.QuotaEngine.values)}."]
    if engine != KubernetesConnection.QuotaEngine.KUEUE:
        return []
    return [
        f"Kueue pins pool {pool.name}'s jobs to its nodes with its node selector "
        f"{pool.node_selector!r}, which is not a key=value label list: {problem}"
        for pool in cluster.pools.order_by("name")
        for problem in labels.node_selector_errors(pool.node_selector)
    ]


def connection_quota_engine_set(
    *, acting_user: AbstractBaseUser, cluster: Cluster, quota_engine: str
) -> KubernetesConnection:
    """Switch how a connected Kubernetes cluster enforces allocations (the console's Pools page;
    the API sets it with the rest of the connection). One audit row and a push of every tenant on
    the cluster, as any connection change; choosing the engine it has already changes nothing."""
    require_platform_admin(acting_user)
    with transaction.atomic():
        connection = KubernetesConnection.objects.select_for_update().filter(cluster=cluster).first()
        if connection is None:
            raise ValidationError(
                {
                    "quota_engine": [
                        f"Cluster {cluster} has no connection; add one first (its engine is set there)."
                    ]
                }
            )
        if connection.quota_engine == quota_engine:
            return connection
        if problems := _quota_engine_errors(cluster, quota_engine):
            raise ValidationError({"quota_engine": problems})
        before = _connection_snapshot(connection)
        connection.quota_engine = quota_engine
        connection.save(update_fields=["quota_engine", "updated_at"])
        _connection_changed(acting_user, cluster, before=before, after=_connection_snapshot(connection))
    return connection


@dataclass
class HadoopConnectionSpec:
    """A Hadoop connection as entered: URLs one a line (several ResourceManagers for HA)."""

    rm_urls: str
    webhdfs_urls: str
    user: str
    mode: str = HadoopConnection.Mode.API
    auth: str = HadoopConnection.Auth.SIMPLE
    directory_owner: str = "hdfs"
    directory_permission: str = "750"
    remainder_queue: str = "default"
    kerberos_principal: str = ""
    kerberos_keytab: str | None = None  # base64; None keeps the stored one, "" removes it


_KERBEROS_PRINCIPAL = re.compile(r"^[^\s@/]+(/[^\s@/]+)?@[^\s@/]+$")


def _hadoop_snapshot(connection: HadoopConnection) -> dict[str, Any]:
    snapshot = model_to_dict(connection, exclude=["cluster", "kerberos_keytab"])
    snapshot["kerberos_keytab_set"] = bool(connection.kerberos_keytab)  # never the keytab itself
    return snapshot


def _hadoop_auth_errors(connection: HadoopConnection) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if connection.kerberos_principal and not _KERBEROS_PRINCIPAL.fullmatch(connection.kerberos_principal):
        errors["kerberos_principal"] = ["A Kerberos principal such as canopy@EXAMPLE.COM."]
    if connection.kerberos_keytab:
        try:
            held = kerberos.keytab_principals_from_base64(connection.kerberos_keytab)
        except ValueError as error:
            errors["kerberos_keytab"] = [str(error)]
        else:
            principal = connection.kerberos_principal
            if principal and "kerberos_principal" not in errors and principal not in held:
                errors["kerberos_principal"] = [
                    f"The keytab has no key for {principal}; it holds {', '.join(held)}."
                ]
    if connection.auth == HadoopConnection.Auth.KERBEROS:
        if connection.kerberos_keytab and not connection.kerberos_principal:
            errors["kerberos_principal"] = [
                "The principal the keytab holds keys for, e.g. canopy@EXAMPLE.COM."
            ]
        if not kerberos.SPNEGO_ERRORS:
            errors["auth"] = ["Kerberos needs Canopy's [kerberos] extra (pip install 'canopy[kerberos]')."]
    return errors


def hadoop_connection_set(
    *, acting_user: AbstractBaseUser, cluster: Cluster, spec: HadoopConnectionSpec
) -> HadoopConnection:
    """Create or replace how Canopy reaches a Hadoop cluster, then push every tenant on it."""
    require_platform_admin(acting_user)
    if cluster.kind != Cluster.Kind.YARN:
        raise ValidationError({"cluster": [f"{cluster} is not a Hadoop cluster."]})
    errors: dict[str, list[str]] = {}
    with transaction.atomic():
        connection = HadoopConnection.objects.select_for_update().filter(cluster=cluster).first()
        before = _hadoop_snapshot(connection) if connection else None
        connection = connection or HadoopConnection(cluster=cluster)
        for name in (
            "rm_urls",
            "webhdfs_urls",
            "user",
            "mode",
            "auth",
            "directory_owner",
            "remainder_queue",
            "kerberos_principal",
        ):
            setattr(connection, name, (getattr(spec, name) or "").strip())
        connection.directory_permission = spec.directory_permission.strip()
        if spec.kerberos_keytab is not None:
            connection.kerberos_keytab = "".join(spec.kerberos_keytab.split())
        errors.update(_hadoop_auth_errors(connection))
        if connection.mode not in HadoopConnection.Mode.values:
            errors["mode"] = [f"Choose one of: {', '.join(HadoopConnection.Mode.values)}."]
        if connection.auth not in HadoopConnection.Auth.values:
            errors["auth"] = [f"Choose one of: {', '.join(HadoopConnection.Auth.values)}."]
        if connection.mode == HadoopConnection.Mode.API:
            for name, example in (("rm_urls", "http://rm1:8088"), ("webhdfs_urls", "http://nn1:9870")):
                urls = HadoopConnection._lines(getattr(connection, name))
                if not urls or not all(re.match(r"^https?://[^/\s]+", url) for url in urls):
                    errors[name] = [f"One URL a line, e.g. {example}."]
        if not re.fullmatch(r"[0-7]{3,4}", connection.directory_permission):
            errors["directory_permission"] = ["An octal permission such as 750."]
        if not connection.user:
            errors["user"] = [
                "The user Canopy acts as (a YARN admin and the HDFS superuser or a proxy user)."
            ]
        # Names written into HDFS (the directories' owner: a chown in hdfs-setup.sh, SETOWNER) and
        # into capacity-scheduler.xml's queue lists: the same rule as people's and groups' names.
        for name in ("user", "directory_owner"):
            if name not in errors and (problem := name_problem(getattr(connection, name))):
                errors[name] = [problem]
        if "." in connection.remainder_queue or name_problem(connection.remainder_queue):
            errors["remainder_queue"] = [
                "A queue name of letters, digits, '_' and '-', without dots, e.g. default."
            ]
        if errors:
            raise ValidationError(errors)
        connection.save()
        _connection_changed(acting_user, cluster, before=before, after=_hadoop_snapshot(connection))
    return connection


def _connection_changed(
    acting_user: AbstractBaseUser,
    cluster: Cluster,
    *,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """One audit row for a connection created, changed (`before` and `after`) or deleted (`after`
    None), and a push of every tenant on the cluster, in the caller's transaction."""
    if after is None:
        action, reason = "CONNECTION_DELETED", "CONNECTION_DELETED"
    else:
        action, reason = ("CONNECTION_UPDATED" if before else "CONNECTION_CREATED"), "CONNECTION_SET"
    audit(acting_user=acting_user, action=action, target=cluster, tenant=None, before=before, after=after)
    pushed = _tenants_on(cluster)
    if KUEUE_ENGINE in ((before or {}).get("quota_engine"), (after or {}).get("quota_engine")):
        pushed.append(CLUSTER_OWNER_ID)  # its own objects follow the connection (made, moved, removed)
    intent_record(tenant_ids=pushed, reason=reason)


def _tenants_on(cluster: Cluster) -> list[int]:
    allocated = Allocation.objects.filter(pool__cluster=cluster).values_list("tenant_id", flat=True)
    known = ClusterSyncStatus.objects.filter(cluster=cluster).values_list("sync__tenant_id", flat=True)
    return sorted(set(allocated) | set(known))


def connection_delete(*, acting_user: AbstractBaseUser, cluster: Cluster) -> None:
    """Forget how to reach a cluster (its Kubernetes or its Hadoop connection). Nothing on the
    cluster is touched; pushes stop (or go to the export backend if that is the default)."""
    require_platform_admin(acting_user)
    model, connection_snapshot = (
        (HadoopConnection, _hadoop_snapshot)
        if cluster.kind == Cluster.Kind.YARN
        else (KubernetesConnection, _connection_snapshot)
    )
    with transaction.atomic():
        connection = model.objects.select_for_update().filter(cluster=cluster).first()
        if connection is None:
            return
        before = connection_snapshot(connection)
        connection.delete()
        _connection_changed(acting_user, cluster, before=before, after=None)


@dataclass
class ConnectionCheck:
    ok: bool
    backend: str
    version: str = ""
    message: str = ""


def connection_test(*, acting_user: AbstractBaseUser, cluster: Cluster) -> ConnectionCheck:
    """Ask the cluster for its version ('v1.37.2'; a Hadoop cluster's ResourceManager and NameNode
    versions), or the exact error on the way there."""
    require_platform_admin(acting_user)
    connection: KubernetesConnection | HadoopConnection | None
    if cluster.kind == Cluster.Kind.YARN:
        connection = HadoopConnection.objects.filter(cluster=cluster).first()
    else:
        connection = KubernetesConnection.objects.filter(cluster=cluster).first()
    backend = backend_for(cluster, connection, quick=True)  # the first error as it is, not after retries
    if backend is None:
        return ConnectionCheck(False, "", message=f"Cluster {cluster.name} has no connection.")
    if isinstance(backend, ExportBackend):
        return ConnectionCheck(True, backend.name, message=f"Nothing to reach: {backend.describe()}.")
    try:
        with backend:
            version = backend.server_version()
    except BackendError as error:
        return ConnectionCheck(False, backend.name, message=error.message)
    product = "" if cluster.kind == Cluster.Kind.YARN else "Kubernetes "
    return ConnectionCheck(True, backend.name, version=version, message=f"Connected: {product}{version}.")


# ---------------------------------------------------------------------------------------------
# Kubeconfig download


@dataclass
class IssuedKubeconfig:
    filename: str
    content: str
    namespace: str
    service_account: str
    expires_at: datetime.datetime | None  # None: no token in it (OIDC clusters: kubelogin signs in)


def _live_backend(tenant: Tenant, cluster: Cluster) -> tuple[KubernetesBackend, TenantSync]:
    if cluster.kind != Cluster.Kind.KUBERNETES:
        raise NotProvisioned(f"{cluster.name} is not a Kubernetes cluster.")
    backend = backend_for(cluster, KubernetesConnection.objects.filter(cluster=cluster).first())
    if not isinstance(backend, KubernetesBackend):
        raise NotProvisioned(
            f"Cluster {cluster.name} is not connected to Canopy, so there is no API server to give you access to."
        )
    status = (
        ClusterSyncStatus.objects.filter(sync__tenant_id=tenant.pk, cluster=cluster)
        .select_related("sync")
        .first()
    )
    if status is None or not status.provisioned:
        state = status.get_state_display().lower() if status else "not on this cluster"
        raise NotProvisioned(f"{tenant.name_path} is not on {cluster.name} yet ({state}).")
    return backend, status.sync


def _kubeconfig(
    cluster: Cluster, namespace: str, endpoint: Any, user_name: str, user: dict[str, Any]
) -> dict[str, Any]:
    cluster_entry: dict[str, Any] = {"server": endpoint.server}
    if endpoint.ca_data:
        cluster_entry["certificate-authority-data"] = base64.b64encode(endpoint.ca_data).decode()
    context = f"{cluster.name}-{namespace}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster.name, "cluster": cluster_entry}],
        "users": [{"name": user_name, "user": user}],
        "contexts": [
            {"name": context, "context": {"cluster": cluster.name, "user": user_name, "namespace": namespace}}
        ],
        "current-context": context,
    }


def _comment_line(text: str) -> str:
    """`text` inside one line of a YAML comment: a line break (YAML 1.1 also breaks lines at NEL, LS
    and PS) would end the comment and start YAML, so control characters are shown as '?'."""
    return re.sub("[\x00-\x1f\x7f\x85\u2028\u2029]", "?", text)


def oidc_login_exec(connection: KubernetesConnection) -> dict[str, Any]:
    """The standard `kubectl oidc-login` (kubelogin) exec credential plugin for an OIDC cluster."""
    args = [
        "oidc-login",
        "get-token",
        f"--oidc-issuer-url={connection.oidc_issuer_url}",
        f"--oidc-client-id={connection.oidc_client_id}",
    ]
    if connection.oidc_client_secret:
        args.append(f"--oidc-client-secret={connection.oidc_client_secret}")
    args += [f"--oidc-extra-scope={scope}" for scope in connection.oidc_extra_scopes.split()]
    return {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": "kubectl",
        "args": args,
        "interactiveMode": "IfAvailable",
    }


def _kubeconfig_audit(
    acting_user: AbstractBaseUser, tenant: Tenant, cluster: Cluster, *, address: str, **details: str
) -> None:
    """The one audit row of a kubeconfig handed out: who, when, from which address, for which
    cluster and namespace. Never the token nor the OIDC client secret."""
    with transaction.atomic():
        audit(
            acting_user=acting_user,
            action="KUBECONFIG_ISSUED",
            target=tenant,
            tenant=tenant,
            after={"cluster": cluster.name, "address": address, **details},
        )


def _oidc_kubeconfig_issue(
    *,
    acting_user: AbstractBaseUser,
    tenant: Tenant,
    cluster: Cluster,
    connection: KubernetesConnection,
    address: str,
) -> IssuedKubeconfig:
    """On an OIDC cluster: no token, the person signs in with kubelogin; the cluster binds their
    user and groups (see `provisioning.desired.kubernetes`)."""
    backend, sync = _live_backend(tenant, cluster)
    try:
        endpoint = backend.user_endpoint()
    except BackendError as error:
        raise NotProvisioned(f"The cluster refused: {error.message}") from error
    username = acting_user.get_username()
    user_name = f"oidc-{service_account_name(username)}@{cluster.name}"
    kubeconfig = _kubeconfig(
        cluster, sync.namespace, endpoint, user_name, {"exec": oidc_login_exec(connection)}
    )
    _kubeconfig_audit(
        acting_user,
        tenant,
        cluster,
        address=address,
        namespace=sync.namespace,
        oidc_issuer_url=connection.oidc_issuer_url,
        oidc_user=f"{connection.oidc_username_prefix}{username}",
    )
    header = (
        f"# Kubeconfig for {_comment_line(username)} in {tenant.name_path} on {cluster.name}.\n"
        f"# It signs in with {_comment_line(connection.oidc_issuer_url)} through kubelogin: install it first\n"
        "# (kubectl krew install oidc-login); it opens a browser at the first kubectl command.\n"
    )
    return IssuedKubeconfig(
        filename=f"{cluster.name}-{sync.namespace}-{service_account_name(username)}.kubeconfig",
        content=header + yaml.safe_dump(kubeconfig, sort_keys=False),
        namespace=sync.namespace,
        service_account="",
        expires_at=None,
    )


def kubeconfig_issue(
    *, acting_user: AbstractBaseUser, tenant: Tenant, cluster: Cluster, address: str = ""
) -> IssuedKubeconfig:
    """A kubeconfig for the person's ServiceAccount in the tenant's namespace, with a token minted
    now through the TokenRequest API. The token is never stored; the download is audited with the
    address it was asked from. On a cluster whose connection has OIDC settings, a kubeconfig that
    signs in with `kubectl oidc-login` instead. A refusal (no right, or the tenant not on the
    cluster yet) changes nothing, like every refused call."""
    require(acting_user, Action.USE, tenant)
    connection = KubernetesConnection.objects.filter(cluster=cluster).first()
    if connection is not None and connection.oidc and cluster.kind == Cluster.Kind.KUBERNETES:
        return _oidc_kubeconfig_issue(
            acting_user=acting_user, tenant=tenant, cluster=cluster, connection=connection, address=address
        )
    backend, sync = _live_backend(tenant, cluster)
    account = service_account_name(acting_user.get_username())
    try:
        with backend:
            issued = backend.issue_token(
                namespace=sync.namespace,
                service_account=account,
                seconds=settings.CANOPY_KUBECONFIG_TOKEN_SECONDS,
            )
            endpoint = backend.user_endpoint()
    except ObjectMissing as error:
        raise NotProvisioned(
            f"You have no ServiceAccount in namespace {sync.namespace} on {cluster.name} yet; "
            f"it is created with the next push of {tenant.name_path}."
        ) from error
    except BackendError as error:
        raise NotProvisioned(f"The cluster refused: {error.message}") from error
    user_name = f"{account}@{cluster.name}"
    kubeconfig = _kubeconfig(cluster, sync.namespace, endpoint, user_name, {"token": issued.token})
    _kubeconfig_audit(
        acting_user,
        tenant,
        cluster,
        address=address,
        namespace=sync.namespace,
        service_account=account,
        expires_at=issued.expires_at.isoformat(),
    )
    header = (
        f"# Kubeconfig for {_comment_line(acting_user.get_username())} in {tenant.name_path} "
        f"on {cluster.name}.\n"
        f"# The token expires at {issued.expires_at.isoformat()}; download a new file then.\n"
    )
    return IssuedKubeconfig(
        filename=f"{cluster.name}-{sync.namespace}-{account}.kubeconfig",
        content=header + yaml.safe_dump(kubeconfig, sort_keys=False),
        namespace=sync.namespace,
        service_account=account,
        expires_at=issued.expires_at,
    )


# ---------------------------------------------------------------------------------------------
# Status, previews, exports, deletion impact (for people)


def tenant_push_request(*, acting_user: AbstractBaseUser, tenant: Tenant) -> list[int]:
    """'Push now': a tenant admin asks for the tenant to be pushed again (after a failure)."""
    require(acting_user, Action.ADMINISTER, tenant)
    with transaction.atomic():
        audit(acting_user=acting_user, action="PROVISIONING_REQUESTED", target=tenant, tenant=tenant)
        return intent_record(tenants=[tenant], reason="PROVISIONING_REQUESTED")


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


def tenant_preview(
    *, acting_user: AbstractBaseUser, tenant: Tenant, cluster: Cluster | None = None
) -> list[Preview]:
    """What a push of the tenant would do now on each cluster: objects to create, change (with the
    fields) and delete. Reads only."""
    require(acting_user, Action.ADMINISTER, tenant)
    return _previews(tenant, cluster)


class _Rollback(Exception):
    def __init__(self, previews: list[Preview]) -> None:
        self.previews = previews


def allocation_preview(
    *, acting_user: AbstractBaseUser, tenant: Tenant, spec: tenant_services.AllocationSpec
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


def hadoop_files_render(*, acting_user: AbstractBaseUser, cluster: Cluster) -> dict[str, str]:
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


def namespace_impact(*, tenant_ids: Iterable[int], ask_clusters: bool = True) -> list[NamespaceImpact]:
    """The namespaces deleting these tenants would delete, with the pods still running in each
    (asked of the cluster now; with `ask_clusters=False` not asked, the database only). Called by
    `tenants.services.tenant_deletion_impact` through `ProvisioningRecorder`. Asking waits on the network: never while holding a
    row lock."""
    rows = (
        ClusterSyncStatus.objects.filter(
            sync__tenant_id__in=list(tenant_ids), provisioned=True, cluster__kind=Cluster.Kind.KUBERNETES
        )
        .select_related("sync", "cluster")
        .order_by("cluster__name", "sync__namespace")
    )
    if not ask_clusters:
        return [NamespaceImpact(row.cluster.name, row.sync.namespace, None, "not asked") for row in rows]
    impacts = []
    for row in rows:
        connection = KubernetesConnection.objects.filter(cluster=row.cluster).first()
        backend = backend_for(row.cluster, connection, quick=True)
        pods: int | None = None
        note = "no connection"
        if backend is not None:
            note = f"{backend.name} backend"
            try:
                with backend:
                    pods = backend.active_pods(row.sync.namespace)
            except BackendError as error:
                note = error.message
        impacts.append(
            NamespaceImpact(row.cluster.name, row.sync.namespace, pods, note if pods is None else "")
        )
    return impacts


# ---------------------------------------------------------------------------------------------
# Following the tenants


class ProvisioningRecorder(ChangeRecorder):
    """How provisioning follows every write to the tenants (`tenants.changes`), inside the write's
    transaction: a new tenant's namespace name is fixed (or refused), a change becomes intents,
    a deletion names the namespaces it takes. Registered in `ProvisioningConfig.ready()`."""

    def change_record(self, change: TenantChange) -> None:
        intent_record(
            reason=change.reason,
            tenants=change.tenants,
            tenant_ids=change.tenant_ids,
            users=change.users,
            subtree=change.subtree,
            parents=change.parents,
        )

    def name_check(self, tenant: Tenant) -> None:
        namespace_reserve(tenant=tenant)

    def deletion_impact(self, *, tenant_ids: list[int], ask_clusters: bool) -> list[NamespaceImpact]:
        return namespace_impact(tenant_ids=tenant_ids, ask_clusters=ask_clusters)
