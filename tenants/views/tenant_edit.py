"""Creating a tenant, suspending or resuming it, deleting it."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from tenants import forms, selectors, services
from tenants.models import Cluster
from tenants.permissions import Action, is_platform_admin
from tenants.views._page import HtmxHttpRequest
from tenants.views._trials import (
    _checked_form_saved,
    _pool_hints,
    _pools_for_child,
    _trial_create,
    _validation_response,
)


@login_required
def tenant_create(request: HtmxHttpRequest) -> HttpResponse:
    user = request.user
    parents = selectors.tenant_list(user=user, action=Action.ADMINISTER).filter(leaf=False)
    parent_id = request.POST.get("parent") or request.GET.get("parent")
    parent = selectors.tenant_get(user=user, pk=parent_id, action=Action.ADMINISTER) if parent_id else None
    pools = _pools_for_child(user, parent)
    hadoop = list(selectors.cluster_list(user=user).filter(kind=Cluster.Kind.YARN))
    form_kwargs: dict[str, Any] = {
        "parents": parents,
        "pools": pools,
        "hints": _pool_hints(user, parent, pools),
        "hadoop_clusters": hadoop,
        "level1_allowed": is_platform_admin(user),
    }
    if request.method == "POST":
        form = forms.TenantCreateForm(request.POST, **form_kwargs)
        tenant = _trial_create(request, form) if form.is_valid() else None
        if tenant is not None:
            messages.success(request, f"Tenant {tenant.name_path} created.")
            return _checked_form_saved(request, reverse("console:tenant", args=[tenant.pk]))
        if request.POST.get("validate") or request.htmx:
            return _validation_response(request, form)
    else:
        form = forms.TenantCreateForm(initial={"parent": parent}, **form_kwargs)
    return render(request, "tenants/tenant_form.html", {"nav": "tenants", "form": form, "parent": parent})


@login_required
@require_POST
def tenant_state(request: HttpRequest, pk: int) -> HttpResponse:
    tenant = selectors.tenant_get(user=request.user, pk=pk)
    state = request.POST.get("state", "")
    try:
        tenant = services.tenant_set_state(acting_user=request.user, tenant=tenant, state=state)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request, f"{tenant.name_path} and its sub-tenants are now {tenant.get_state_display().lower()}."
        )
    return redirect("console:tenant", tenant.pk)


@login_required
def tenant_delete(request: HttpRequest, pk: int) -> HttpResponse:
    tenant = selectors.tenant_get(user=request.user, pk=pk, action=Action.MANAGE)
    impact = services.tenant_deletion_impact(tenant)
    error = None
    if request.method == "POST":
        try:
            services.tenant_delete(
                acting_user=request.user, tenant=tenant, confirm=request.POST.get("confirm") == "yes"
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            messages.success(request, f"Tenant {tenant.name_path} deleted.")
            return (
                redirect("console:tenant", tenant.parent_id)
                if tenant.parent_id
                else redirect("console:tenants")
            )
    return render(
        request,
        "tenants/tenant_delete.html",
        {"nav": "tenants", "tenant": tenant, "impact": impact, "error": error},
    )
