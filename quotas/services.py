"""Every write of quota requests and the inbox. Keyword-only, an explicit `acting_user`, one
transaction, one audit row (`tenants.audit.audit`); an approval writes the allocations through
`tenants.services.allocation_set`, so the allocation rules, their audit rows and the clusters' push
are the same as for any other change, in the same transaction as the request's decision.

Errors: `ValidationError` with a dict keyed by the API's field names; a request or tenant the user
may not see is `Http404`, one they see but may not act on `PermissionDenied`.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import Q, Sum
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from quotas import giving
from quotas.models import COMMENT_MAX, REASON_MAX, Notification, QuotaRequest
from quotas.selectors import quota_request_list
from quotas.texts import ASKED_NAMES, KUBERNETES_ASKED, YARN_ASKED, asked_of, asked_text, say
from tenants import services as tenant_services
from tenants.amounts import HUNDRED
from tenants.audit import audit, snapshot
from tenants.models import Allocation, Membership, ResourcePool, Tenant, parent_tree_path
from tenants.permissions import Action, AnyUser, can, is_platform_admin, require

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)


class Decision:
    APPROVE = "approve"
    CHANGE = "change"
    REFUSE = "refuse"
    CHOICES = (APPROVE, CHANGE, REFUSE)


# ---------------------------------------------------------------------------------------------
# Figures: who would give it


def _levels(tenant: Tenant, pool: ResourcePool) -> tuple[giving.Level, list[giving.Level]]:
    """The asking tenant and its ancestors (nearest first) as `quotas.giving` reads them: three
    queries whatever the depth."""
    prefixes = Tenant.path_prefixes(tenant.path)
    tenants = list(Tenant.objects.filter(path__in=prefixes).order_by("-depth"))
    allocations = {
        row.tenant_id: {name: getattr(row, name) for name in tenant_services.ALLOCATION_FIELDS}
        for row in Allocation.objects.filter(pool=pool, tenant__in=tenants)
    }
    held: dict[str, Any] = {
        row["parent"]: row
        for row in Allocation.objects.filter(pool=pool)
        .annotate(parent=parent_tree_path("tenant__"))
        .filter(parent__in=[t.path for t in tenants[1:]])
        .values("parent")
        .annotate(**{column: Sum(column) for column in giving.KUBERNETES_COLUMNS})
        .order_by()
    }
    levels = [
        giving.Level(
            tenant_id=t.pk,
            amounts=allocations.get(t.pk),
            children_held={column: held.get(t.path, {}).get(column) for column in giving.KUBERNETES_COLUMNS},
        )
        for t in tenants
    ]
    return levels[0], levels[1:]


def giving_for(tenant: Tenant, pool: ResourcePool, asked: Mapping[str, Any]) -> giving.Giving:
    asking, ancestors = _levels(tenant, pool)
    return giving.giving(asking, ancestors, asked, pool.is_yarn)


def deciders(deciding_tenant: Tenant | None) -> list[User]:
    """Who is told of a new request: the admins of the deciding tenant (theirs or through a group);
    where it has none, those of the nearest ancestor with some; else the platform admins."""
    users = get_user_model().objects.filter(is_active=True)
    if deciding_tenant is not None:
        for path in reversed(Tenant.path_prefixes(deciding_tenant.path)):
            admins = users.filter(
                Q(memberships__tenant__path=path, memberships__role=Membership.Role.ADMIN)
                | Q(groups__memberships__tenant__path=path, groups__memberships__role=Membership.Role.ADMIN)
            ).distinct()
            found = list(admins.order_by("username"))
            if found:
                return found
    return list(users.filter(is_staff=True).order_by("username"))


# ---------------------------------------------------------------------------------------------
# The inbox


def _absolute(link: str) -> str:
    return f"{settings.CANOPY_CONSOLE_URL.rstrip('/')}{link}" if settings.CANOPY_CONSOLE_URL else link


def _send(messages: list[EmailMessage]) -> None:
    """After the commit: a mail server that fails loses neither the request nor the inbox rows."""
    try:
        get_connection(fail_silently=False).send_messages(messages)
    except Exception:  # any backend's failure: logged, never raised into the request
        logger.exception("Could not send %d notification e-mail(s)", len(messages))


def notify(
    *,
    recipients: Iterable[User],
    subject: str,
    body: str,
    link: str = "",
    quota_request: QuotaRequest | None = None,
) -> list[Notification]:
    """Put a message in each recipient's inbox and, after the caller's transaction commits, send it
    by e-mail to those with an address (one message each: nobody reads the others' addresses)."""
    people = list({person.pk: person for person in recipients}.values())
    rows = Notification.objects.bulk_create(
        [
            Notification(
                recipient=person, subject=subject[:200], body=body, link=link, quota_request=quota_request
            )
            for person in people
        ]
    )
    text = f"{body}\n\n{_absolute(link)}\n" if link else body
    messages = [
        EmailMessage(subject=subject[:200], body=text, to=[person.email]) for person in people if person.email
    ]
    if messages:
        transaction.on_commit(lambda: _send(messages))
    return rows


def notification_mark_read(*, acting_user: AnyUser, notification_ids: Iterable[int] | None = None) -> int:
    """Mark the person's own notifications read (these ids, or all); others' are not touched."""
    unread = Notification.objects.filter(recipient_id=acting_user.pk, read_at__isnull=True)
    if notification_ids is not None:
        unread = unread.filter(pk__in=list(notification_ids))
    return unread.update(read_at=timezone.now())


# ---------------------------------------------------------------------------------------------
# Requests


def _amount_errors(pool: ResourcePool, asked: Mapping[str, Any]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not asked:
        return {"non_field_errors": ["Ask for at least one amount."]}
    wrong = KUBERNETES_ASKED if pool.is_yarn else YARN_ASKED
    for column in asked:
        if column in wrong:
            errors[ASKED_NAMES[column]] = [
                "YARN pools are shared by capacity percent: ask for capacity or max_capacity."
                if pool.is_yarn
                else "Capacity percentages apply to YARN pools only: ask for gpu, cpu or memory."
            ]
        elif column in YARN_ASKED and not Decimal(0) <= asked[column] <= HUNDRED:
            errors[ASKED_NAMES[column]] = ["A percentage from 0 to 100."]
    return errors


def _text_errors(name: str, text: str, limit: int, *, required: bool) -> dict[str, list[str]]:
    if required and not text.strip():
        return {name: ["Say why: the admins who decide read it."]}
    if len(text) > limit:
        return {name: [f"At most {limit} characters."]}
    return {}


def quota_request_create(
    *,
    acting_user: AnyUser,
    tenant: Tenant,
    pool: ResourcePool,
    asked: Mapping[str, Any],
    reason: str,
    until: datetime.datetime | None = None,
) -> QuotaRequest:
    """Ask for `asked` (the new totals, by column: gpu, cpu_millicores, memory_bytes, or a YARN
    pool's capacity_percent, max_capacity_percent) for `tenant` in `pool`, optionally `until`.
    Members and admins of the tenant (or above it) may; viewers may not. The request goes to the
    admins of the tenant that would have to give it (`quotas.giving`), who are told."""
    require(acting_user, Action.USE, tenant)
    asked = {column: value for column, value in asked.items() if value is not None}
    errors = _amount_errors(pool, asked)
    errors.update(_text_errors("reason", reason, REASON_MAX, required=True))
    if until is not None and until <= timezone.now():
        errors["until"] = ["Give a time in the future, or leave it empty."]
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
        current = Allocation.objects.filter(tenant=tenant, pool=pool).first()
        held = {column: getattr(current, column) for column in asked} if current is not None else {}
        if current is not None and not errors:
            same = [column for column in asked if getattr(current, column) == asked[column]]
            for column in same:
                errors[ASKED_NAMES[column]] = [
                    f"{tenant.name_path} has {say(column, asked[column])} in pool {pool} already."
                ]
        if errors:
            raise ValidationError(errors)
        plan = giving_for(tenant, pool, asked)
        deciding = Tenant.objects.filter(pk=plan.giver_id).first() if plan.giver_id else None
        quota_request = QuotaRequest.objects.create(
            tenant=tenant,
            pool=pool,
            **asked,
            held=snapshot_of(held),
            until=until,
            reason=reason,
            requester=cast("User", acting_user),  # `require` refused anyone not signed in
            requester_name=acting_user.get_username(),
            deciding_tenant=deciding,
        )
        audit(
            acting_user=acting_user,
            action="QUOTA_REQUEST_CREATED",
            target=quota_request,
            tenant=tenant,
            after=_request_snapshot(quota_request),
        )
        who = deciding.name_path if deciding else "the platform"
        notify(
            recipients=[person for person in deciders(deciding) if person.pk != acting_user.pk],
            subject=f"Quota request: {tenant.name_path} asks for more in {pool}",
            body=(
                f"{acting_user.get_username()} asks for {asked_text(asked, held)} for {tenant.name_path} in "
                f"pool {pool}{_until_text(until)}. It would come from {who}, whose admins decide.\n\n"
                f"Reason: {reason}"
            ),
            link=reverse("quotas:request", args=[quota_request.pk]),
            quota_request=quota_request,
        )
        return quota_request


def snapshot_of(values: Mapping[str, Any]) -> dict[str, Any]:
    """Columns as JSON keeps them (percentages as text)."""
    return {column: (str(value) if isinstance(value, Decimal) else value) for column, value in values.items()}


def _until_text(until: datetime.datetime | None) -> str:
    return f" until {timezone.localtime(until):%Y-%m-%d %H:%M}" if until else ""


def _request_snapshot(quota_request: QuotaRequest) -> dict[str, Any]:
    return {
        "pool": str(quota_request.pool),
        **snapshot(quota_request, tuple(asked_of(quota_request))),
        "until": quota_request.until.isoformat() if quota_request.until else None,
        "reason": quota_request.reason,
        "state": quota_request.state,
    }


def _visible(acting_user: AnyUser, quota_request: QuotaRequest) -> bool:
    return quota_request_list(user=acting_user).filter(pk=quota_request.pk).exists()


def may_decide(user: AnyUser | None, quota_request: QuotaRequest) -> bool:
    """Platform admins decide every request; tenant admins those of the tenant that would give it
    (theirs or below it). A requester decides their own only as one of those."""
    if is_platform_admin(user):
        return True
    deciding = quota_request.deciding_tenant
    return deciding is not None and can(user, Action.ADMINISTER, deciding)


def _locked(acting_user: AnyUser, quota_request: QuotaRequest) -> QuotaRequest:
    """The request, row-locked: 404 for someone who may not read it."""
    if not _visible(acting_user, quota_request):
        raise Http404("No such quota request.")
    return (
        QuotaRequest.objects.select_for_update(of=("self",))
        .select_related("tenant", "pool__cluster", "deciding_tenant", "requester")
        .get(pk=quota_request.pk)
    )


def _require_open(quota_request: QuotaRequest) -> None:
    if not quota_request.is_open:
        raise ValidationError(
            {"state": [f"This request is {quota_request.get_state_display().lower()} already."]}
        )


def quota_request_withdraw(*, acting_user: AnyUser, quota_request: QuotaRequest) -> QuotaRequest:
    """The requester takes back an open request."""
    with transaction.atomic():
        locked = _locked(acting_user, quota_request)
        if locked.requester_id != acting_user.pk:
            raise PermissionDenied("Only the person who asked may withdraw a request.")
        _require_open(locked)
        locked.state = QuotaRequest.State.WITHDRAWN
        locked.save(update_fields=["state", "updated_at"])
        audit(
            acting_user=acting_user,
            action="QUOTA_REQUEST_WITHDRAWN",
            target=locked,
            tenant=locked.tenant,
            before={"state": QuotaRequest.State.OPEN},
            after={"state": locked.state},
        )
        return locked


@dataclass(frozen=True)
class Outcome:
    quota_request: QuotaRequest
    applied: bool  # False: refused (by the decider, or because it no longer fits)


def _apply(acting_user: AnyUser, quota_request: QuotaRequest, asked: Mapping[str, Any]) -> None:
    """Write the allocations a grant changes, from the top down, through the allocation service;
    only those the decider manages (anything above them is not theirs to give: the rules then say
    what is missing). A request with an `until` makes each of them a time-bound grant ending then
    (beat goes back deepest first). Raises the rules' ValidationError."""
    pool = ResourcePool.objects.select_for_update().get(pk=quota_request.pool_id)
    plan = giving_for(quota_request.tenant, pool, asked)
    tenants = Tenant.objects.in_bulk([tenant_id for tenant_id, _ in plan.raises])
    for tenant_id, values in reversed(plan.raises):
        tenant = tenants[tenant_id]
        if tenant.pk != quota_request.tenant_id and not can(acting_user, Action.MANAGE, tenant):
            continue
        tenant_services.allocation_set(
            acting_user=acting_user,
            tenant=tenant,
            spec=tenant_services.AllocationSpec(pool=pool, **values),
            ends_at=quota_request.until,
        )


def quota_request_decide(
    *,
    acting_user: AnyUser,
    quota_request: QuotaRequest,
    decision: str,
    comment: str = "",
    asked: Mapping[str, Any] | None = None,
) -> Outcome:
    """Approve (as asked), change (approve `asked` instead) or refuse, with a comment (required to
    change or refuse). An approval that the allocation rules refuse now (it no longer fits) refuses
    the request with the rules' words. The requester is told either way."""
    errors = _text_errors("comment", comment, COMMENT_MAX, required=decision != Decision.APPROVE)
    if decision not in Decision.CHOICES:
        errors["decision"] = [f"One of {', '.join(Decision.CHOICES)}."]
    with transaction.atomic():
        locked = _locked(acting_user, quota_request)
        if not may_decide(acting_user, locked):
            raise PermissionDenied("The admins of the tenant that would give it decide this request.")
        _require_open(locked)
        granted: dict[str, Any] = asked_of(locked)
        if decision == Decision.CHANGE:
            granted = {column: value for column, value in (asked or {}).items() if value is not None}
            errors.update(_amount_errors(locked.pool, granted))
            if not errors and granted == asked_of(locked):
                errors["non_field_errors"] = ["That is what was asked for: approve it instead."]
        if errors:
            raise ValidationError(errors)
        before = {"state": locked.state}
        refusal = ""
        if decision != Decision.REFUSE:
            try:
                with transaction.atomic():
                    _apply(acting_user, locked, granted)
            except ValidationError as exc:
                refusal = " ".join(exc.messages)
        applied = decision != Decision.REFUSE and not refusal
        locked.state = (
            QuotaRequest.State.REFUSED
            if not applied
            else QuotaRequest.State.CHANGED
            if decision == Decision.CHANGE
            else QuotaRequest.State.APPROVED
        )
        locked.granted = snapshot_of(granted) if applied else {}
        locked.comment = comment
        locked.refusal_reason = f"It no longer fits: {refusal}" if refusal else ""
        locked.decided_by = cast("User", acting_user)  # `may_decide` refused anyone not signed in
        locked.decided_by_name = acting_user.get_username()
        locked.decided_at = timezone.now()
        locked.save()
        action = {
            QuotaRequest.State.APPROVED: "QUOTA_REQUEST_APPROVED",
            QuotaRequest.State.CHANGED: "QUOTA_REQUEST_CHANGED",
        }.get(locked.state, "QUOTA_REQUEST_REFUSED")
        audit(
            acting_user=acting_user,
            action=action,
            target=locked,
            tenant=locked.tenant,
            before=before,
            after={
                "state": locked.state,
                **({"granted": asked_text(granted)} if applied else {}),
                **({"comment": comment} if comment else {}),
                **({"refusal_reason": locked.refusal_reason} if refusal else {}),
            },
        )
        _tell_requester(locked, granted)
        return Outcome(locked, applied)


def _tell_requester(quota_request: QuotaRequest, granted: Mapping[str, Any]) -> None:
    if quota_request.requester is None:
        return
    where = f"{quota_request.tenant.name_path} in pool {quota_request.pool}"
    if quota_request.state == QuotaRequest.State.APPROVED:
        subject, said = f"Quota request approved: {where}", f"approved: {asked_text(granted)}"
    elif quota_request.state == QuotaRequest.State.CHANGED:
        subject, said = (
            f"Quota request approved with changes: {where}",
            f"approved with changes: {asked_text(granted)}",
        )
    else:
        subject, said = f"Quota request refused: {where}", "refused"
    lines = [f"{quota_request.decided_by_name} decided your request for {where}: {said}."]
    if quota_request.refusal_reason:
        lines.append(quota_request.refusal_reason)
    if quota_request.comment:
        lines.append(f"Comment: {quota_request.comment}")
    notify(
        recipients=[quota_request.requester],
        subject=subject,
        body="\n\n".join(lines),
        link=reverse("quotas:request", args=[quota_request.pk]),
        quota_request=quota_request,
    )
