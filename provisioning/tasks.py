"""Thin Celery tasks: take ids, call a service, retry with backoff. Safe to run twice."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from provisioning import services
from tenants import services as tenant_services


@shared_task(
    bind=True,
    name="provisioning.apply_tenant",
    # A cut database connection (failover, restart, idle timeout) is transient too; the worker
    # closes the broken connection after the failed run, so the retry opens a new one.
    autoretry_for=(services.RetryLater, OperationalError, InterfaceError),
    retry_backoff=settings.CANOPY_PROVISIONING_RETRY_BASE_SECONDS,
    retry_backoff_max=int(settings.CANOPY_PROVISIONING_RETRY_MAX_SECONDS),
    retry_jitter=True,
    max_retries=8,
    acks_late=True,
)
def apply_tenant(self: Any, tenant_id: int, check_drift: bool = False) -> dict[str, Any]:
    """Push one tenant to its clusters. After the last retry the intent stays failed and beat's
    `provisioning.redrive_intents` sends it again once its backoff has passed."""
    outcome = services.tenant_reconcile(
        tenant_id=tenant_id, check_drift=check_drift, lease_owner=self.request.id
    )
    return {"tenant": tenant_id, "clusters": {c.cluster: c.state for c in outcome.clusters}}


@shared_task(name="provisioning.redrive_intents")
def redrive_intents() -> list[int]:
    """Beat: re-send intents whose task never ran (broker down, worker lost) or whose backoff passed."""
    return services.intents_redrive()


@shared_task(name="provisioning.reconcile_all")
def reconcile_all() -> list[int]:
    """Beat: compare every tenant with its clusters and repair drift."""
    return services.reconcile_all()


@shared_task(name="provisioning.allocation_grants_end_due")
def allocation_grants_end_due() -> dict[int, str]:
    """Beat: end the time-bound grants whose time has come (waiting ones are tried again)."""
    return tenant_services.allocation_grants_end_due()
