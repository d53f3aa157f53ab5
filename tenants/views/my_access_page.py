"""My access: the signed-in person's roles, what they may use, and the parts other apps add."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tenants import console, selectors
from tenants.views.tenant_page import _resources_context


@login_required
def my_access(request: HttpRequest) -> HttpResponse:
    """What the signed-in user has: tenants and roles, allocations with what is used and left,
    volumes, and what other apps add to each tenant (usage: their own jobs). The same number of
    queries for 2 tenants as for 200."""
    user = request.user
    # Direct roles and roles through the user's groups, one entry per tenant with where each comes from.
    memberships = selectors.effective_roles(user=user, person=user)
    tenants = [m.tenant for m in memberships]
    tenant_ids = {t.pk for t in tenants}
    selectors.tenant_summaries(tenants, user=user)
    shares = selectors.yarn_guaranteed_shares(tenants, user=user)
    used = console.pool_usage(request, list(tenant_ids))
    grants = selectors.allocation_grants_shown(
        user=user, allocations=[summary.allocation for t in tenants for summary in t.pool_summaries]
    )
    sections = [
        (section.template, section.context(request, memberships))
        for section in console.sections(console.MY_ACCESS_TENANT)
    ]
    volumes = selectors.volume_list(user=user).filter(attachments__tenant__in=tenants).distinct()
    claims: dict[int, list[Any]] = {}
    for volume in volumes:
        for attachment in volume.visible_attachments:
            if attachment.tenant_id in tenant_ids:
                claims.setdefault(attachment.tenant_id, []).append((volume, attachment))
    rows = [
        {
            "membership": m,
            "tenant": m.tenant,
            "pools": _resources_context(request, m.tenant, shares, used, grants)["pools"],
            "claims": claims.get(m.tenant.pk, []),
            "sections": [(template, by_tenant.get(m.tenant.pk, {})) for template, by_tenant in sections],
        }
        for m in memberships
    ]
    return render(request, "tenants/my_access.html", {"nav": "my_access", "rows": rows})
