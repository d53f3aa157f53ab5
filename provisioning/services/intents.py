"""Provisioning intents: recorded in the caller's transaction for the tenants a change affects,
queued after the commit, sent again by beat (`intents_redrive`) until a push has covered them; a
person's "Push now" records one too."""

from __future__ import annotations

import datetime
import functools
import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from provisioning import selectors
from provisioning.models import ClusterSyncStatus, ProvisioningIntent, TenantSync
from provisioning.services._common import OPEN, State, _backoff, _ensure_sync
from tenants.audit import audit
from tenants.models import Allocation, Membership, Tenant
from tenants.permissions import Action, AnyUser, require
from tenants.roles import reaches_below

logger = logging.getLogger(__name__)


DONE_KEPT = datetime.timedelta(days=7)


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


def tenant_push_request(*, acting_user: AnyUser, tenant: Tenant) -> list[int]:
    """'Push now': a tenant admin asks for the tenant to be pushed again (after a failure)."""
    require(acting_user, Action.ADMINISTER, tenant)
    with transaction.atomic():
        audit(acting_user=acting_user, action="PROVISIONING_REQUESTED", target=tenant, tenant=tenant)
        return intent_record(tenants=[tenant], reason="PROVISIONING_REQUESTED")
