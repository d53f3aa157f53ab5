"""Quota plans: the list, the editor, and applying one to a tenant."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms import ModelChoiceField
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from tenants import forms, selectors, services
from tenants.amounts import (
    KUBERNETES_RESOURCES,
)
from tenants.models import Cluster
from tenants.permissions import Action, is_platform_admin


@login_required
def plans(request: HttpRequest) -> HttpResponse:
    return render(
        request, "tenants/plans.html", {"nav": "plans", "plans": selectors.plan_list(user=request.user)}
    )


@login_required
def tenant_plan(request: HttpRequest, pk: int) -> HttpResponse:
    tenant = selectors.tenant_get(user=request.user, pk=pk, action=Action.MANAGE)
    form = forms.PlanChoiceForm(request.POST or None)
    cast(ModelChoiceField, form.fields["plan"]).queryset = selectors.plan_list(user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            services.tenant_apply_plan(
                acting_user=request.user, tenant=tenant, plan=form.cleaned_data["plan"]
            )
        except ValidationError as exc:
            forms.apply_service_errors(
                form,
                exc,
                {
                    key: "plan"
                    for key in ("gpu", "cpu", "memory", "capacity", "max_capacity", "pool")
                    + tuple(r.burst_name for r in KUBERNETES_RESOURCES)
                },
            )
        else:
            messages.success(request, f"Plan {form.cleaned_data['plan']} applied to {tenant.name_path}.")
            return redirect(f"{reverse('console:tenant', args=[tenant.pk])}?tab=resources")
    return render(request, "tenants/plan_form.html", {"nav": "tenants", "form": form, "tenant": tenant})


@login_required
def plan_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Create or change a quota plan (platform admins). Tenants made from it keep their copy."""
    if not is_platform_admin(request.user):
        raise PermissionDenied("Only platform admins edit plans.")
    plan = get_object_or_404(selectors.plan_list(user=request.user), pk=pk) if pk is not None else None
    pools = list(selectors.pool_list(user=request.user))
    hadoop = list(selectors.cluster_list(user=request.user).filter(kind=Cluster.Kind.YARN))
    form = forms.PlanForm(request.POST or None, pools=pools, hadoop_clusters=hadoop, plan=plan)
    if request.method == "POST" and form.is_valid():
        allocations = form.clean_pool_fields()
        storage = form.storage_specs()
        if not form.errors:
            try:
                if plan is None:
                    plan = services.plan_create(
                        acting_user=request.user,
                        name=form.cleaned_data["name"],
                        description=form.cleaned_data["description"],
                        allocations=allocations,
                        storage=storage,
                    )
                else:
                    services.plan_update(
                        acting_user=request.user,
                        plan=plan,
                        description=form.cleaned_data["description"],
                        allocations=allocations,
                        storage=storage,
                    )
            except ValidationError as exc:
                forms.apply_service_errors(form, exc)
            else:
                messages.success(request, f"Plan {plan.name} saved.")
                return redirect("console:plans")
    return render(request, "tenants/plan_edit.html", {"nav": "plans", "form": form, "plan": plan})
