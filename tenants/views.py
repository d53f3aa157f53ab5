"""The console's pages. Every read goes through `tenants.selectors` with the signed-in user, every
write through `tenants.services`; a tenant the user cannot see is a 404 here as in the API.

One template serves a page and its HTMX fragments: `render_page` renders the named partial of the
page's own template when the request comes from HTMX (`page.html#partial`), the whole page otherwise.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from tenants import console, forms, selectors, services
from tenants.amounts import (
    KUBERNETES_RESOURCES,
    POOL_CAPACITY_FIELDS,
    Resource,
    burst_phrase,
    maximum_of,
    percent_human,
)
from tenants.models import Cluster, Membership, Tenant
from tenants.permissions import Action, can, is_platform_admin, subject_q
from tenants.rules import may_have

User = get_user_model()

# The tenant page's own tabs; other apps add theirs (tenants/console.py: provisioning's Clusters).
TABS = [
    ("summary", "Summary"),
    ("resources", "Resources"),
    ("storage", "Storage"),
    ("subtenants", "Sub-tenants"),
    ("members", "Members"),
    ("audit", "Audit"),
]


def render_page(
    request: HttpRequest, template: str, context: dict[str, Any], partial: str | None = None
) -> HttpResponse:
    """The page, or only `partial` of it for an HTMX request that asks for a fragment."""
    if partial and request.htmx and not request.htmx.boosted:
        return render(request, f"{template}#{partial}", context)
    return render(request, template, context)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    administers = (
        is_platform_admin(request.user)
        or Membership.objects.filter(subject_q(request.user), role=Membership.Role.ADMIN).exists()
    )
    return redirect("console:tenants" if administers else "console:my_access")


# ---------------------------------------------------------------------------------------------
# Tenant Resources


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
    if use is None or use.used.get("cpu") is None:
        return None
    vcores = use.used["cpu"] / 1000
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
) -> dict[str, Any]:
    """The Resources tab of one tenant. My access passes `shares` and `used` read for all its
    tenants at once (and has summarized them); alone, the tab reads them for this tenant."""
    if shares is None:
        selectors.tenant_summaries([tenant])
        shares = selectors.yarn_guaranteed_shares([tenant])
    if used is None:
        used = console.pool_usage(request, [tenant.pk])
    pools = []
    for summary in tenant.pool_summaries:
        allocation = summary.allocation
        pool = allocation.pool
        use = used(tenant.pk, pool)
        entry: dict[str, Any] = {"pool": pool, "allocation": allocation}
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
                vcores=round(share * pool.cpu_capacity_millicores / 1000, 1) if share is not None else None,
                memory=KUBERNETES_RESOURCES[2].human(int(share * pool.memory_capacity_bytes))
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
        return _resources_context(request, tenant)
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
        selectors.tenant_summaries(children)
        return {"children": children, "children_page": page}
    if tab == "members":
        return {
            "members": selectors.membership_list(user=user)
            .filter(tenant=tenant)
            .order_by("group__name", "user__username"),
            "roles": Membership.Role.choices,
        }
    if tab == "audit":
        events = selectors.audit_list(user=user).filter(tenant=tenant)
        return {"events": Paginator(events, 25).get_page(request.GET.get("page"))}
    registered = console.tab_get(tab)
    return registered.context(request, tenant) if registered else {}


def tenant_tabs() -> list[tuple[str, str]]:
    """Every tab of the tenant page, (key, label): its own and those other apps registered."""
    return console.tabs_with(TABS)


def _tab_template(tab: str) -> str:
    registered = console.tab_get(tab)
    return registered.template if registered else f"tenants/partials/_tab_{tab}.html"


@login_required
def tenant_resources(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """The Tenant Resources page: the tree on the left, the selected tenant's tabs on the right."""
    user = request.user
    if pk is not None:
        tenant = selectors.tenant_get(user=user, pk=pk)
    else:
        tenant = selectors.tenant_tree_roots(user=user).order_by("depth", "name").first()
    query = request.GET.get("q", "").strip()
    tab = request.GET.get("tab", "summary")
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
    }
    if tenant is not None:
        context.update(
            ancestors=list(selectors.tenant_ancestors(user=user, tenant=tenant)),
            can_administer=can(user, Action.ADMINISTER, tenant),
            can_manage=can(user, Action.MANAGE, tenant),
            # What suspending takes along (its dialog counts them; a tab alone never asks).
            sub_tenants=selectors.tenant_subtree(user=user, tenant=tenant)
            .exclude(pk=tenant.pk)
            .exclude(state=Tenant.State.DELETING),
            **_tab_context(request, tenant, tab),
        )
    partial = "tree" if request.GET.get("fragment") == "tree" else ("tab" if "tab" in request.GET else None)
    return render_page(request, "tenants/tenant_resources.html", context, partial)


@login_required
def tenant_tree_children(request: HttpRequest, pk: int) -> HttpResponse:
    """The children of one tree node, loaded when it is first opened."""
    tenant = selectors.tenant_get(user=request.user, pk=pk)
    children = selectors.tenant_children(user=request.user, parent=tenant).order_by("name")
    nodes = [selectors.TreeNode(tenant=child) for child in children]
    return render(request, "tenants/partials/_tree_nodes.html", {"nodes": nodes})


# ---------------------------------------------------------------------------------------------
# My access


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
    selectors.tenant_summaries(tenants)
    shares = selectors.yarn_guaranteed_shares(tenants)
    used = console.pool_usage(request, list(tenant_ids))
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
            "pools": _resources_context(request, m.tenant, shares, used)["pools"],
            "claims": claims.get(m.tenant.pk, []),
            "sections": [(template, by_tenant.get(m.tenant.pk, {})) for template, by_tenant in sections],
        }
        for m in memberships
    ]
    return render(request, "tenants/my_access.html", {"nav": "my_access", "rows": rows})


# ---------------------------------------------------------------------------------------------
# Pools, plans, users, audit


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
        free = selectors.pool_free(pool)
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


@login_required
def plans(request: HttpRequest) -> HttpResponse:
    return render(
        request, "tenants/plans.html", {"nav": "plans", "plans": selectors.plan_list(user=request.user)}
    )


@login_required
def audit(request: HttpRequest) -> HttpResponse:
    events = selectors.audit_list(user=request.user)
    action = request.GET.get("action", "").strip()
    if action:
        events = events.filter(action=action)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return render_page(
        request, "tenants/audit.html", {"nav": "audit", "events": page, "action": action}, "events"
    )


@login_required
def users(request: HttpRequest) -> HttpResponse:
    people = selectors.user_list(user=request.user)
    query = request.GET.get("q", "").strip()
    if query:
        people = people.filter(username__icontains=query)
    memberships = selectors.membership_list(user=request.user)
    page = Paginator(people, 50).get_page(request.GET.get("page"))
    roles: dict[int, list[Membership]] = {}
    people_ids = [person.pk for person in page.object_list]
    # Roles through groups count too: each group membership is listed under the group's people.
    people_of_group: dict[int, list[int]] = {}
    for person_id, group_id in User.groups.through.objects.filter(user_id__in=people_ids).values_list(
        "user_id", "group_id"
    ):
        people_of_group.setdefault(group_id, []).append(person_id)
    for membership in memberships.filter(Q(user_id__in=people_ids) | Q(group_id__in=list(people_of_group))):
        for person_id in [membership.user_id] if membership.user_id else people_of_group[membership.group_id]:
            roles.setdefault(person_id, []).append(membership)
    rows = [{"person": person, "roles": roles.get(person.pk, [])} for person in page.object_list]
    return render(
        request,
        "tenants/users.html",
        {
            "nav": "users",
            "page": page,
            "rows": rows,
            "query": query,
            "is_platform_admin": is_platform_admin(request.user),
            "can_grant": selectors.tenant_list(user=request.user, action=Action.ADMINISTER).exists(),
            "roles": Membership.Role.choices,
        },
    )


# ---------------------------------------------------------------------------------------------
# Writes: each form parses, a service decides. A refusal goes back onto the form's fields.


class _DryRun(Exception):
    """Raised to roll back a trial run of the services."""


def _pool_hints(
    user: Any,
    parent: Tenant | None,
    pools: list[Any],
    tenant: Tenant | None = None,
    current: dict[int, Any] | None = None,
) -> dict[int, dict[str, str]]:
    """What is left beside each field (`tenants.rules.left`, in the refusals' words and units): the
    parent's, or at level 1 the pool's; for `tenant` being edited (`current`: its allocations by
    pool id), also the most it may have (what it holds plus what is left)."""
    current = current or {}
    hints: dict[int, dict[str, str]] = {}

    def left_hint(owner: str, pool_id: int, column: str, left_now: Any, say: Any, of: str = "") -> str:
        """'dev2 has 2 CPU left' (`of`: ' of its queue') and, for the tenant being edited, ' and dev1
        may have at most 4 CPU'."""
        holds = getattr(current.get(pool_id), column, None) or 0
        most = may_have(tenant.name, holds, left_now, say) if tenant is not None else ""
        return f"{owner} has {say(left_now)}{of} left{most}"

    if parent is not None:
        selectors.tenant_summaries([parent])
        for summary in parent.pool_summaries:
            pool_id = summary.allocation.pool_id
            if "capacity" in summary.resources:
                left_now = summary.resources["capacity"].remaining
                hint = left_hint(
                    parent.name, pool_id, "capacity_percent", left_now, percent_human, " of its queue"
                )
                hints[pool_id] = {"capacity": hint}
                continue
            hints[pool_id] = {}
            for r in KUBERNETES_RESOURCES:
                left_now = summary.resources[r.name].remaining
                hints[pool_id][r.name] = (
                    f"{parent.name} is unlimited here"
                    if left_now is None
                    else left_hint(parent.name, pool_id, r.field, left_now, r.exactly)
                )
                most = maximum_of(
                    getattr(summary.allocation, r.field), getattr(summary.allocation, r.burst_field)
                )
                hints[pool_id][r.burst_name] = _burst_hint(r, most, f"{parent.name}'s maximum")
        return hints
    for pool in selectors.pool_list(user=user).filter(pk__in=[p.pk for p in pools]):
        free = selectors.pool_free(pool)
        owner = f"Pool {pool}"
        if pool.is_yarn:
            hint = left_hint(
                owner, pool.pk, "capacity_percent", free["capacity"], percent_human, " of its root queue"
            )
            hints[pool.pk] = {"capacity": hint}
            continue
        hints[pool.pk] = {}
        for r in KUBERNETES_RESOURCES:
            hints[pool.pk][r.name] = left_hint(owner, pool.pk, r.field, free[r.name], r.exactly)
            capacity = getattr(pool, POOL_CAPACITY_FIELDS[r.name])
            hints[pool.pk][r.burst_name] = _burst_hint(r, capacity, "the pool's capacity")
    return hints


def _burst_hint(resource: Resource, most: int | None, whose: str) -> str:
    """Beside a burst field: what empty means and the most it may be (None: no cap from above)."""
    return "Empty: no burst" + (f"; at most {resource.exactly(most)}, {whose}" if most is not None else "")


def _pools_for_child(user: Any, parent: Tenant | None) -> list[Any]:
    """A sub-tenant can be allocated only where its parent is; a level-1 tenant in any pool."""
    pools = selectors.pool_list(user=user).order_by("cluster__name", "name")
    if parent is not None:
        pools = pools.filter(allocations__tenant=parent)
    return list(pools)


def _trial_create(request: HttpRequest, form: forms.TenantCreateForm) -> Tenant | None:
    """Run tenant_create and each allocation in savepoints so every refusal lands on its own field;
    commit only when nothing was refused. A refused name does not hide the allocations' refusals:
    they are checked once more under a stand-in name, and that trial is always rolled back."""
    data = form.cleaned_data
    specs = form.clean_pool_fields()
    storage = form.storage_specs()
    if form.errors:
        return None
    tenant = _trial_run(request, form, data["name"], specs, storage)
    if tenant is None and "name" in form.errors and not set(form.errors) - {"name"}:
        _trial_run(request, form, f"name-check-{uuid.uuid4().hex[:12]}", specs, storage, keep=False)
    return tenant


def _trial_run(
    request: HttpRequest,
    form: forms.TenantCreateForm,
    name: str,
    specs: list[services.AllocationSpec],
    storage: list[services.StorageSpec],
    keep: bool = True,
) -> Tenant | None:
    data = form.cleaned_data
    try:
        with transaction.atomic():
            tenant = services.tenant_create(
                acting_user=request.user,
                parent=data.get("parent"),
                name=name,
                display_name=data.get("display_name", ""),
                description=data.get("description", ""),
                is_leaf=data["is_leaf"],
                plan=data.get("plan"),
            )
            for spec in specs:
                try:
                    with transaction.atomic():
                        services.allocation_set(acting_user=request.user, tenant=tenant, spec=spec)
                except ValidationError as exc:
                    for key, messages_ in exc.message_dict.items():
                        form.add_error(form.pool_error_field(spec.pool, key), messages_)
            for spec in storage:
                try:
                    with transaction.atomic():
                        services.storage_create(acting_user=request.user, tenant=tenant, spec=spec)
                except ValidationError as exc:
                    form.add_error(f"hdfs_{spec.cluster.pk}_on", exc.messages)
            if not keep or form.errors or request.POST.get("validate"):
                raise _DryRun
            return tenant
    except _DryRun:
        return None
    except ValidationError as exc:
        if keep:
            forms.apply_service_errors(form, exc)
        return None


def _validation_response(request: HttpRequest, form: Any) -> HttpResponse:
    """Per-field error lists, swapped out-of-band into the form: while the user types, and after an
    htmx submit that was refused (the form stays as the user filled it)."""
    return render(request, "tenants/partials/_field_errors.html", {"form": form})


def _checked_form_saved(request: HttpRequest, url: str) -> HttpResponse:
    """Where a form checked as you type leads once saved. Its submit is an htmx request, queued
    behind the check still running (templates/tenants/partials/_live_check.html), so htmx is told
    where to go; without JavaScript the form posts as usual and gets a redirect."""
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


@login_required
def tenant_create(request: HttpRequest) -> HttpResponse:
    user = request.user
    parents = selectors.tenant_list(user=user, action=Action.ADMINISTER).filter(leaf=False)
    parent_id = request.POST.get("parent") or request.GET.get("parent")
    parent = selectors.tenant_get(user=user, pk=parent_id, action=Action.ADMINISTER) if parent_id else None
    pools = _pools_for_child(user, parent)
    hadoop = list(selectors.cluster_list(user=user).filter(kind=Cluster.Kind.YARN))
    form_kwargs = {
        "parents": parents,
        "pools": pools,
        "hints": _pool_hints(user, parent, pools),
        "hadoop_clusters": hadoop,
        "level1_allowed": is_platform_admin(user),
    }
    if request.method == "POST":
        form = forms.TenantCreateForm(request.POST, **form_kwargs)
        tenant = _trial_create(request, form) if form.is_valid() else None
        if tenant is not None:
            messages.success(request, f"Tenant {tenant.name_path} created.")
            return _checked_form_saved(request, reverse("console:tenant", args=[tenant.pk]))
        if request.POST.get("validate") or request.htmx:
            return _validation_response(request, form)
    else:
        form = forms.TenantCreateForm(initial={"parent": parent}, **form_kwargs)
    return render(request, "tenants/tenant_form.html", {"nav": "tenants", "form": form, "parent": parent})


@login_required
def tenant_allocations(request: HttpRequest, pk: int) -> HttpResponse:
    user = request.user
    tenant = selectors.tenant_get(user=user, pk=pk, action=Action.MANAGE)
    parent = selectors.tenant_get(user=user, pk=tenant.parent_id) if tenant.parent_id else None
    pools = _pools_for_child(user, parent)
    current = {a.pool_id: a for a in selectors.allocation_list(user=user).filter(tenant=tenant)}
    form_kwargs = {
        "pools": pools,
        "hints": _pool_hints(user, parent, pools, tenant, current),
        "current": current,
    }
    if request.method == "POST":
        form = forms.AllocationsForm(request.POST, **form_kwargs)
        if form.is_valid():
            specs = form.clean_pool_fields()
            chosen = {spec.pool.pk for spec in specs}
            try:
                with transaction.atomic():
                    for spec in specs:
                        try:
                            with transaction.atomic():
                                services.allocation_set(acting_user=user, tenant=tenant, spec=spec)
                        except ValidationError as exc:
                            for key, messages_ in exc.message_dict.items():
                                form.add_error(form.pool_error_field(spec.pool, key), messages_)
                    for pool_id, allocation in current.items():
                        if pool_id not in chosen:
                            try:
                                with transaction.atomic():
                                    services.allocation_delete(acting_user=user, allocation=allocation)
                            except ValidationError as exc:
                                form.add_error(f"pool_{pool_id}_on", exc.messages)
                    if form.errors or request.POST.get("validate"):
                        raise _DryRun
            except _DryRun:
                pass
            if not form.errors and not request.POST.get("validate"):
                messages.success(request, f"Allocations of {tenant.name_path} saved.")
                return _checked_form_saved(
                    request, f"{reverse('console:tenant', args=[tenant.pk])}?tab=resources"
                )
        if request.POST.get("validate") or request.htmx:
            return _validation_response(request, form)
    else:
        form = forms.AllocationsForm(**form_kwargs)
    return render(
        request,
        "tenants/allocations_form.html",
        {"nav": "tenants", "form": form, "tenant": tenant, "parent": parent},
    )


@login_required
def tenant_plan(request: HttpRequest, pk: int) -> HttpResponse:
    tenant = selectors.tenant_get(user=request.user, pk=pk, action=Action.MANAGE)
    form = forms.PlanChoiceForm(request.POST or None)
    form.fields["plan"].queryset = selectors.plan_list(user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            services.tenant_apply_plan(
                acting_user=request.user, tenant=tenant, plan=form.cleaned_data["plan"]
            )
        except ValidationError as exc:
            forms.apply_service_errors(
                form,
                exc,
                {
                    key: "plan"
                    for key in ("gpu", "cpu", "memory", "capacity", "max_capacity", "pool")
                    + tuple(r.burst_name for r in KUBERNETES_RESOURCES)
                },
            )
        else:
            messages.success(request, f"Plan {form.cleaned_data['plan']} applied to {tenant.name_path}.")
            return redirect(f"{reverse('console:tenant', args=[tenant.pk])}?tab=resources")
    return render(request, "tenants/plan_form.html", {"nav": "tenants", "form": form, "tenant": tenant})


@login_required
@require_POST
def tenant_state(request: HttpRequest, pk: int) -> HttpResponse:
    tenant = selectors.tenant_get(user=request.user, pk=pk)
    state = request.POST.get("state", "")
    try:
        tenant = services.tenant_set_state(acting_user=request.user, tenant=tenant, state=state)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request, f"{tenant.name_path} and its sub-tenants are now {tenant.get_state_display().lower()}."
        )
    return redirect("console:tenant", tenant.pk)


@login_required
def tenant_delete(request: HttpRequest, pk: int) -> HttpResponse:
    tenant = selectors.tenant_get(user=request.user, pk=pk, action=Action.MANAGE)
    impact = services.tenant_deletion_impact(tenant)
    error = None
    if request.method == "POST":
        try:
            services.tenant_delete(
                acting_user=request.user, tenant=tenant, confirm=request.POST.get("confirm") == "yes"
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            messages.success(request, f"Tenant {tenant.name_path} deleted.")
            return (
                redirect("console:tenant", tenant.parent_id)
                if tenant.parent_id
                else redirect("console:tenants")
            )
    return render(
        request,
        "tenants/tenant_delete.html",
        {"nav": "tenants", "tenant": tenant, "impact": impact, "error": error},
    )


@login_required
@require_POST
def membership_add(request: HttpRequest, pk: int) -> HttpResponse:
    tenant = selectors.tenant_get(user=request.user, pk=pk)
    form = forms.MembershipForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give a user name or a group, and a role.")
        return redirect(f"{reverse('console:tenant', args=[tenant.pk])}?tab=members")
    role, group = form.cleaned_data["role"], form.cleaned_data["group"]
    person = None
    if not group:
        person = User.objects.filter(username=form.cleaned_data["username"], is_active=True).first()
        if person is None:
            messages.error(request, f"There is no active user named {form.cleaned_data['username']}.")
            return redirect(f"{reverse('console:tenant', args=[tenant.pk])}?tab=members")
    try:
        membership = services.membership_grant(
            acting_user=request.user, tenant=tenant, user=person, group=group or None, role=role
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        subject = f"Group {membership.subject_name}" if group else membership.subject_name
        messages.success(request, f"{subject} is now {role} of {tenant.name_path}.")
    return redirect(f"{reverse('console:tenant', args=[tenant.pk])}?tab=members")


@login_required
@require_POST
def membership_change(request: HttpRequest, pk: int) -> HttpResponse:
    membership = get_object_or_404(selectors.membership_list(user=request.user), pk=pk)
    try:
        services.membership_change_role(
            acting_user=request.user, membership=membership, role=request.POST.get("role", "")
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            f"{membership.subject_name} is now {request.POST.get('role')} of {membership.tenant.name_path}.",
        )
    return redirect(f"{reverse('console:tenant', args=[membership.tenant_id])}?tab=members")


@login_required
@require_POST
def membership_remove(request: HttpRequest, pk: int) -> HttpResponse:
    membership = get_object_or_404(selectors.membership_list(user=request.user), pk=pk)
    tenant_id = membership.tenant_id
    services.membership_revoke(acting_user=request.user, membership=membership)
    messages.success(request, f"{membership.subject_name} removed from {membership.tenant.name_path}.")
    return redirect(f"{reverse('console:tenant', args=[tenant_id])}?tab=members")


@login_required
def user_create(request: HttpRequest) -> HttpResponse:
    form = forms.UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            person = services.user_create(acting_user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            forms.apply_service_errors(form, exc)
        else:
            messages.success(request, f"User {person.get_username()} created.")
            return redirect("console:users")
    return render(request, "tenants/user_form.html", {"nav": "users", "form": form, "title": "New user"})


@login_required
def user_password(request: HttpRequest, pk: int) -> HttpResponse:
    person = get_object_or_404(selectors.user_list(user=request.user), pk=pk)
    form = forms.PasswordResetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.user_update(
                acting_user=request.user, user=person, password=form.cleaned_data["password"]
            )
        except ValidationError as exc:
            forms.apply_service_errors(form, exc)
        else:
            messages.success(request, f"Password of {person.get_username()} reset.")
            return redirect("console:users")
    return render(
        request,
        "tenants/user_form.html",
        {"nav": "users", "form": form, "title": f"Reset the password of {person.get_username()}"},
    )


@login_required
def plan_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Create or change a quota plan (platform admins). Tenants made from it keep their copy."""
    if not is_platform_admin(request.user):
        raise PermissionDenied("Only platform admins edit plans.")
    plan = get_object_or_404(selectors.plan_list(user=request.user), pk=pk) if pk is not None else None
    pools = list(selectors.pool_list(user=request.user))
    hadoop = list(selectors.cluster_list(user=request.user).filter(kind=Cluster.Kind.YARN))
    form = forms.PlanForm(request.POST or None, pools=pools, hadoop_clusters=hadoop, plan=plan)
    if request.method == "POST" and form.is_valid():
        allocations = form.clean_pool_fields()
        storage = form.storage_specs()
        if not form.errors:
            try:
                if plan is None:
                    plan = services.plan_create(
                        acting_user=request.user,
                        name=form.cleaned_data["name"],
                        description=form.cleaned_data["description"],
                        allocations=allocations,
                        storage=storage,
                    )
                else:
                    services.plan_update(
                        acting_user=request.user,
                        plan=plan,
                        description=form.cleaned_data["description"],
                        allocations=allocations,
                        storage=storage,
                    )
            except ValidationError as exc:
                forms.apply_service_errors(form, exc)
            else:
                messages.success(request, f"Plan {plan.name} saved.")
                return redirect("console:plans")
    return render(request, "tenants/plan_edit.html", {"nav": "plans", "form": form, "plan": plan})


@login_required
@require_POST
def user_grant(request: HttpRequest) -> HttpResponse:
    """Give a user a role on a tenant named by its path, from the Users page. Platform admins grant
    anywhere; tenant admins within their subtrees (the service checks)."""
    form = forms.GrantForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give a user name, a tenant path and a role.")
        return redirect("console:users")
    data = form.cleaned_data
    tenant = (
        selectors.tenant_list(user=request.user, action=Action.ADMINISTER)
        .filter(name_path=data["tenant"].strip("/"))
        .first()
    )
    person = User.objects.filter(username=data["username"], is_active=True).first()
    if tenant is None:
        messages.error(request, f"You administer no tenant with the path {data['tenant']}.")
    elif person is None:
        messages.error(request, f"There is no active user named {data['username']}.")
    else:
        try:
            services.membership_grant(acting_user=request.user, tenant=tenant, user=person, role=data["role"])
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"{person.get_username()} is now {data['role']} of {tenant.name_path}.")
    return redirect(f"{reverse('console:users')}?q={data['username']}")
