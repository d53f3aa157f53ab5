"""A tenant's allocations per pool."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from tenants import forms, selectors, services
from tenants.permissions import Action
from tenants.views._page import HtmxHttpRequest
from tenants.views._trials import (
    _checked_form_saved,
    _DryRun,
    _pool_hints,
    _pools_for_child,
    _validation_response,
)


@login_required
def tenant_allocations(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    user = request.user
    tenant = selectors.tenant_get(user=user, pk=pk, action=Action.MANAGE)
    parent = selectors.tenant_get(user=user, pk=tenant.parent_id) if tenant.parent_id else None
    pools = _pools_for_child(user, parent)
    current = {a.pool_id: a for a in selectors.allocation_list(user=user).filter(tenant=tenant)}
    grants = selectors.allocation_grants_shown(user=user, allocations=list(current.values()))
    form_kwargs: dict[str, Any] = {
        "pools": pools,
        "hints": _pool_hints(user, parent, pools, tenant, current),
        "current": current,
        "grants": {pool_id: grants[a.pk] for pool_id, a in current.items() if a.pk in grants},
    }
    if request.method == "POST":
        form = forms.AllocationsForm(request.POST, **form_kwargs)
        if form.is_valid():
            specs = form.clean_pool_fields()
            chosen = {spec.pool.pk for spec in specs}
            try:
                with transaction.atomic():
                    for spec in specs:
                        try:
                            with transaction.atomic():
                                services.allocation_set(
                                    acting_user=user,
                                    tenant=tenant,
                                    spec=spec,
                                    ends_at=form.ends_at_of(spec.pool),
                                )
                        except ValidationError as exc:
                            for key, messages_ in exc.message_dict.items():
                                form.add_error(form.pool_error_field(spec.pool, key), messages_)
                    for pool_id, allocation in current.items():
                        if pool_id not in chosen:
                            try:
                                with transaction.atomic():
                                    services.allocation_delete(acting_user=user, allocation=allocation)
                            except ValidationError as exc:
                                form.add_error(f"pool_{pool_id}_on", exc.messages)
                    if form.errors or request.POST.get("validate"):
                        raise _DryRun
            except _DryRun:
                pass
            if not form.errors and not request.POST.get("validate"):
                messages.success(request, f"Allocations of {tenant.name_path} saved.")
                return _checked_form_saved(
                    request, f"{reverse('console:tenant', args=[tenant.pk])}?tab=resources"
                )
        if request.POST.get("validate") or request.htmx:
            return _validation_response(request, form)
    else:
        form = forms.AllocationsForm(**form_kwargs)
    return render(
        request,
        "tenants/allocations_form.html",
        {"nav": "tenants", "form": form, "tenant": tenant, "parent": parent},
    )


def _grant_action(request: HttpRequest, pk: int, *, end: bool) -> HttpResponse:
    grant = get_object_or_404(selectors.allocation_grant_list(user=request.user), pk=pk)
    try:
        if end:
            grant = services.allocation_grant_end(acting_user=request.user, grant=grant)
        else:
            grant = services.allocation_grant_cancel(acting_user=request.user, grant=grant)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, grant.status)
    return redirect(f"{reverse('console:tenant', args=[grant.tenant_id])}?tab=resources")


@login_required
@require_POST
def allocation_grant_end(request: HttpRequest, pk: int) -> HttpResponse:
    """End a time-bound grant now: back to the amounts before (below running work if need be)."""
    return _grant_action(request, pk, end=True)


@login_required
@require_POST
def allocation_grant_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Keep a time-bound grant's amounts: it will not end."""
    return _grant_action(request, pk, end=False)
