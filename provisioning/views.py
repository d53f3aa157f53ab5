"""Pages the console links to: the kubeconfig download as a plain Django view (session login)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404

from provisioning import services
from provisioning.api.views import kubeconfig_response
from tenants import selectors as tenant_selectors
from tenants.addresses import client_address


@login_required
def kubeconfig_download(request: HttpRequest, pk: int, cluster_id: int) -> HttpResponse:
    """`/tenants/<id>/kubeconfig/<cluster_id>/`: the same file as the API's, for a link on the
    tenant page. A tenant the user cannot see is a 404; a viewer gets a 403."""
    tenant = tenant_selectors.tenant_get(user=request.user, pk=pk)
    cluster = get_object_or_404(tenant_selectors.cluster_list(user=request.user), pk=cluster_id)
    try:
        issued = services.kubeconfig_issue(
            acting_user=request.user, tenant=tenant, cluster=cluster, address=client_address(request)
        )
    except services.NotProvisioned as error:
        return HttpResponse(str(error), status=409, content_type="text/plain; charset=utf-8")
    return kubeconfig_response(issued)
