"""Pushing tenants to their clusters: `tenant_reconcile` is what `provisioning.apply_tenant` runs
(load the tenant's truth, render it, plan against each cluster, apply, record the outcome);
`reconcile_all` is beat's full reconcile. Also each cluster's backend (`backend_for`) and the
advisory lock that keeps one push at a time to a cluster's shared objects (`cluster_lock`)."""

from __future__ import annotations

import contextlib
import datetime
import logging
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from provisioning import selectors
from provisioning.backends.base import Backend, BackendError
from provisioning.backends.export import ExportBackend, HadoopExportBackend
from provisioning.backends.kubernetes import KubernetesBackend
from provisioning.backends.yarn import YarnBackend
from provisioning.desired import kubernetes as desired_kubernetes
from provisioning.desired import yarn as desired_yarn
from provisioning.desired.kubernetes import KUEUE_ENGINE, TenantState
from provisioning.desired.kueue import (
    CLUSTER_KINDS,
    CLUSTER_OWNER_ID,
    engine_cluster_objects,
    engine_tenant_objects,
    is_kueue,
    objects_fingerprint,
    tenant_kinds,
)
from provisioning.desired.yarn import ForeignQueue, RuleViolation, YarnSettings, YarnTenant, desired_objects
from provisioning.models import (
    ClusterSyncStatus,
    HadoopConnection,
    KubernetesConnection,
    ProvisioningIntent,
    TenantSync,
)
from provisioning.services._common import (
    CLUSTER_OBJECTS_PATH,
    CLUSTER_SCOPE,
    OPEN,
    State,
    _backoff,
    _cluster_objects_due,
    _ensure_sync,
    _leaving_kueue,
    _plan,
    tenant_scope,
)
from provisioning.services.intents import enqueue
from tenants.models import Cluster, Tenant

logger = logging.getLogger(__name__)


class RetryLater(Exception):
    """A push met a transient fault (or another worker holds the tenant); the task retries it."""


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
    if cluster is None or backend is None:
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


def _cluster_objects_sync() -> TenantSync:
    """The cluster's own objects' row, made on first use."""
    sync, _ = TenantSync.objects.get_or_create(
        tenant_id=CLUSTER_OWNER_ID, defaults={"tenant_path": CLUSTER_OBJECTS_PATH, "namespace": ""}
    )
    return sync


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
