"""Clusters and their resource pools (platform admins): created, changed and deleted from the Pools
page, in real units, through the same services as the API. The forms are checked as the user types
(`service_trial` on `validate=1`); a deletion is confirmed in a dialog that says what depends on it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms import Form
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from tenants import console, forms, selectors, services
from tenants.models import Cluster, ResourcePool
from tenants.permissions import is_platform_admin
from tenants.views._page import HtmxHttpRequest
from tenants.views._trials import _checked_form_saved, _validation_response, service_trial


def platform_admins_only(request: HtmxHttpRequest) -> None:
    """Clusters, pools and connections are the platform's: anyone else gets a 403 (their names are
    no secret, every signed-in user sees them on the Pools page)."""
    if not is_platform_admin(request.user):
        raise PermissionDenied("Only platform admins manage clusters, pools and connections.")


def cluster_on_pools_page(cluster_id: int) -> str:
    """The Pools page, scrolled to the cluster's card."""
    return f"{reverse('console:pools')}#cluster-{cluster_id}"


def answered(
    request: HtmxHttpRequest,
    form: Form,
    saved: object | None,
    url: str,
    template: str,
    context: dict[str, Any],
) -> HttpResponse:
    """What a form checked as the user types answers: where to go once saved; the errors, swapped
    into the form, for a check or a refused htmx submit; else (no JavaScript) the page again."""
    if saved is not None:
        return _checked_form_saved(request, url)
    if request.method == "POST" and (request.POST.get("validate") or request.htmx):
        return _validation_response(request, form)
    return render(request, template, {"nav": "pools", "form": form, **context})


@login_required
def cluster_create(request: HtmxHttpRequest) -> HttpResponse:
    platform_admins_only(request)
    form = forms.ClusterForm(request.POST or None)
    cluster = None
    if request.method == "POST":
        form.is_valid()
        data = form.cleaned_data
        cluster = service_trial(
            request,
            form,
            lambda: services.cluster_create(
                acting_user=request.user,
                name=data.get("name", ""),
                kind=data.get("kind", ""),
                description=data.get("description", ""),
            ),
        )
        if cluster is not None:
            messages.success(
                request,
                f"Cluster {cluster.name} created with its default pool: set the pool's capacity, add pools "
                f"and connect the cluster.",
            )
    url = cluster_on_pools_page(cluster.pk) if cluster else ""
    return answered(request, form, cluster, url, "tenants/cluster_form.html", {"cluster": None})


@login_required
def cluster_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    platform_admins_only(request)
    cluster = get_object_or_404(selectors.cluster_list(user=request.user), pk=pk)
    form = forms.ClusterForm(request.POST or None, cluster=cluster)
    saved = None
    if request.method == "POST":
        form.is_valid()
        description = form.cleaned_data.get("description", "")
        saved = service_trial(
            request,
            form,
            lambda: services.cluster_update(
                acting_user=request.user, cluster=cluster, description=description
            ),
        )
        if saved is not None:
            messages.success(request, f"Cluster {cluster.name} saved.")
    return answered(
        request,
        form,
        saved,
        cluster_on_pools_page(cluster.pk),
        "tenants/cluster_form.html",
        {"cluster": cluster},
    )


def _pool_trial(request: HtmxHttpRequest, form: forms.PoolForm) -> ResourcePool | None:
    """Create or change the pool as typed. A refused name hides the service's other checks (it
    checks the fields first, then the rules), so a new pool is checked once more under a stand-in
    name; that run is always rolled back, since the form has an error by then."""
    form.is_valid()
    values = form.values()
    pool = form.pool

    def write(name: str) -> ResourcePool:
        if pool is not None:
            return services.pool_update(acting_user=request.user, pool=pool, **values)
        return services.pool_create(acting_user=request.user, cluster=form.cluster, name=name, **values)

    # The unique (cluster, name) constraint is refused without a field: it is the name's.
    field_for = {"__all__": "name"}
    saved = service_trial(request, form, lambda: write(form.cleaned_data.get("name", "")), field_for)
    if pool is None and "name" in form.errors:
        service_trial(request, form, lambda: write(f"name-check-{uuid.uuid4().hex[:12]}"), field_for)
    return saved


@login_required
def pool_create(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """A new pool of the cluster `pk`."""
    platform_admins_only(request)
    cluster = get_object_or_404(selectors.cluster_list(user=request.user), pk=pk)
    form = forms.PoolForm(request.POST or None, cluster=cluster)
    pool = _pool_trial(request, form) if request.method == "POST" else None
    if pool is not None:
        messages.success(request, f"Pool {pool} created.")
    return answered(
        request, form, pool, cluster_on_pools_page(cluster.pk), "tenants/pool_form.html", {"cluster": cluster}
    )


@login_required
def pool_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    platform_admins_only(request)
    pool = get_object_or_404(selectors.pool_list(user=request.user), pk=pk)
    form = forms.PoolForm(request.POST or None, cluster=pool.cluster, pool=pool)
    saved = _pool_trial(request, form) if request.method == "POST" else None
    if saved is not None:
        messages.success(request, f"Pool {saved} saved.")
    return answered(
        request,
        form,
        saved,
        cluster_on_pools_page(pool.cluster_id),
        "tenants/pool_form.html",
        {"cluster": pool.cluster, "pool": pool},
    )


def deletion_confirmation(request: HtmxHttpRequest, context: dict[str, Any]) -> HttpResponse:
    """Asking before a deletion: the dialog the Pools page opens (htmx), or a page of its own
    (without JavaScript). `context`: `what` is deleted, its `name`, the form's `action`, the
    `body_template` saying what goes with it or keeps it, `refused` when something keeps it."""
    if request.htmx:
        return render(request, "tenants/partials/_delete_dialog.html", {**context, "dialog": True})
    return render(request, "tenants/delete_confirm.html", {"nav": "pools", **context})


def deleted(request: HtmxHttpRequest, delete: Callable[[], None], done: str, cluster_id: int) -> HttpResponse:
    """Run a confirmed deletion; say what happened (or the service's refusal) on the Pools page."""
    try:
        delete()
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(cluster_on_pools_page(cluster_id))
    messages.success(request, done)
    return redirect("console:pools")


@login_required
def cluster_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    platform_admins_only(request)
    cluster = get_object_or_404(selectors.cluster_list(user=request.user), pk=pk)
    if request.method == "POST":
        return deleted(
            request,
            lambda: services.cluster_delete(acting_user=request.user, cluster=cluster),
            f"Cluster {cluster.name} deleted with its pools.",
            cluster.pk,
        )
    impact = services.cluster_deletion_impact(cluster)
    parts = [
        (section.template, section.context(request, cluster))
        for section in console.sections(console.CLUSTER_DELETE)
    ]
    return deletion_confirmation(
        request,
        {
            "what": f"cluster {cluster.name}",
            "name": cluster.name,
            "action": reverse("console:cluster_delete", args=[cluster.pk]),
            "body_template": "tenants/partials/_cluster_delete.html",
            "refused": impact.refused,
            "impact": impact,
            "cluster": cluster,
            "parts": parts,
        },
    )


@login_required
def pool_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    platform_admins_only(request)
    pool = get_object_or_404(selectors.pool_list(user=request.user), pk=pk)
    if request.method == "POST":
        return deleted(
            request,
            lambda: services.pool_delete(acting_user=request.user, pool=pool),
            f"Pool {pool} deleted.",
            pool.cluster_id,
        )
    impact = services.pool_deletion_impact(pool)
    return deletion_confirmation(
        request,
        {
            "what": f"pool {pool}",
            "name": pool.name,
            "action": reverse("console:pool_delete", args=[pool.pk]),
            "body_template": "tenants/partials/_pool_delete.html",
            "refused": impact.refused,
            "impact": impact,
            "pool": pool,
            "cluster": pool.cluster,
        },
    )


def cluster_cards(
    request: HtmxHttpRequest, pools: list[ResourcePool], given: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """The Pools page's cluster list for platform admins: each cluster with its pools (from the
    page's own pool list) and what other apps add to it (provisioning: its connection), read for
    all clusters at once. `given`: per section template, what its refused form hands back."""
    clusters: list[Cluster] = list(selectors.cluster_list(user=request.user).order_by("name"))
    pools_of: dict[int, list[ResourcePool]] = {}
    for pool in pools:
        pools_of.setdefault(pool.cluster_id, []).append(pool)
    parts = [
        (section.template, section.context(request, clusters, **given.get(section.template, {})))
        for section in console.sections(console.POOLS_CLUSTER)
    ]
    return [
        {
            "cluster": cluster,
            "pools": pools_of.get(cluster.pk, []),
            "parts": [(template, by_cluster.get(cluster.pk, {})) for template, by_cluster in parts],
        }
        for cluster in clusters
    ]
