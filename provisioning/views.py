"""Provisioning's pages and parts of the console's pages (session login).

tenants imports no other app, so the console shows provisioning's parts because provisioning
registers them (`tenants.console`, from `ProvisioningConfig.ready()`): the tenant page's Clusters
tab (`clusters_tab`), the cluster connections on the Pools page (`cluster_connections`) and the
kubeconfig links on My access (`kubeconfig_links`). The views here serve what those parts link to.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from provisioning import selectors, services
from provisioning.api.views import kubeconfig_response
from provisioning.backends.export import HADOOP_FILES
from provisioning.forms import QuotaEngineForm
from tenants import selectors as tenant_selectors
from tenants import views as tenant_views
from tenants.addresses import client_address
from tenants.console import MY_ACCESS_TENANT, POOLS, PageSection, TenantTab
from tenants.forms import apply_service_errors
from tenants.models import Cluster, Tenant
from tenants.permissions import Action, can, is_platform_admin
from tenants.roles import Role, at_least

# ---------------------------------------------------------------------------------------------
# Parts of the console's pages


def _mark_live(clusters: list[Cluster]) -> None:
    """`live`: Canopy reaches the cluster's API, so it can mint a kubeconfig; the others only export."""
    for cluster in clusters:
        connection = getattr(cluster, "kubernetes_connection", None)
        # A flag for the templates that the model does not declare.
        setattr(cluster, "live", connection is not None and connection.mode != connection.Mode.EXPORT)  # noqa: B010


def clusters_tab(request: HttpRequest, tenant: Tenant) -> dict[str, Any]:
    """How the tenant stands on each cluster; the preview (which asks the cluster) only on request."""
    user = request.user
    clusters = selectors.kubernetes_clusters_by_tenant([tenant.pk], user=user).get(tenant.pk, [])
    _mark_live(clusters)
    context: dict[str, Any] = {
        "statuses": selectors.status_list(user=user).filter(sync__tenant_id=tenant.pk),
        "kubernetes_clusters": clusters,
        "can_use": can(user, Action.USE, tenant),
    }
    if request.GET.get("preview") and can(user, Action.ADMINISTER, tenant):
        context["previews"] = services.tenant_preview(acting_user=user, tenant=tenant)
    return context


def kubeconfig_links(request: HttpRequest, roles: list[tenant_selectors.EffectiveRole]) -> dict[int, dict]:
    """My access: per tenant, the Kubernetes clusters it has a namespace on, for a kubeconfig each
    (one query for every tenant). Viewers get none: their role is read-only on the console."""
    clusters = selectors.kubernetes_clusters_by_tenant([role.tenant.pk for role in roles], user=request.user)
    for tenant_clusters in clusters.values():
        _mark_live(tenant_clusters)
    return {
        role.tenant.pk: {"kubernetes_clusters": clusters.get(role.tenant.pk, [])}
        for role in roles
        if at_least(role.role, Role.MEMBER)
    }


def cluster_connections(
    request: HttpRequest, engine_forms: dict[int, QuotaEngineForm] | None = None
) -> dict[str, Any]:
    """The Pools page's cluster connections, for platform admins: each cluster's connection with its
    quota engine (a refused change comes back in `engine_forms`, as typed, with its error)."""
    engine_forms = engine_forms or {}
    connections: dict[int, Any] = {}
    if is_platform_admin(request.user):
        connections = {c.cluster_id: c for c in selectors.connection_list(user=request.user)}
        connections |= {c.cluster_id: c for c in selectors.hadoop_connection_list(user=request.user)}
    clusters = []
    for cluster in tenant_selectors.cluster_list(user=request.user):
        connection = connections.get(cluster.pk)
        engine_form = engine_forms.get(cluster.pk)
        if engine_form is None and cluster.kind == Cluster.Kind.KUBERNETES and connection is not None:
            engine_form = QuotaEngineForm(
                prefix=f"engine-{cluster.pk}", initial={"quota_engine": connection.quota_engine}
            )
        clusters.append(
            {
                "cluster": cluster,
                "connection": connection,
                "files": HADOOP_FILES if cluster.kind == Cluster.Kind.YARN else (),
                "engine_form": engine_form,
            }
        )
    return {"clusters": clusters}


CLUSTERS_TAB = TenantTab(
    key="clusters",
    label="Clusters",
    template="provisioning/partials/_tab_clusters.html",
    context=clusters_tab,
    before="monitoring",
)
CLUSTER_CONNECTIONS = PageSection(
    page=POOLS, template="provisioning/partials/_cluster_connections.html", context=cluster_connections
)
KUBECONFIG_LINKS = PageSection(
    page=MY_ACCESS_TENANT, template="provisioning/partials/_kubeconfig_links.html", context=kubeconfig_links
)


# ---------------------------------------------------------------------------------------------
# Views


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


@login_required
@require_POST
def tenant_push(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Push now": ask for the tenant to be pushed to its clusters again (after a failure)."""
    tenant = tenant_selectors.tenant_get(user=request.user, pk=pk)
    services.tenant_push_request(acting_user=request.user, tenant=tenant)
    messages.success(request, f"{tenant.name_path} will be pushed to its clusters again.")
    return redirect(f"{reverse('console:tenant', args=[tenant.pk])}?tab=clusters")


@login_required
@require_POST
def cluster_quota_engine(request: HttpRequest, pk: int) -> HttpResponse:
    """A platform admin switches a connected Kubernetes cluster's quota engine from the Pools page."""
    if not is_platform_admin(request.user):
        raise PermissionDenied("Only platform admins change how a cluster enforces allocations.")
    cluster = get_object_or_404(tenant_selectors.cluster_list(user=request.user), pk=pk)
    form = QuotaEngineForm(request.POST, prefix=f"engine-{cluster.pk}")
    if form.is_valid():
        try:
            connection = services.connection_quota_engine_set(
                acting_user=request.user, cluster=cluster, quota_engine=form.cleaned_data["quota_engine"]
            )
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            messages.success(
                request,
                f"{cluster.name} enforces allocations with {connection.get_quota_engine_display()}; "
                f"its tenants are pushed again.",
            )
            return redirect("console:pools")
    section = cluster_connections(request, {cluster.pk: form})
    return tenant_views.pools_page(request, given={CLUSTER_CONNECTIONS.template: section})


@login_required
@require_POST
def cluster_test(request: HttpRequest, pk: int) -> HttpResponse:
    """'Test connection' for a platform admin: the server's version or the exact error."""
    cluster = get_object_or_404(tenant_selectors.cluster_list(user=request.user), pk=pk)
    check = services.connection_test(acting_user=request.user, cluster=cluster)
    (messages.success if check.ok else messages.error)(request, f"{cluster.name}: {check.message}")
    return redirect("console:pools")
