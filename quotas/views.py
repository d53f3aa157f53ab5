"""The console's quota request pages: ask for more, the requests (mine and to decide), one request
with its decision dialogs, the inbox; and the parts added to the tenants' pages (tenants/console.py):
"Ask for more" with the tenant's requests on the Resources tab, and on My access."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from quotas import selectors, services
from quotas.forms import DecisionForm, QuotaRequestForm
from quotas.models import QuotaRequest
from quotas.texts import ASKED_NAMES as NAME_OF
from quotas.texts import amount_label, asked_of, asked_text
from tenants import console
from tenants import selectors as tenant_selectors
from tenants.forms import apply_service_errors
from tenants.models import Membership, Tenant
from tenants.permissions import Action, can
from tenants.views._page import HtmxHttpRequest, render_page

# ---------------------------------------------------------------------------------------------
# Parts of the tenants' pages


def resources_tab_context(request: HtmxHttpRequest, tenant: Tenant) -> dict[str, Any]:
    """'Ask for more' for those who use the tenant, and its open requests the reader may read."""
    return {
        "tenant": tenant,
        "can_ask": can(request.user, Action.USE, tenant),
        "open_requests": list(
            selectors.quota_request_of_tenant(user=request.user, tenant_id=tenant.pk).filter(
                state=QuotaRequest.State.OPEN
            )[:20]
        ),
    }


def my_access_context(request: HtmxHttpRequest, roles: list[Any]) -> dict[int, dict[str, Any]]:
    """My access: 'Ask for more' on each tenant the person uses (viewers do not ask), with how many
    of their own requests there are open. One query for any number of tenants."""
    tenant_ids = [role.tenant.pk for role in roles]
    open_counts = dict(
        selectors.quota_request_mine(user=request.user)
        .filter(tenant_id__in=tenant_ids, state=QuotaRequest.State.OPEN)
        .values_list("tenant_id")
        .annotate(count=Count("pk"))
        .order_by()
    )
    return {
        role.tenant.pk: {
            "can_ask": role.role != Membership.Role.VIEWER,
            "open_count": open_counts.get(role.tenant.pk, 0),
        }
        for role in roles
    }


RESOURCES_TAB_SECTION = console.PageSection(
    page=console.RESOURCES_TAB,
    template="quotas/partials/_resources_requests.html",
    context=resources_tab_context,
)
MY_ACCESS_SECTION = console.PageSection(
    page=console.MY_ACCESS_TENANT, template="quotas/partials/_my_access_ask.html", context=my_access_context
)


# ---------------------------------------------------------------------------------------------
# Asking


def _pool_choices(request: HtmxHttpRequest, tenant: Tenant) -> list[tuple[int, str]]:
    """Every pool, the tenant's own first, each saying what the tenant has there."""
    held = {
        allocation.pool_id: allocation
        for allocation in tenant_selectors.allocation_list(user=request.user).filter(tenant=tenant)
    }
    pools = list(tenant_selectors.pool_list(user=request.user).select_related("cluster"))
    pools.sort(key=lambda pool: (pool.pk not in held, str(pool)))
    return [
        (pool.pk, f"{pool} ({'has an allocation' if pool.pk in held else 'nothing yet'})") for pool in pools
    ]


@login_required
def quota_request_create(request: HtmxHttpRequest) -> HttpResponse:
    """Ask for more: ?tenant=<id> (and pool, resource, amount to start from, as a proposal may)."""
    tenant = tenant_selectors.tenant_get(user=request.user, pk=request.GET.get("tenant"), action=Action.USE)
    pools = _pool_choices(request, tenant)
    if request.method == "POST":
        form = QuotaRequestForm(request.POST, pools=pools)
        if form.is_valid():
            asked = form.asked()
            if asked:
                pool = tenant_selectors.pool_list(user=request.user).get(pk=form.cleaned_data["pool"])
                try:
                    created = services.quota_request_create(
                        acting_user=request.user,
                        tenant=tenant,
                        pool=pool,
                        asked=asked,
                        reason=form.cleaned_data["reason"],
                        until=form.cleaned_data["until"],
                    )
                except ValidationError as exc:
                    apply_service_errors(form, exc, field_for={name: "amount" for name in NAME_OF.values()})
                else:
                    who = created.deciding_tenant.name_path if created.deciding_tenant else "the platform"
                    messages.success(request, f"Your request was sent to the admins of {who}.")
                    return redirect("quotas:request", created.pk)
    else:
        form = QuotaRequestForm(
            # A proposal from the idle-quota hints (usage) starts the form with its figures and why.
            initial={
                key: request.GET[key]
                for key in ("pool", "resource", "amount", "reason")
                if key in request.GET
            },
            pools=pools,
        )
    return render(request, "quotas/request_form.html", {"nav": "requests", "tenant": tenant, "form": form})


# ---------------------------------------------------------------------------------------------
# Reading and deciding


@login_required
def quota_requests(request: HtmxHttpRequest) -> HttpResponse:
    """Open requests the reader may decide, their own, and every other they may read (decided ones)."""
    user = request.user
    to_decide = list(selectors.quota_request_to_decide(user=user)[:100])
    mine = Paginator(selectors.quota_request_mine(user=user), 50).get_page(request.GET.get("mine_page"))
    return render(
        request,
        "quotas/requests.html",
        {"nav": "requests", "to_decide": to_decide, "mine": mine},
    )


DECISIONS = {
    services.Decision.APPROVE: (
        "Approve this request?",
        "Approve",
        "The allocation is changed as asked, "
        "through the same rules as any change (a request that no longer fits is refused with the reason), "
        "audited and pushed to the clusters. The requester is told.",
    ),
    services.Decision.CHANGE: (
        "Approve with other amounts?",
        "Approve changed amounts",
        "Give the totals to grant instead, and say why. The requester is told.",
    ),
    services.Decision.REFUSE: ("Refuse this request?", "Refuse", "Say why: the requester is told."),
}


def _decisions(
    quota_request: QuotaRequest, form: DecisionForm | None, kind: str | None
) -> list[dict[str, Any]]:
    """Each decision's dialog: what it says, and for the one just refused (`kind`) what was typed and why."""
    asked = asked_of(quota_request)
    result = []
    for decision, (title, button, explain) in DECISIONS.items():
        errors = form.errors if form is not None and decision == kind else {}
        data = form.data if form is not None and decision == kind else {}
        amounts = [
            {
                "name": NAME_OF[column],
                "label": amount_label(column),
                "asked": asked_text({column: value}).partition(": ")[2],
                "typed": data.get(NAME_OF[column], ""),
                "errors": errors.get(NAME_OF[column], []),
            }
            for column, value in asked.items()
        ]
        result.append(
            {
                "kind": decision,
                "title": title,
                "button": button,
                "explain": explain,
                "amounts": amounts if decision == services.Decision.CHANGE else [],
                "comment": data.get("comment", ""),
                "comment_errors": errors.get("comment", []),
                "non_field_errors": [
                    *errors.get("__all__", []),
                    *errors.get("state", []),
                    *errors.get("decision", []),
                ],
            }
        )
    return result


def _detail_context(
    request: HtmxHttpRequest,
    quota_request: QuotaRequest,
    form: DecisionForm | None = None,
    kind: str | None = None,
) -> dict[str, Any]:
    decisions = _decisions(quota_request, form, kind)
    return {
        "nav": "requests",
        "quota_request": quota_request,
        "asked_text": asked_text(asked_of(quota_request), quota_request.held),
        "granted_text": asked_text(quota_request.granted) if quota_request.granted else "",
        "may_decide": quota_request.is_open and services.may_decide(request.user, quota_request),
        "may_withdraw": quota_request.is_open and quota_request.requester_id == request.user.pk,
        "decisions": decisions,
        "open_dialog": kind,
        # The fragment an htmx post gets back: its own form with what was typed and why not.
        "d": next((d for d in decisions if d["kind"] == kind), None),
    }


@login_required
def quota_request_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    quota_request = selectors.quota_request_get(user=request.user, pk=pk)
    return render(request, "quotas/request_detail.html", _detail_context(request, quota_request))


@login_required
@require_POST
def quota_request_decide(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    quota_request = selectors.quota_request_get(user=request.user, pk=pk)
    asked_names = [NAME_OF[column] for column in asked_of(quota_request)]
    form = DecisionForm(request.POST, asked_names=asked_names)
    if form.is_valid():
        granted = form.granted() if form.cleaned_data["decision"] == services.Decision.CHANGE else None
        if not form.errors:
            try:
                outcome = services.quota_request_decide(
                    acting_user=request.user,
                    quota_request=quota_request,
                    decision=form.cleaned_data["decision"],
                    comment=form.cleaned_data["comment"],
                    asked=granted,
                )
            except ValidationError as exc:
                apply_service_errors(form, exc)
            else:
                return _decided(request, outcome)
    kind = request.POST.get("decision")
    kind = kind if kind in services.Decision.CHOICES else services.Decision.APPROVE
    context = _detail_context(request, quota_request, form, kind)
    return render_page(request, "quotas/request_detail.html", context, partial="decide_form")


def _decided(request: HtmxHttpRequest, outcome: services.Outcome) -> HttpResponse:
    decided = outcome.quota_request
    if outcome.applied:
        messages.success(
            request, f"{decided.get_state_display()}: the allocation is changed and pushed to the clusters."
        )
    elif decided.refusal_reason:
        messages.error(request, f"Refused: {decided.refusal_reason}")
    else:
        messages.success(request, "Refused; the requester is told.")
    url = reverse("quotas:request", args=[decided.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@login_required
@require_POST
def quota_request_withdraw(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    quota_request = selectors.quota_request_get(user=request.user, pk=pk)
    try:
        services.quota_request_withdraw(acting_user=request.user, quota_request=quota_request)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Your request is withdrawn.")
    return redirect("quotas:request", quota_request.pk)


# ---------------------------------------------------------------------------------------------
# The inbox


@login_required
def inbox(request: HtmxHttpRequest) -> HttpResponse:
    page = Paginator(selectors.notification_list(user=request.user), 50).get_page(request.GET.get("page"))
    unread = selectors.notification_unread_count(user=request.user)
    return render(request, "quotas/inbox.html", {"nav": "inbox", "page": page, "unread": unread})


@login_required
def inbox_badge(request: HtmxHttpRequest) -> HttpResponse:
    """The menu's unread count, which every page loads after it is drawn (htmx): one query, paid by
    this small request rather than by each page."""
    unread = selectors.notification_unread_count(user=request.user)
    return render(request, "quotas/partials/_inbox_badge.html", {"unread": unread})


@login_required
@require_POST
def inbox_read(request: HtmxHttpRequest) -> HttpResponse:
    """Mark one notification read (`notification`), or all of them."""
    notification = request.POST.get("notification")
    ids = None
    if notification is not None:
        ids = [int(notification)] if notification.isdigit() and len(notification) < 19 else []
    services.notification_mark_read(acting_user=request.user, notification_ids=ids)
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts=None):
        return redirect(target)
    return redirect(f"{reverse('quotas:inbox')}?{urlencode({'page': request.GET.get('page', '1')})}")
