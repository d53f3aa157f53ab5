"""Provisioning's pages and parts of the console's pages (session login).

tenants imports no other app, so the console shows provisioning's parts because provisioning
registers them (`tenants.console`, from `ProvisioningConfig.ready()`): the tenant page's Clusters
tab (`clusters_tab`), each cluster's connection on the Pools page (`cluster_connections`) and in
its deletion's confirmation (`connection_going`), and the kubeconfig links on My access
(`kubeconfig_links`). The views here serve what those parts link to: Push now, the kubeconfig
and its help page (`kubeconfig_help`), and for platform admins a cluster's connection form, its
removal, Test connection, the quota engine and Hadoop's export files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from provisioning import kubeconfigs, selectors, services
from provisioning.api.views import hadoop_file_response, kubeconfig_response
from provisioning.backends.export import HADOOP_FILES
from provisioning.desired.yarn import RuleViolation, queue_path
from provisioning.forms import HadoopConnectionForm, KubernetesConnectionForm, QuotaEngineForm
from provisioning.models import HadoopConnection, KubernetesConnection
from tenants import selectors as tenant_selectors
from tenants import views as tenant_views
from tenants.addresses import client_address
from tenants.console import CLUSTER_DELETE, MY_ACCESS_TENANT, POOLS_CLUSTER, PageSection, TenantTab
from tenants.forms import apply_service_errors
from tenants.models import Cluster, Tenant
from tenants.permissions import Action, can
from tenants.roles import Role, at_least
from tenants.views._page import HtmxHttpRequest

# ---------------------------------------------------------------------------------------------
# Parts of the console's pages


def _mark_live(clusters: list[Cluster]) -> None:
    """`live`: Canopy reaches the cluster's API, so it can mint a kubeconfig; the others only export."""
    for cluster in clusters:
        # A flag for the templates that the model does not declare.
        setattr(cluster, "live", kubeconfigs.is_live(cluster))  # noqa: B010


def clusters_tab(request: HtmxHttpRequest, tenant: Tenant) -> dict[str, Any]:
    """How the tenant stands on each cluster, in its namespace (named as on every page); the
    preview (which asks the cluster) only on request."""
    user = request.user
    clusters = selectors.kubernetes_clusters_by_tenant([tenant.pk], user=user).get(tenant.pk, [])
    _mark_live(clusters)
    context: dict[str, Any] = {
        "statuses": selectors.status_list(user=user).filter(sync__tenant_id=tenant.pk),
        "kubernetes_clusters": clusters,
        "namespace": selectors.tenant_namespaces([tenant], user=user)[tenant.pk] if clusters else None,
        "queue": queue_path(tenant.name_path),
        "can_use": can(user, Action.USE, tenant),
    }
    if request.GET.get("preview") and can(user, Action.ADMINISTER, tenant):
        context["previews"] = services.tenant_preview(acting_user=user, tenant=tenant)
    return context


def kubeconfig_links(
    request: HtmxHttpRequest, roles: list[tenant_selectors.EffectiveRole]
) -> dict[int, dict]:
    """My access: per tenant, the Kubernetes clusters it has a namespace on, for a kubeconfig each
    (one query for every tenant). Viewers get none: their role is read-only on the console."""
    users = [role for role in roles if at_least(role.role, Role.MEMBER)]
    clusters = selectors.kubernetes_clusters_by_tenant([role.tenant.pk for role in users], user=request.user)
    for tenant_clusters in clusters.values():
        _mark_live(tenant_clusters)
    on_clusters = [role.tenant for role in users if clusters.get(role.tenant.pk)]
    namespaces = selectors.tenant_namespaces(on_clusters, user=request.user) if on_clusters else {}
    return {
        role.tenant.pk: {
            "kubernetes_clusters": clusters.get(role.tenant.pk, []),
            "namespace": namespaces.get(role.tenant.pk),
        }
        for role in users
    }


def cluster_connections(
    request: HtmxHttpRequest,
    clusters: list[Cluster],
    engine_forms: dict[int, QuotaEngineForm] | None = None,
    checks: dict[int, services.ConnectionCheck] | None = None,
) -> dict[int, dict[str, Any]]:
    """Each cluster's connection on the Pools page (platform admins; the page shows it to no one
    else): how Canopy reaches it, its quota engine (a refused change comes back in `engine_forms`,
    as typed, with its error), the answer of a connection test (`checks`), Hadoop's files. Two
    queries for every cluster together."""
    engine_forms, checks = engine_forms or {}, checks or {}
    connections: dict[int, Any] = {c.cluster_id: c for c in selectors.connection_list(user=request.user)}
    connections |= {c.cluster_id: c for c in selectors.hadoop_connection_list(user=request.user)}
    parts = {}
    for cluster in clusters:
        connection = connections.get(cluster.pk)
        engine_form = engine_forms.get(cluster.pk)
        if engine_form is None and cluster.kind == Cluster.Kind.KUBERNETES and connection is not None:
            engine_form = QuotaEngineForm(
                prefix=f"engine-{cluster.pk}", initial={"quota_engine": connection.quota_engine}
            )
        parts[cluster.pk] = {
            "connection": connection,
            "files": HADOOP_FILES if cluster.kind == Cluster.Kind.YARN else (),
            "engine_form": engine_form,
            "check": checks.get(cluster.pk),
            "without_connection": _without_connection(cluster),
        }
    return parts


def _without_connection(cluster: Cluster) -> str:
    """What happens to a cluster's tenants while it has no connection."""
    if settings.CANOPY_PROVISIONING_DEFAULT_BACKEND == "export":
        return f"its tenants' changes are written as files under {Path(settings.CANOPY_EXPORT_DIR) / cluster.name}"
    return "nothing is pushed to it"


def connection_going(request: HtmxHttpRequest, cluster: Cluster) -> dict[str, Any]:
    """In the confirmation of a cluster's deletion: its connection goes with it."""
    return {"connection": selectors.connection_of(user=request.user, cluster=cluster)}


CLUSTERS_TAB = TenantTab(
    key="clusters",
    label="Clusters",
    template="provisioning/partials/_tab_clusters.html",
    context=clusters_tab,
    before="monitoring",
)
CLUSTER_CONNECTIONS = PageSection(
    page=POOLS_CLUSTER, template="provisioning/partials/_cluster_connection.html", context=cluster_connections
)
CONNECTION_GOING = PageSection(
    page=CLUSTER_DELETE, template="provisioning/partials/_connection_going.html", context=connection_going
)
KUBECONFIG_LINKS = PageSection(
    page=MY_ACCESS_TENANT, template="provisioning/partials/_kubeconfig_links.html", context=kubeconfig_links
)


# ---------------------------------------------------------------------------------------------
# Views


@login_required
def kubeconfig_download(request: HtmxHttpRequest, pk: int, cluster_id: int) -> HttpResponse:
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
def kubeconfig_help(request: HtmxHttpRequest, pk: int, cluster_id: int) -> HttpResponse:
    """`/tenants/<id>/kubeconfig/<cluster_id>/help/`: what the person's kubeconfig for the tenant on
    the cluster looks like and how to use it; on a cluster Canopy only exports for, an example,
    marked as one (`?download=example` gives it as a file). A tenant the user cannot see, or a
    cluster the tenant has no namespace on, is a 404; a viewer gets a 403, as for the download."""
    tenant = tenant_selectors.tenant_get(user=request.user, pk=pk)
    clusters = selectors.kubernetes_clusters_by_tenant([tenant.pk], user=request.user).get(tenant.pk, [])
    cluster = next((cluster for cluster in clusters if cluster.pk == cluster_id), None)
    if cluster is None:
        raise Http404("No such cluster for this tenant.")
    if not can(request.user, Action.USE, tenant):
        raise PermissionDenied("A viewer's role is read-only: it comes with no kubeconfig.")
    guide = kubeconfigs.kubeconfig_guide(
        user=request.user,
        tenant=tenant,
        cluster=cluster,
        namespace=selectors.tenant_namespaces([tenant], user=request.user)[tenant.pk],
        status=selectors.status_list(user=request.user)
        .filter(sync__tenant_id=tenant.pk, cluster=cluster)
        .first(),
    )
    if request.GET.get("download") == "example" and not guide.live:
        response = HttpResponse(guide.example_file(), content_type="application/yaml; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{guide.filename}.example"'
        return response
    return render(request, "provisioning/kubeconfig_help.html", {"nav": "my_access", "guide": guide})


@login_required
@require_POST
def tenant_push(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """ "Push now": ask for the tenant to be pushed to its clusters again (after a failure)."""
    tenant = tenant_selectors.tenant_get(user=request.user, pk=pk)
    services.tenant_push_request(acting_user=request.user, tenant=tenant)
    messages.success(request, f"{tenant.name_path} will be pushed to its clusters again.")
    return redirect(f"{reverse('console:tenant', args=[tenant.pk])}?tab=clusters")


@login_required
@require_POST
def cluster_quota_engine(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """A platform admin switches a connected Kubernetes cluster's quota engine from the Pools page."""
    tenant_views.platform_admins_only(request)
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
            return redirect(tenant_views.cluster_on_pools_page(cluster.pk))
    given = {CLUSTER_CONNECTIONS.template: {"engine_forms": {cluster.pk: form}}}
    return tenant_views.pools_page(request, given=given)


@login_required
@require_POST
def cluster_test(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """'Test connection' for a platform admin: the same kind of answer for every cluster (connected
    with its version, export only, not connected, unreachable, certificate not trusted, credentials
    refused, the cluster's own error), drawn in place (htmx) or on the Pools page."""
    tenant_views.platform_admins_only(request)
    cluster = get_object_or_404(tenant_selectors.cluster_list(user=request.user), pk=pk)
    check = services.connection_test(acting_user=request.user, cluster=cluster)
    if request.htmx:
        return render(
            request, "provisioning/partials/_connection_check.html", {"cluster": cluster, "check": check}
        )
    given = {CLUSTER_CONNECTIONS.template: {"checks": {cluster.pk: check}}}
    return tenant_views.pools_page(request, given=given)


@login_required
def cluster_connection(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Connect a cluster, or change how Canopy reaches it (platform admins): a Kubernetes cluster by
    an uploaded kubeconfig, its API server URL with a token and CA, a client certificate, in-cluster
    or export only; a Hadoop cluster by its ResourceManager and WebHDFS URLs, as a user or with
    Kerberos. Checked as the user types; saving pushes every tenant on the cluster again."""
    tenant_views.platform_admins_only(request)
    cluster = get_object_or_404(tenant_selectors.cluster_list(user=request.user), pk=pk)
    connection = selectors.connection_of(user=request.user, cluster=cluster)
    hadoop = cluster.kind == Cluster.Kind.YARN
    data, files = request.POST or None, request.FILES or None
    # `connection_of` gives the cluster's own kind of connection.
    form: HadoopConnectionForm | KubernetesConnectionForm
    if hadoop:
        form = HadoopConnectionForm(data, files, connection=cast(HadoopConnection | None, connection))
    else:
        form = KubernetesConnectionForm(data, files, connection=cast(KubernetesConnection | None, connection))
    saved = None
    if request.method == "POST":
        form.is_valid()

        def write() -> HadoopConnection | KubernetesConnection:
            if isinstance(form, HadoopConnectionForm):
                return services.hadoop_connection_set(
                    acting_user=request.user, cluster=cluster, spec=form.spec()
                )
            return services.connection_set(acting_user=request.user, cluster=cluster, spec=form.spec())

        saved = tenant_views.service_trial(request, form, write)
        if saved is not None:
            messages.success(
                request,
                f"{cluster.name}: connection saved ({saved.get_mode_display()}); its tenants are pushed again. "
                f"Test it with Test connection.",
            )
    return tenant_views.answered(
        request,
        form,
        saved,
        tenant_views.cluster_on_pools_page(cluster.pk),
        "provisioning/connection_form.html",
        {"cluster": cluster, "connection": connection, "hadoop": hadoop},
    )


@login_required
def cluster_connection_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Forget how to reach a cluster (platform admins), after a confirmation saying what that does."""
    tenant_views.platform_admins_only(request)
    cluster = get_object_or_404(tenant_selectors.cluster_list(user=request.user), pk=pk)
    if request.method == "POST":
        return tenant_views.deleted(
            request,
            lambda: services.connection_delete(acting_user=request.user, cluster=cluster),
            f"{cluster.name}: connection removed; {_without_connection(cluster)}.",
            cluster.pk,
        )
    connection = selectors.connection_of(user=request.user, cluster=cluster)
    if connection is None:
        raise Http404("No connection to remove.")
    return tenant_views.deletion_confirmation(
        request,
        {
            "what": f"the connection of {cluster.name}",
            "name": "connection",
            "action": reverse("provisioning:cluster_connection_delete", args=[cluster.pk]),
            "body_template": "provisioning/partials/_connection_delete.html",
            "refused": False,
            "cluster": cluster,
            "connection": connection,
            "without_connection": _without_connection(cluster),
        },
    )


@login_required
def hadoop_file(request: HtmxHttpRequest, pk: int, name: str) -> HttpResponse:
    """capacity-scheduler.xml or hdfs-setup.sh of a Hadoop cluster, downloaded from the Pools page
    (platform admins), for a ResourceManager without the mutation API."""
    tenant_views.platform_admins_only(request)
    cluster = get_object_or_404(
        tenant_selectors.cluster_list(user=request.user).filter(kind=Cluster.Kind.YARN), pk=pk
    )
    if name not in HADOOP_FILES:
        raise Http404("No such file.")
    try:
        files = services.hadoop_files_render(acting_user=request.user, cluster=cluster)
    except RuleViolation as error:
        messages.error(request, f"{cluster.name}: {' '.join(error.problems)}")
        return redirect(tenant_views.cluster_on_pools_page(cluster.pk))
    return hadoop_file_response(cluster, name, files[name])
