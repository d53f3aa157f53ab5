"""The Pools page (clusters and their pools; other apps add sections)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render

from tenants import console, pool_figures, selectors
from tenants.permissions import is_platform_admin
from tenants.views._page import HtmxHttpRequest
from tenants.views.cluster_pages import cluster_cards


@login_required
def pools(request: HtmxHttpRequest) -> HttpResponse:
    return pools_page(request)


def pools_page(request: HtmxHttpRequest, given: dict[str, dict[str, Any]] | None = None) -> HttpResponse:
    """The Pools page: capacities and what level-1 tenants hold of them (`pool_figures`, as the
    usage overview says them), then the sections other apps add; for platform admins, each
    cluster with its pools, their forms' links and what other apps add to a cluster (provisioning:
    its connection). `given`: by a section's template, what the section's own view hands back (a
    refused form, as typed, with its error; a connection test's answer): a `POOLS` section's whole
    context, a `POOLS_CLUSTER` section's keyword arguments."""
    given = given or {}
    pools = list(selectors.pool_list(user=request.user).order_by("cluster__name", "name"))
    rows = [
        {"pool": pool, "figures": pool_figures.pool_figures(pool_figures.pool_holding(pool))}
        for pool in pools
    ]
    sections = [
        (section.template, given[section.template] if section.template in given else section.context(request))
        for section in console.sections(console.POOLS)
    ]
    manages = is_platform_admin(request.user)  # only they see the clusters' forms and connections
    clusters = cluster_cards(request, pools, given) if manages else []
    return render(
        request,
        "tenants/pools.html",
        {"nav": "pools", "rows": rows, "sections": sections, "manages": manages, "clusters": clusters},
    )
