"""Roles on a tenant: grant, change, remove."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from tenants import forms, selectors, services
from tenants.permissions import Action, grants_memoized, require
from tenants.views._page import HtmxHttpRequest
from tenants.views.tenant_page import tenant_page


def _members_tab(tenant_id: int) -> str:
    return f"{reverse('console:tenant', args=[tenant_id])}?tab=members"


@login_required
@require_POST
def membership_add(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The Members tab's "Add member". A refusal (no such person, a name a cluster cannot hold, a
    role already held) is an error under the picker, which keeps what was typed."""
    tenant = selectors.tenant_get(user=request.user, pk=pk)
    require(request.user, Action.ADMINISTER, tenant)
    form = forms.MembershipForm(request.POST)
    if form.is_valid():
        kind, name = form.cleaned_data["member"]
        role = form.cleaned_data["role"]
        person = selectors.user_to_grant(user=request.user, username=name) if kind == "user" else None
        if kind == "user" and person is None:
            form.add_error("member", f"There is no active user named {name}.")
        else:
            try:
                membership = services.membership_grant(
                    acting_user=request.user,
                    tenant=tenant,
                    user=person,
                    group=name if kind == "group" else None,
                    role=role,
                )
            except ValidationError as exc:
                forms.apply_service_errors(form, exc, {"user": "member", "group": "member"})
            else:
                subject = f"Group {membership.subject_name}" if kind == "group" else membership.subject_name
                messages.success(request, f"{subject} is now {role} of {tenant.name_path}.")
                return redirect(_members_tab(tenant.pk))
    # Refused: nothing was written, so the grants read once serve the whole page, as in a GET.
    with grants_memoized():
        return tenant_page(request, tenant, "members", given={"member_form": form})


@login_required
def member_choices(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """`?q=...`: the people and groups the Members tab's picker offers, as JSON. Only for an admin
    of the tenant, and only names the reader may see (`selectors.member_choices`)."""
    tenant = selectors.tenant_get(user=request.user, pk=pk)
    require(request.user, Action.ADMINISTER, tenant)
    search = forms.MemberSearchForm(request.GET)
    if not search.is_valid():
        return JsonResponse(search.errors, status=400)
    choices = selectors.member_choices(user=request.user, tenant=tenant, query=search.cleaned_data["q"])
    return JsonResponse(
        {
            "results": [
                {"value": c.value, "kind": c.kind, "name": c.name, "full_name": c.full_name} for c in choices
            ]
        }
    )


@login_required
@require_POST
def membership_change(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    membership = get_object_or_404(selectors.membership_list(user=request.user), pk=pk)
    try:
        services.membership_change_role(
            acting_user=request.user, membership=membership, role=request.POST.get("role", "")
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            f"{membership.subject_name} is now {request.POST.get('role')} of {membership.tenant.name_path}.",
        )
    return redirect(_members_tab(membership.tenant_id))


@login_required
@require_POST
def membership_remove(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    membership = get_object_or_404(selectors.membership_list(user=request.user), pk=pk)
    tenant_id = membership.tenant_id
    services.membership_revoke(acting_user=request.user, membership=membership)
    messages.success(request, f"{membership.subject_name} removed from {membership.tenant.name_path}.")
    return redirect(_members_tab(tenant_id))
