"""The tenant page's Services tab: the Hive databases a tenant uses, and the form to link one."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from tenants import selectors, services
from tenants.models import Cluster, Tenant, TenantService


class TenantServiceForm(forms.Form):
    """Parses the form only; the rules (names, ownership, who may) are the service's."""

    cluster = forms.IntegerField(min_value=0)
    kind = forms.ChoiceField(choices=TenantService.Kind.choices, initial=TenantService.Kind.HIVE_DATABASE)
    name = forms.CharField(max_length=200, strip=False)


def services_tab_context(request: HttpRequest, tenant: Tenant) -> dict[str, Any]:
    user = request.user
    return {
        "tenant_services": [
            (service, services.service_path(service.kind, service.name))
            for service in selectors.tenant_service_list(user=user).filter(tenant=tenant)
        ],
        "service_clusters": selectors.cluster_list(user=user).filter(kind=Cluster.Kind.YARN).order_by("name"),
        "service_kinds": TenantService.Kind.choices,
        "warehouse_root": services.hive_warehouse_root(),
        # What was typed before a refusal comes back in the query string: nothing is lost.
        "service_typed": {key: request.GET.get(f"service_{key}", "") for key in ("cluster", "kind", "name")},
    }


def _tab_url(tenant_id: int, typed: dict[str, str] | None = None) -> str:
    query = {"tab": "services", **{f"service_{key}": value for key, value in (typed or {}).items()}}
    return f"{reverse('console:tenant', args=[tenant_id])}?{urlencode(query)}"


@login_required
@require_POST
def tenant_service_add(request: HttpRequest, pk: int) -> HttpResponse:
    tenant = selectors.tenant_get(user=request.user, pk=pk)
    form = TenantServiceForm(request.POST)
    typed = {key: str(request.POST.get(key, ""))[:200] for key in ("cluster", "kind", "name")}
    if not form.is_valid():
        messages.error(request, "Choose a Hadoop cluster and give the database a name.")
        return redirect(_tab_url(tenant.pk, typed))
    cluster = selectors.cluster_list(user=request.user).filter(pk=form.cleaned_data["cluster"]).first()
    if cluster is None:
        messages.error(request, "Choose a Hadoop cluster.")
        return redirect(_tab_url(tenant.pk, typed))
    try:
        service = services.tenant_service_create(
            acting_user=request.user,
            tenant=tenant,
            cluster=cluster,
            kind=form.cleaned_data["kind"],
            name=form.cleaned_data["name"],
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(_tab_url(tenant.pk, typed))
    messages.success(
        request,
        f"{service.get_kind_display()} {service.name} is {tenant.name_path}'s on {cluster.name}: "
        f"{services.service_path(service.kind, service.name)} is pushed with its ACLs.",
    )
    return redirect(_tab_url(tenant.pk))


@login_required
@require_POST
def tenant_service_remove(request: HttpRequest, pk: int) -> HttpResponse:
    service = get_object_or_404(selectors.tenant_service_list(user=request.user), pk=pk)
    services.tenant_service_delete(acting_user=request.user, service=service)
    messages.success(
        request,
        f"{service.get_kind_display()} {service.name} is no longer linked to {service.tenant.name_path}; "
        "its directory and data stay on HDFS.",
    )
    return redirect(_tab_url(service.tenant_id))
