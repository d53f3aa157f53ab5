"""Time-bound grants (issue 19): ending them when their time comes, or earlier, or keeping them.

A grant is made by `allocation_set(..., ends_at=...)` (`allocations._write_allocation`). It ends
through the same allocation write: the same rules under the pool's lock, the usual change row and
the clusters' intents in the same transaction, plus an `ALLOCATION_GRANT_*` row saying what became
of it. Never below what running work holds without saying so: when the app that measures usage
(`tenants.running_work`) says the tenant's running work holds more than the amounts it goes back to,
the grant waits (audited once, retried by every beat pass) until an admin ends it anyway or keeps
the granted amounts. An end the rules refuse (the tenant gave its sub-tenants more meanwhile) is
refused for good, with the rule's words as its status; the allocation keeps the granted amounts.
"""

from __future__ import annotations

import datetime
import logging
import math
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from tenants import running_work
from tenants.amounts import KUBERNETES_RESOURCES
from tenants.audit import audit
from tenants.changes import TenantChange, change_record
from tenants.models import AllocationGrant
from tenants.permissions import Action, AnyUser, require
from tenants.services._common import _locked_tenant, _parent_of
from tenants.services.allocations import (
    AllocationSpec,
    _actor_name,
    _grant_close,
    _write_allocation,
    amounts_spec,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GrantAbove:
    """One resource whose running work holds more than the amount a grant goes back to."""

    label: str
    held: str
    back_to: str


def _above(grant: AllocationGrant, spec: AllocationSpec) -> tuple[list[GrantAbove], bool]:
    """The resources running work holds more of than `spec` gives, and whether anything was
    measured. A YARN queue's percents are shares of its parent, not amounts work holds: nothing
    to compare (lowering a queue's capacity stops no running application)."""
    pool = grant.allocation.pool
    if pool.is_yarn:
        return [], True
    held = running_work.held_of(grant.tenant_id, pool)
    if held is None:
        return [], False
    above = []
    for resource in KUBERNETES_RESOURCES:
        back_to = getattr(spec, resource.field)
        holds = held.get(resource.field)
        if back_to is not None and holds is not None and holds > back_to:
            # Rounded up: what running work holds is never said to be less than it is.
            above.append(
                GrantAbove(resource.label, resource.human(math.ceil(holds)), resource.human(back_to))
            )
    return above, True


def _waiting_status(above: list[GrantAbove]) -> str:
    holds = ", ".join(item.held for item in above)
    back = ", ".join(item.back_to for item in above)
    return f"Waiting: running work holds {holds}; back to {back} when it holds {back} or fewer."


def _grant_locked(grant: AllocationGrant) -> AllocationGrant:
    return (
        AllocationGrant.objects.select_for_update()
        .select_related("allocation__pool__cluster", "tenant")
        .get(pk=grant.pk)
    )


def _end(grant: AllocationGrant, *, acting_user: AnyUser | None, force: bool) -> str:
    """End one open grant in the caller's transaction; returns its state afterwards. `force` (an
    admin's "end now"): below running work if need be, saying so; a rule's refusal is raised."""
    # The tenant's row first, as every allocation write takes it (then the pool's, then the grant's):
    # one order, so beat and a concurrent change never deadlock.
    tenant = _locked_tenant(AllocationGrant.objects.select_related("tenant").get(pk=grant.pk).tenant)
    grant = _grant_locked(grant)
    if not grant.is_open:
        return grant.state
    spec = amounts_spec(grant.allocation.pool, grant.back_to)
    above, measured = _above(grant, spec)
    if above and not force:
        status = _waiting_status(above)
        first = grant.state != AllocationGrant.State.WAITING
        before = {"state": grant.state, "until": grant.ends_at.isoformat()}
        grant.state = AllocationGrant.State.WAITING
        grant.status = status
        grant.save(update_fields=["state", "status", "updated_at"])
        if first:  # audited once, when it starts waiting; each pass refreshes the figures
            audit(
                acting_user=acting_user,
                action="ALLOCATION_GRANT_WAITING",
                target=grant,
                tenant=tenant,
                before=before,
                after={"state": grant.state, "status": status},
            )
        return grant.state
    try:
        with transaction.atomic():
            _write_allocation(
                acting_user=acting_user, tenant=tenant, spec=spec, parent=_parent_of(tenant), ending=grant
            )
    except ValidationError as exc:
        if force:
            raise
        _grant_close(
            grant,
            acting_user=acting_user,
            state=AllocationGrant.State.REFUSED,
            status=f"End refused, the allocation keeps the granted amounts: {' '.join(exc.messages)}",
        )
        return grant.state
    if above:
        status = (
            f"Ended early by {_actor_name(acting_user)}, below what running work holds: "
            + "; ".join(f"{item.held} held, back to {item.back_to}" for item in above)
            + "."
        )
    elif acting_user is not None:
        status = f"Ended early by {_actor_name(acting_user)}."
    else:
        status = "Ended: back to the amounts before." + (
            "" if measured else " No usage was measured recently, so running work was not checked."
        )
    _grant_close(grant, acting_user=acting_user, state=AllocationGrant.State.ENDED, status=status)
    change_record(TenantChange(tenants=[tenant], parents=True, reason="ALLOCATION_GRANT_ENDED"))
    return grant.state


def allocation_grants_end_due(*, now: datetime.datetime | None = None) -> dict[int, str]:
    """Beat: end every open grant whose end time has come (waiting ones are tried again), each in
    its own transaction, so one that fails leaves the others be. Returns grant id -> state."""
    now = now or timezone.now()
    due = list(
        AllocationGrant.objects.filter(state__in=AllocationGrant.OPEN_STATES, ends_at__lte=now)
        .order_by("ends_at", "-tenant__depth", "pk")
        .values_list("pk", flat=True)
    )
    outcome: dict[int, str] = {}
    for grant_id in due:
        try:
            with transaction.atomic():
                outcome[grant_id] = _end(AllocationGrant(pk=grant_id), acting_user=None, force=False)
        except Exception:
            logger.exception("Ending time-bound grant %s failed; the next pass tries again.", grant_id)
            outcome[grant_id] = "error"
    return outcome


def allocation_grant_end(*, acting_user: AnyUser, grant: AllocationGrant) -> AllocationGrant:
    """End an open grant now, before its time or while it waits: back to the amounts before, below
    what running work holds if need be (the audit row and the status say so). A rule that refuses
    the amounts before is raised as the allocation's field errors; the grant stays open."""
    require(acting_user, Action.MANAGE, grant.tenant)
    with transaction.atomic():
        _locked_tenant(grant.tenant)
        if not _grant_locked(grant).is_open:
            raise ValidationError({"state": ["This grant has already ended."]})
        _end(grant, acting_user=acting_user, force=True)
    return AllocationGrant.objects.get(pk=grant.pk)


def allocation_grant_cancel(*, acting_user: AnyUser, grant: AllocationGrant) -> AllocationGrant:
    """Keep the granted amounts: the grant will not end (audited)."""
    require(acting_user, Action.MANAGE, grant.tenant)
    with transaction.atomic():
        _locked_tenant(grant.tenant)
        locked = _grant_locked(grant)
        if not locked.is_open:
            raise ValidationError({"state": ["This grant has already ended."]})
        _grant_close(
            locked,
            acting_user=acting_user,
            state=AllocationGrant.State.CANCELLED,
            status=f"Kept by {_actor_name(acting_user)}: the allocation keeps the granted amounts.",
        )
    return locked
