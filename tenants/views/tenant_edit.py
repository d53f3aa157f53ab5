"""Creating a tenant, moving it, suspending or resuming it, deleting it."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import replace_url

from tenants import forms, selectors, services
from tenants.models import Cluster
from tenants.permissions import Action, is_platform_admin
from tenants.views._page import HtmxHttpRequest
from tenants.views._trials import (
    _checked_form_saved,
    _drop_required_errors,
    _pool_hints,
    _pools_for_child,
    _trial_create,
    _trial_move,
    _validation_response,
)


@login_required
def tenant_create(request: HtmxHttpRequest) -> HttpResponse:
    """The new tenant form. Choosing another parent redraws what depends on it (a check with
    redraw=1: breadcrumbs, heading, the parent's pools and what is left of each, every field's
    errors) and keeps what the user typed; see templates/tenants/tenant_form.html."""
    user = request.user
    level1_allowed = is_platform_admin(user)
    parents = selectors.tenant_list(user=user, action=Action.ADMINISTER).filter(leaf=False)
    parent_id = request.POST.get("parent") or request.GET.get("parent")
    parent = selectors.tenant_get(user=user, pk=parent_id, action=Action.ADMINISTER) if parent_id else None
    if parent is None and not level1_allowed:
        # Only platform admins make level-1 tenants: the form starts at the first tenant the user
        # administers, as its parent field shows it.
        parent = parents.first()
        if parent is None:
            raise PermissionDenied(
                "Only platform admins and the admins of a tenant that may have sub-tenants create "
                "tenants; you administer none (a leaf tenant has no sub-tenants). Ask a platform admin "
                "or the admin of a tenant above yours."
            )
    pools = _pools_for_child(user, parent)
    hadoop = list(selectors.cluster_list(user=user).filter(kind=Cluster.Kind.YARN))
    form_kwargs: dict[str, Any] = {
        "parents": parents,
        "pools": pools,
        "hints": _pool_hints(user, parent, pools),
        "hadoop_clusters": hadoop,
        "level1_allowed": level1_allowed,
    }
    context = {"nav": "tenants", "parent": parent}
    if request.method == "POST":
        form = forms.TenantCreateForm(request.POST, **form_kwargs)
        checking = bool(request.POST.get("validate"))
        tenant = _trial_create(request, form, checking=checking)
        if tenant is not None:
            messages.success(request, f"Tenant {tenant.name_path} created.")
            return _checked_form_saved(request, reverse("console:tenant", args=[tenant.pk]))
        if checking and request.POST.get("redraw"):
            _drop_required_errors(form)
            response = render(request, "tenants/tenant_form.html#redraw", {**context, "form": form})
            new_url = reverse("console:tenant_create") + (f"?parent={parent.pk}" if parent else "")
            return replace_url(response, new_url)
        if checking or request.htmx:
            return _validation_response(request, form)
    else:
        form = forms.TenantCreateForm(initial={"parent": parent}, **form_kwargs)
    return render(request, "tenants/tenant_form.html", {**context, "form": form})


@login_required
def tenant_move(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Move a tenant and its subtree under another parent: pick it, see what the move does (a dry
    run of the service: a refusal is an error on the picker, the choice kept), confirm, moved."""
    user = request.user
    tenant = selectors.tenant_get(user=user, pk=pk, action=Action.MANAGE)
    shape = selectors.tenant_subtree_shape(user=user, tenant=tenant)
    targets = list(selectors.tenant_move_targets(user=user, tenant=tenant, height=shape.height))
    form = forms.TenantMoveForm(
        request.POST or None, targets=targets, level1_allowed=is_platform_admin(user) and tenant.depth > 1
    )
    asking = False
    if request.method == "POST" and form.is_valid():
        old_path = tenant.name_path
        confirmed = request.POST.get("confirm") == "yes"
        moved = _trial_move(request, form, tenant, keep=confirmed)
        if moved is not None:
            messages.success(
                request,
                f"{old_path} is now {moved.name_path}; Canopy is pushing the change to the clusters.",
            )
            return redirect("console:tenant", moved.pk)
        asking = not confirmed and not form.errors
    new_parent = form.cleaned_data.get("parent") if asking else None
    return render(
        request,
        "tenants/tenant_move.html",
        {
            "nav": "tenants",
            "tenant": tenant,
            "form": form,
            "shape": shape,
            "choices": form.has_choices(),
            "asking": asking,
            "new_parent": new_parent,
            "new_path": f"{new_parent.name_path}/{tenant.name}" if new_parent else tenant.name,
        },
    )


@login_required
@require_POST
def tenant_state(request: HtmxHttpRequest, pk: int) -> HttpResponse:
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
def tenant_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
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
