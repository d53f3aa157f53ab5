"""The Pools page (clusters and their pools; other apps add sections)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tenants import console, pool_figures, selectors


@login_required
def pools(request: HttpRequest) -> HttpResponse:
    return pools_page(request)


def pools_page(request: HttpRequest, given: dict[str, dict[str, Any]] | None = None) -> HttpResponse:
    """The Pools page: capacities and what level-1 tenants hold of them (`pool_figures`, as the
    usage overview says them), then the sections other apps add (provisioning: each cluster's
    connection). `given`: a section's context by its template, as the section's own view built it
    (a refused form, as typed, with its error)."""
    given = given or {}
    rows = [
        {"pool": pool, "figures": pool_figures.pool_figures(pool_figures.pool_holding(pool))}
        for pool in selectors.pool_list(user=request.user).order_by("cluster__name", "name")
    ]
    sections = [
        (section.template, given[section.template] if section.template in given else section.context(request))
        for section in console.sections(console.POOLS)
    ]
    return render(request, "tenants/pools.html", {"nav": "pools", "rows": rows, "sections": sections})
