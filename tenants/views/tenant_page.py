"""The tenant tree and a tenant's page (Resources and the other tabs; other apps add theirs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from tenants import console, forms, pool_figures, selectors
from tenants.amounts import (
    KUBERNETES_RESOURCES,
    burst_phrase,
    percent_human,
)
from tenants.models import Membership, Tenant
from tenants.permissions import Action, administers_somewhere, can, is_platform_admin
from tenants.views._page import HtmxHttpRequest, render_page

# The tenant page's own tabs; other apps add theirs (tenants/console.py: provisioning's Clusters).
TABS = [
    ("summary", "Summary"),
    ("resources", "Resources"),
    ("storage", "Storage"),
    ("subtenants", "Sub-tenants"),
    ("members", "Members"),
    ("audit", "Audit"),
]


@login_required
def home(request: HttpRequest) -> HttpResponse:
    administers = is_platform_admin(request.user) or selectors.membership_admin_exists(user=request.user)
    return redirect("console:tenants" if administers else "console:my_access")


@dataclass
class Bar:
    """One resource of one pool, as the Resources tab draws it. Percentages are of the allocation.
    `used` is None when no figure was collected recently: the page says so rather than guess."""

    label: str
    allocated: str  # guaranteed
    given: str
    remaining: str  # what is left for sub-tenants (tenants.rules.left)
    used: str | None
    used_percent: float | None
    unused: str | None  # the allocation minus what is used now
    given_percent: float
    unlimited: bool
    unlimited_children: int
    burst: str | None = None  # with a burst: "guaranteed 2, may burst to 4 GPUs"
    # What the tenant borrows now above its guaranteed amount (a Kueue cluster's pool, as the app
    # that measures usage says). None: not measured, or nothing borrowed.
    borrowing: str | None = None


def _whole(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _bars(summary: selectors.PoolSummary, use: console.PoolUse | None) -> list[Bar]:
    """`use`: what the tenant uses of the pool now, as the app that measures usage says (none
    registered or nothing measured recently: None)."""
    bars = []
    for resource in KUBERNETES_RESOURCES:
        figures = summary.resources[resource.name]
        allocated = figures.allocated
        burst = getattr(summary.allocation, resource.burst_field)
        given_percent = 0.0
        if allocated:
            given_percent = min(100.0, 100.0 * float(figures.children) / float(allocated))
        used_value = use.used.get(resource.name) if use is not None else None
        borrowing = None
        borrowed = use.borrowed.get(resource.name) if use is not None else None
        if borrowed:
            borrowing = resource.human(_whole(borrowed) if resource.name == "gpu" else round(borrowed))
        used = left = None
        used_percent = None
        if used_value is not None:
            # Millicores and bytes are whole; a GPU figure may be a fraction (shared GPUs).
            used_value = _whole(used_value) if resource.name == "gpu" else round(used_value)
            used = resource.human(used_value)
            if allocated is not None:
                left = resource.exactly(_whole(max(0, allocated - used_value)))
                used_percent = min(100.0, 100.0 * used_value / float(allocated)) if allocated else 0.0
        bars.append(
            Bar(
                label=resource.label,
                allocated=resource.human(allocated),
                given=resource.human(figures.children),
                remaining=resource.exactly(figures.remaining),
                used=used,
                used_percent=used_percent,
                unused=left,
                given_percent=given_percent,
                unlimited=allocated is None,
                unlimited_children=figures.children_unlimited,
                burst=burst_phrase(resource, allocated, burst) if burst is not None else None,
                borrowing=borrowing,
            )
        )
    return bars


def _yarn_used(use: console.PoolUse | None) -> str | None:
    millicores = use.used.get("cpu") if use is not None else None
    if use is None or millicores is None:
        return None
    vcores = millicores / 1000
    memory = use.used.get("memory")
    text = f"{vcores:g} vCores"
    if memory is not None:
        text += ", " + KUBERNETES_RESOURCES[2].human(round(memory))
    return text


def _resources_context(
    request: HttpRequest,
    tenant: Tenant,
    shares: dict[tuple[int, int], Any] | None = None,
    used: console.PoolUseOf | None = None,
    grants: dict[int, Any] | None = None,
) -> dict[str, Any]:
    """The Resources tab of one tenant. My access passes `shares`, `used` and `grants` read for all
    its tenants at once (and has summarized them); alone, the tab reads them for this tenant."""
    if shares is None:
        selectors.tenant_summaries([tenant], user=request.user)
        shares = selectors.yarn_guaranteed_shares([tenant], user=request.user)
    if used is None:
        used = console.pool_usage(request, [tenant.pk])
    if grants is None:
        grants = selectors.allocation_grants_shown(
            user=request.user, allocations=[summary.allocation for summary in tenant.pool_summaries]
        )
    pools = []
    for summary in tenant.pool_summaries:
        allocation = summary.allocation
        pool = allocation.pool
        use = used(tenant.pk, pool)
        entry: dict[str, Any] = {"pool": pool, "allocation": allocation, "grant": grants.get(allocation.pk)}
        if pool.is_yarn:
            share = shares.get((tenant.pk, pool.pk))
            children = summary.resources["capacity"]
            entry.update(
                yarn=True,
                capacity=percent_human(allocation.capacity_percent),
                max_capacity=percent_human(allocation.max_capacity_percent),
                children_capacity=percent_human(children.children),
                children_percent=float(children.children),
                remaining_capacity=percent_human(children.remaining),
                guaranteed=pool_figures.yarn_share_human(
                    share, pool.cpu_capacity_millicores, pool.memory_capacity_bytes
                )
                if share is not None
                else None,
                used=_yarn_used(use),
            )
        else:
            entry.update(yarn=False, bars=_bars(summary, use))
        pools.append(entry)
    return {"pools": pools}


def _tab_context(request: HttpRequest, tenant: Tenant, tab: str) -> dict[str, Any]:
    user = request.user
    if tab == "summary":
        admins = selectors.membership_list(user=user).filter(tenant=tenant, role=Membership.Role.ADMIN)
        ancestors = selectors.tenant_ancestors(user=user, tenant=tenant)
        inherited = selectors.membership_list(user=user).filter(
            tenant__in=ancestors, role=Membership.Role.ADMIN
        )
        return {"admins": admins, "inherited_admins": inherited}
    if tab == "resources":
        return {
            **_resources_context(request, tenant),
            "resource_sections": [
                (section.template, section.context(request, tenant))
                for section in console.sections(console.RESOURCES_TAB)
            ],
        }
    if tab == "storage":
        return {
            "directories": selectors.storage_list(user=user).filter(tenant=tenant),
            "volumes": selectors.volume_list(user=user).filter(attachments__tenant=tenant).distinct(),
        }
    if tab == "subtenants":
        page = Paginator(selectors.tenant_children(user=user, parent=tenant).order_by("name"), 50).get_page(
            request.GET.get("page")
        )
        children = list(page.object_list)
        selectors.tenant_summaries(children, user=user)
        return {"children": children, "children_page": page}
    if tab == "members":
        return {
            "members": selectors.membership_list(user=user)
            .filter(tenant=tenant)
            .order_by("group__name", "user__username"),
            "roles": Membership.Role.choices,
            "member_form": forms.MembershipForm(),
        }
    if tab == "audit":
        events = Paginator(selectors.audit_list(user=user).filter(tenant=tenant), 25).get_page(
            request.GET.get("page")
        )
        reader = selectors.audit_reader(user=user)
        return {"events": events, "entries": [reader.entry(event) for event in events]}
    registered = console.tab_get(tab)
    return registered.context(request, tenant) if registered else {}


def tenant_tabs() -> list[tuple[str, str]]:
    """Every tab of the tenant page, (key, label): its own and those other apps registered."""
    return console.tabs_with(TABS)


def _tab_template(tab: str) -> str:
    registered = console.tab_get(tab)
    return registered.template if registered else f"tenants/partials/_tab_{tab}.html"


@login_required
def tenant_resources(request: HtmxHttpRequest, pk: int | None = None) -> HttpResponse:
    """The Tenant Resources page: the tree on the left, the selected tenant's tabs on the right."""
    user = request.user
    if pk is not None:
        tenant = selectors.tenant_get(user=user, pk=pk)
    else:
        tenant = selectors.tenant_tree_roots(user=user).order_by("depth", "name").first()
    return tenant_page(request, tenant, request.GET.get("tab", "summary"))


def tenant_page(
    request: HtmxHttpRequest, tenant: Tenant | None, tab: str, given: dict[str, Any] | None = None
) -> HttpResponse:
    """The tenant page (or its tree or tab fragment) open at `tab`. `given`: what a tab's own view
    built for it (a refused form, as typed, with its errors), in place of the tab's defaults."""
    user = request.user
    query = request.GET.get("q", "").strip()
    # A registered tab may be for some only (usage's Monitoring: members and admins, not viewers).
    tabs = [t for t in tenant_tabs() if console.tab_shown(t[0], user, tenant)]
    if tab not in dict(tabs):
        tab = "summary"
    roots, matches = selectors.tenant_tree(user=user, selected=tenant, query=query)
    context: dict[str, Any] = {
        "nav": "tenants",
        "tenant": tenant,
        "roots": roots,
        "query": query,
        "matches": matches,
        "tabs": tabs,
        "tab": tab,
        "tab_template": _tab_template(tab),
        "tab_scripts": console.tab_scripts(),
        # At the tree's root: platform admins make level-1 tenants, tenant admins sub-tenants of
        # what they administer (the form lists those).
        "new_tenant_label": "New level-1 tenant"
        if is_platform_admin(user)
        else ("New sub-tenant" if administers_somewhere(user) else None),
    }
    if tenant is not None:
        context.update(
            ancestors=list(selectors.tenant_ancestors(user=user, tenant=tenant)),
            can_administer=can(user, Action.ADMINISTER, tenant),
            can_manage=can(user, Action.MANAGE, tenant),
            # What suspending or resuming takes along (their dialogs count them; a tab alone never asks).
            sub_tenants=selectors.tenant_subtree(user=user, tenant=tenant)
            .exclude(pk=tenant.pk)
            .exclude(state=Tenant.State.DELETING),
        )
        context.update(_tab_context(request, tenant, tab))
        context.update(given or {})
    partial = "tree" if request.GET.get("fragment") == "tree" else ("tab" if "tab" in request.GET else None)
    return render_page(request, "tenants/tenant_resources.html", context, partial)


@login_required
def tenant_tree_children(request: HttpRequest, pk: int) -> HttpResponse:
    """The children of one tree node, loaded when it is first opened."""
    tenant = selectors.tenant_get(user=request.user, pk=pk)
    children = selectors.tenant_children(user=request.user, parent=tenant).order_by("name")
    nodes = [selectors.TreeNode(tenant=child) for child in children]
    return render(request, "tenants/partials/_tree_nodes.html", {"nodes": nodes})
