"""The Pools page (clusters and their pools; other apps add sections)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tenants import console, selectors
from tenants.amounts import (
    KUBERNETES_RESOURCES,
    POOL_CAPACITY_FIELDS,
    percent_human,
)
from tenants.rules import pool_left


@login_required
def pools(request: HttpRequest) -> HttpResponse:
    return pools_page(request)


def pools_page(request: HttpRequest, given: dict[str, dict[str, Any]] | None = None) -> HttpResponse:
    """The Pools page: capacities, then the sections other apps add (provisioning: each cluster's
    connection). `given`: a section's context by its template, as the section's own view built it
    (a refused form, as typed, with its error)."""
    given = given or {}
    rows = []
    for pool in selectors.pool_list(user=request.user).order_by("cluster__name", "name"):
        free = pool_left(pool)
        rows.append(
            {
                "pool": pool,
                "figures": [
                    (
                        resource.label,
                        resource.human(getattr(pool, POOL_CAPACITY_FIELDS[resource.name])),
                        resource.human(getattr(pool, f"allocated_{resource.name}") or 0),
                        resource.exactly(free[resource.name]),
                    )
                    for resource in KUBERNETES_RESOURCES
                    if not (pool.is_yarn and resource.name == "gpu")
                ],
                "capacity_allocated": percent_human(pool.allocated_capacity or 0) if pool.is_yarn else None,
            }
        )
    sections = [
        (section.template, given[section.template] if section.template in given else section.context(request))
        for section in console.sections(console.POOLS)
    ]
    return render(request, "tenants/pools.html", {"nav": "pools", "rows": rows, "sections": sections})
