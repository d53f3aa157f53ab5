"""Writes: each form parses, a service decides. A refusal goes back onto the form's fields.

The services run in savepoints first (rolled back) so every refusal lands on its own field, and
again on `validate=1` htmx requests while the user types."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from django import forms as django_forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django_htmx.http import HttpResponseClientRedirect

from tenants import forms, pool_figures, selectors, services
from tenants.amounts import (
    KUBERNETES_RESOURCES,
    POOL_CAPACITY_FIELDS,
    Resource,
    maximum_of,
    percent_human,
)
from tenants.models import Tenant
from tenants.rules import may_have
from tenants.views._page import HtmxHttpRequest

T = TypeVar("T")


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
        selectors.tenant_summaries([parent], user=user)
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
        free = pool_figures.pool_holding(pool).left
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


def _trial_create(
    request: HtmxHttpRequest, form: forms.TenantCreateForm, *, checking: bool = False
) -> Tenant | None:
    """Run tenant_create and each allocation in savepoints so every refusal lands on its own field;
    commit only when nothing was refused. A refused name does not hide the allocations' refusals:
    they are checked once more under a stand-in name, and that trial is always rolled back. While
    the user types (`checking`), neither does a name not typed yet."""
    if not form.is_valid() and not (checking and _only_the_name_is_missing(form)):
        return None
    data = form.cleaned_data
    specs = form.clean_pool_fields()
    storage = form.storage_specs()
    if set(form.errors) - {"name"}:
        return None
    if "name" in form.errors:
        _trial_run(request, form, _stand_in_name(), specs, storage, keep=False)
        return None
    tenant = _trial_run(request, form, data["name"], specs, storage)
    if tenant is None and "name" in form.errors and not set(form.errors) - {"name"}:
        _trial_run(request, form, _stand_in_name(), specs, storage, keep=False)
    return tenant


def _only_the_name_is_missing(form: forms.TenantCreateForm) -> bool:
    return set(form.errors) == {"name"} and all(e.code == "required" for e in form.errors.as_data()["name"])


def _stand_in_name() -> str:
    return f"name-check-{uuid.uuid4().hex[:12]}"


def _trial_run(
    request: HtmxHttpRequest,
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


def _trial_move(
    request: HtmxHttpRequest, form: forms.TenantMoveForm, tenant: Tenant, *, keep: bool
) -> Tenant | None:
    """Move `tenant` under the form's parent (`keep`: for good; else rolled back, to ask first).
    A refusal lands on the parent field, or on top when it is about the tenant itself."""
    try:
        with transaction.atomic():
            moved = services.tenant_move(
                acting_user=request.user, tenant=tenant, new_parent=form.cleaned_data["parent"]
            )
            if not keep:
                raise _DryRun
            return moved
    except _DryRun:
        tenant.refresh_from_db()  # the service moved this object too; the database did not keep it
        return None
    except ValidationError as exc:
        tenant.refresh_from_db()
        for key, messages_ in exc.message_dict.items():
            form.add_error(None if key == "tenant" else "parent", messages_)
        return None


def service_trial(
    request: HtmxHttpRequest,
    form: django_forms.Form,
    write: Callable[[], T],
    field_for: dict[str, str] | None = None,
) -> T | None:
    """Run one service call (`write`) in a savepoint and put its refusal on the form: on the fields
    the form found nothing wrong with itself (a required field is not refused twice), on top where
    the form has no such field. What it wrote is kept only when the form has no error at all and
    this is no check as the user types (`validate=1`); otherwise it is rolled back."""
    already = set(form.errors)
    field_for = field_for or {}
    try:
        with transaction.atomic():
            result = write()
            if form.errors or request.POST.get("validate"):
                raise _DryRun
            return result
    except _DryRun:
        return None
    except ValidationError as exc:
        refused = exc.message_dict if hasattr(exc, "error_dict") else {NON_FIELD_ERRORS: exc.messages}
        for key, messages_ in refused.items():
            name = field_for.get(key, key)
            field = name if name in form.fields else None
            if (field or NON_FIELD_ERRORS) not in already:
                form.add_error(field, messages_)
        return None


def _validation_response(request: HtmxHttpRequest, form: Any) -> HttpResponse:
    """Per-field error lists, swapped out-of-band into the form: while the user types, and after an
    htmx submit that was refused (the form stays as the user filled it). While the user types, a
    field left empty is not an error yet: "required" waits for the submit."""
    if request.POST.get("validate"):
        _drop_required_errors(form)
    return render(request, "tenants/partials/_field_errors.html", {"form": form})


def _drop_required_errors(form: Any) -> None:
    """Forget the "This field is required" refusals of a form checked before its submit."""
    for name in list(form.errors):
        errors = form.errors[name]
        errors.data = [error for error in errors.as_data() if error.code != "required"]
        if not errors:
            del form.errors[name]


def _checked_form_saved(request: HtmxHttpRequest, url: str) -> HttpResponse:
    """Where a form checked as you type leads once saved. Its submit is an htmx request, queued
    behind the check still running (templates/tenants/partials/_live_check.html), so htmx is told
    where to go; without JavaScript the form posts as usual and gets a redirect."""
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)
