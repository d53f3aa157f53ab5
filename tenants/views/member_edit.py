"""Roles on a tenant: grant, change, remove."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from tenants import forms, selectors, services

User = get_user_model()


@login_required
@require_POST
def membership_add(request: HttpRequest, pk: int) -> HttpResponse:
    tenant = selectors.tenant_get(user=request.user, pk=pk)
    form = forms.MembershipForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give a user name or a group, and a role.")
        return redirect(f"{reverse('console:tenant', args=[tenant.pk])}?tab=members")
    role, group = form.cleaned_data["role"], form.cleaned_data["group"]
    person = None
    if not group:
        person = selectors.user_to_grant(user=request.user, username=form.cleaned_data["username"])
        if person is None:
            messages.error(request, f"There is no active user named {form.cleaned_data['username']}.")
            return redirect(f"{reverse('console:tenant', args=[tenant.pk])}?tab=members")
    try:
        membership = services.membership_grant(
            acting_user=request.user, tenant=tenant, user=person, group=group or None, role=role
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        subject = f"Group {membership.subject_name}" if group else membership.subject_name
        messages.success(request, f"{subject} is now {role} of {tenant.name_path}.")
    return redirect(f"{reverse('console:tenant', args=[tenant.pk])}?tab=members")


@login_required
@require_POST
def membership_change(request: HttpRequest, pk: int) -> HttpResponse:
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
    return redirect(f"{reverse('console:tenant', args=[membership.tenant_id])}?tab=members")


@login_required
@require_POST
def membership_remove(request: HttpRequest, pk: int) -> HttpResponse:
    membership = get_object_or_404(selectors.membership_list(user=request.user), pk=pk)
    tenant_id = membership.tenant_id
    services.membership_revoke(acting_user=request.user, membership=membership)
    messages.success(request, f"{membership.subject_name} removed from {membership.tenant.name_path}.")
    return redirect(f"{reverse('console:tenant', args=[tenant_id])}?tab=members")
