"""Usage's parts of the console (issue 7). The tenant page's Monitoring tab, what is used of each
pool on the Resources tab and on My access, and My access's jobs are registered with the tenants'
pages (`tenants.console`, from `UsageConfig.ready()`); the CSV export and the platform overview are
usage's own pages, and so is the showback (its page, CSV, PDF and prices). Every read goes through `usage.selectors` with the signed-in user; `dashboards`
turns what they read into windows, charts, CSV rows and rankings (no ORM there).
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from tenants import console, exports
from tenants import selectors as tenant_selectors
from tenants.amounts import KUBERNETES_RESOURCES
from tenants.models import Membership, ResourcePool, Tenant
from tenants.permissions import Action, administers_somewhere, can, is_platform_admin
from tenants.views._page import HtmxHttpRequest, render_page
from usage import dashboards, forms, selectors, services, showback
from usage import showback_pdf as showback_pdf_module
from usage.measures import flavor_column

# Latest usage figures per (cluster id, partition), as `selectors.usage_latest` gives them per tenant.
Latest = dict[tuple[int, str], dict[str, Any]]


# ---------------------------------------------------------------------------------------------
# Monitoring: allocated against used over time, drawn by Chart.js from figures embedded in the page.


def _usage_window(
    request: HttpRequest,
) -> tuple[forms.UsageRangeForm, dashboards.Window | None, datetime.datetime]:
    """The range asked for (1 h by default), its step, and the "now" it ends at. `at` pins "now"
    so the CSV link exports exactly the window the page showed."""
    now = timezone.now()
    at = request.GET.get("at", "")
    # isdecimal, not isdigit: int("²") fails. A pin past the calendar's end is unreadable like any
    # other: it means now.
    if at.isdecimal():
        with contextlib.suppress(OverflowError, OSError, ValueError):
            now = min(now, datetime.datetime.fromtimestamp(int(at), tz=datetime.UTC))
    form = forms.UsageRangeForm({"range": dashboards.DEFAULT_RANGE, **request.GET.dict()})
    if not form.is_valid():
        return form, None, now
    data = form.cleaned_data
    raw_from = now - datetime.timedelta(days=settings.CANOPY_USAGE_RAW_DAYS)
    window = dashboards.window_for(data["range"], now, raw_from, data.get("start"), data.get("end"))
    return form, window, now


def _usage_charts(
    user: Any, tenant: Tenant, window: dashboards.Window, now: datetime.datetime
) -> tuple[str, list[dashboards.ClusterCharts]]:
    query = selectors.UsageQuery(
        metrics=dashboards.chart_metrics(), start=window.start, end=window.end, step=window.step
    )
    source, series = selectors.usage_series(user=user, tenant=tenant, query=query, now=now)
    cluster_ids = {entry.cluster_id for entries in series.values() for entry in entries}
    names = dict(
        tenant_selectors.cluster_list(user=user).filter(pk__in=cluster_ids).values_list("pk", "name")
    )
    return source, dashboards.charts_from_series(series, names, window.start, window.end)


SOURCE_LABELS = {"raw": "raw samples", "hour": "hourly averages", "day": "daily averages"}


def monitoring_context(request: HttpRequest, tenant: Tenant) -> dict[str, Any]:
    """The Monitoring tab of the tenant page."""
    if not can(request.user, Action.USE, tenant):
        return {"may_use": False}
    form, window, now = _usage_window(request)
    context: dict[str, Any] = {
        "may_use": True,
        # Admins find the idle-quota hints from here (from the grants already read: no query).
        "may_administer": can(request.user, Action.ADMINISTER, tenant),
        "range_form": form,
        "window": window,
        "ranges": dashboards.RANGE_LABELS,
        "time_zone": timezone.get_current_timezone_name(),
    }
    if window is None:
        return context
    source, groups = _usage_charts(request.user, tenant, window, now)
    params = {"range": window.range, "at": int(now.timestamp())}
    if window.range == "custom":
        params.update(start=request.GET.get("start", ""), end=request.GET.get("end", ""))
    context.update(
        groups=groups,
        source=SOURCE_LABELS.get(source, source),
        csv_query=urlencode(params),
        poll=window.range != "custom",
    )
    return context


def monitoring_shown(user: Any, tenant: Tenant) -> bool:
    """Usage is for members and admins (Action.USE); viewers do not get the Monitoring tab."""
    return can(user, Action.USE, tenant)


MONITORING_TAB = console.TenantTab(
    key="monitoring",
    label="Monitoring",
    template="usage/partials/_tab_monitoring.html",
    context=monitoring_context,
    before="audit",
    shown=monitoring_shown,
    scripts=("vendor/chartjs/chart.umd.js", "js/usage_charts.js"),
)


@login_required
def tenant_usage_csv(request: HttpRequest, pk: int) -> HttpResponse:
    """The Monitoring tab's figures as CSV: the same window, step and series as the page."""
    tenant = tenant_selectors.tenant_get(user=request.user, pk=pk)
    if not can(request.user, Action.USE, tenant):
        raise Http404("No such tenant.")
    form, window, now = _usage_window(request)
    if window is None:
        return HttpResponse(
            "; ".join(f"{k}: {' '.join(str(message) for message in v)}" for k, v in form.errors.items()),
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    _, groups = _usage_charts(request.user, tenant, window, now)
    name = (
        f"{tenant.name_path.replace('/', '_')}-usage-{window.start:%Y%m%dT%H%M}-{window.end:%Y%m%dT%H%M}.csv"
    )
    return exports.csv_response(name, dashboards.csv_rows(groups))


# ---------------------------------------------------------------------------------------------
# What is used of each pool now (the Resources tab, My access) and My access's jobs


def _latest(request: HttpRequest, tenant_ids: list[int]) -> dict[int, Latest]:
    """`selectors.usage_latest` for these tenants, read once per request: My access shows what its
    tenants use of each pool and why their jobs wait from the same figures."""
    read: dict[frozenset[int], dict[int, Latest]] = request.__dict__.setdefault("_usage_latest", {})
    key = frozenset(tenant_ids)
    if key not in read:
        read[key] = selectors.usage_latest(user=request.user, tenant_ids=tenant_ids, now=timezone.now())
    return read[key]


def pool_usage(request: HttpRequest, tenant_ids: list[int]) -> Callable[[int, ResourcePool], console.PoolUse]:
    """What each of these tenants' subtrees uses of a pool, from the latest figures: a Kubernetes
    namespace's quota usage covers all its pools on the cluster, a YARN partition is a pool (its
    node label), and on a Kueue cluster Kueue counts each pool (a flavor), used and borrowed.
    Two queries for any number of tenants."""
    latest = _latest(request, tenant_ids)
    flavors = selectors.flavor_usage_latest(user=request.user, tenant_ids=tenant_ids, now=timezone.now())

    def of(tenant_id: int, pool: ResourcePool) -> console.PoolUse:
        figures = latest.get(tenant_id, {}).get((pool.cluster_id, pool.node_selector if pool.is_yarn else ""))
        used = {name: (figures or {}).get(metric) for name, metric in selectors.USED_METRICS.items()}
        flavor = flavors.get(tenant_id, {}).get(pool.pk)
        if flavor is None:
            return console.PoolUse(used=used)
        return console.PoolUse(
            used={r.name: getattr(flavor, flavor_column(r.name, "used")) for r in KUBERNETES_RESOURCES},
            borrowed={
                r.name: getattr(flavor, flavor_column(r.name, "borrowed")) for r in KUBERNETES_RESOURCES
            },
        )

    return of


def my_jobs_context(request: HttpRequest, roles: list[Any]) -> dict[int, dict[str, Any]]:
    """My access: the person's own jobs in each tenant, and per cluster where some wait for quota,
    why, in one sentence. Viewers get none: their role is read-only."""
    user = request.user
    tenant_ids = [role.tenant.pk for role in roles]
    latest = _latest(request, tenant_ids)
    jobs: dict[int, list[Any]] = {}
    for workload in selectors.workload_list(user=user).filter(
        username=user.get_username(), tenant_id__in=tenant_ids
    ):
        jobs.setdefault(workload.tenant_id, []).append(workload)
    return {
        role.tenant.pk: {
            "uses": role.role != Membership.Role.VIEWER,
            "jobs": jobs.get(role.tenant.pk, []),
            "waiting": _waiting(role.tenant, jobs.get(role.tenant.pk, []), latest.get(role.tenant.pk, {})),
        }
        for role in roles
    }


def _waiting(tenant: Tenant, jobs: list[Any], latest: Latest) -> list[str]:
    """Per cluster where some of the person's jobs wait for quota: why, in one sentence."""
    by_cluster: dict[Any, list[Any]] = {}
    for job in jobs:
        by_cluster.setdefault(job.cluster, []).append(job)
    sentences = []
    for cluster, cluster_jobs in sorted(by_cluster.items(), key=lambda item: item[0].name):
        sentence = dashboards.waiting_sentence(tenant.name, cluster_jobs, latest.get((cluster.pk, "")))
        if sentence:
            sentences.append(f"{sentence} ({cluster.name})." if len(by_cluster) > 1 else f"{sentence}.")
    return sentences


MY_JOBS = console.PageSection(
    page=console.MY_ACCESS_TENANT, template="usage/partials/_my_jobs.html", context=my_jobs_context
)


# ---------------------------------------------------------------------------------------------
# Platform overview


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    """For platform admins: each cluster's level-1 totals against its pools, the most used and the
    most idle tenants, and every tenant at or above 90 % of a quota. Constant queries: one for the
    tenants, one for all their latest figures, one for the pools, one for the clusters."""
    user = request.user
    if not is_platform_admin(user):
        raise Http404("No such page.")
    tenants = list(tenant_selectors.tenant_list(user=user).values_list("pk", "name_path", "depth"))
    names = {pk: name_path for pk, name_path, _ in tenants}
    latest = selectors.usage_latest(user=user, tenant_ids=list(names), now=timezone.now())
    cluster_names = dict(tenant_selectors.cluster_list(user=user).values_list("pk", "name"))
    level1 = {pk for pk, _, depth in tenants if depth == 1}
    most_used, most_idle = dashboards.rankings(dashboards.tenant_usages(names, latest))
    near_full = [
        (tenant_id, names.get(tenant_id, ""), found)
        for tenant_id, figures in latest.items()
        if (found := dashboards.near_full_quotas(figures, cluster_names))
    ]
    near_full_ids = {tenant_id for tenant_id, _, _ in near_full}
    context = {
        "nav": "overview",
        "totals": dashboards.cluster_totals(
            [figures for tenant_id, figures in latest.items() if tenant_id in level1],
            list(tenant_selectors.pool_list(user=user)),
            cluster_names,
        ),
        "rankings": [
            ("Most used", most_used, "No tenant with a GPU or CPU allocation reports figures yet."),
            ("Most idle", most_idle, "Too few tenants report figures to name idle ones."),
        ],
        "near_full": sorted(near_full, key=lambda row: row[1]),
        "near_full_ids": near_full_ids,
        "tenant_count": len(names),
        "reporting": len(latest),
    }
    return render(request, "usage/overview.html", context)


# ---------------------------------------------------------------------------------------------
# Showback (issue 19): a month's GPU-hours, core-hours, memory GiB-hours and HDFS GiB-days, with
# costs where the pools have prices; the page, its CSV and its PDF show one `showback.Report`.


def _showback(request: HttpRequest) -> tuple[forms.ShowbackForm, showback.Report | None]:
    """The month and tenant asked for, and the report; None with the form's errors when they are
    not readable. A tenant the reader may not use is a 404 (`selectors.showback_month`)."""
    data = request.GET.copy()
    data.setdefault("month", f"{timezone.now():%Y-%m}")  # the picker shows the month it is
    form = forms.ShowbackForm(data)
    if not form.is_valid():
        return form, None
    try:
        window = showback.month_window(
            form.cleaned_data["month"], timezone.now(), settings.CANOPY_USAGE_HOURLY_DAYS
        )
    except ValueError as error:
        form.add_error("month", str(error))
        return form, None
    report = selectors.showback_month(user=request.user, tenant_id=form.cleaned_data["tenant"], window=window)
    return form, report


def _showback_name(report: showback.Report, extension: str) -> str:
    name = report.total.name_path.replace("/", "_") if report.tenant_id else "all"
    return f"{name}-showback-{report.window.month:%Y-%m}.{extension}"


def _showback_charts(report: showback.Report) -> list[dict[str, Any]]:
    """One chart per resource with figures: each day's used and allocated units (3 decimals)."""
    days = report.day_lines()
    charts = []
    for resource in showback.RESOURCES:
        used, allocated = [], []
        for _, line in days:
            amount = line.amounts[resource.key]
            used.append(float(showback.rounded(amount.used) or 0) if amount.used is not None else None)
            allocated.append(
                float(showback.rounded(amount.allocated) or 0) if amount.allocated is not None else None
            )
        if any(v is not None for v in used + allocated):
            charts.append(
                {
                    "key": resource.key,
                    "title": f"{resource.label}, {resource.unit} per day",
                    "labels": [day.isoformat() for day, _ in days],
                    "used": used,
                    "allocated": allocated,
                }
            )
    return charts


def _showback_row(line: showback.Line, day: datetime.date | None = None) -> dict[str, Any]:
    """A line's shown figures in the resources' order: (used, allocated) per resource, and costs."""
    figures = showback.line_figures(line)
    return {
        "line": line,
        "day": day,
        "cells": [(figures[f"{r.key}_used"], figures[f"{r.key}_allocated"]) for r in showback.RESOURCES],
        "cost": (figures["cost_used"], figures["cost_allocated"]),
    }


def _showback_text_error(form: forms.ShowbackForm) -> HttpResponse:
    return HttpResponse(
        "; ".join(f"{k}: {' '.join(str(error) for error in v)}" for k, v in form.errors.items()),
        status=400,
        content_type="text/plain; charset=utf-8",
    )


@login_required
def showback_page(request: HttpRequest) -> HttpResponse:
    """A month's showback: the tenant's subtree in total and per day (a chart per resource), for
    its admins each sub-tenant and what it used itself; CSV and PDF of the same figures."""
    form, report = _showback(request)
    context: dict[str, Any] = {"nav": "showback", "form": form, "report": report}
    if report is not None:
        query = urlencode(
            {
                "month": f"{report.window.month:%Y-%m}",
                **({"tenant": report.tenant_id} if report.tenant_id else {}),
            }
        )
        context.update(
            query=query,
            month=f"{report.window.month:%Y-%m}",
            resources=showback.RESOURCES,
            total=_showback_row(report.total),
            lines=[_showback_row(line) for line in report.lines],
            days=[_showback_row(line, day) for day, line in report.day_lines()],
            charts=_showback_charts(report),
        )
    response = render(request, "usage/showback.html", context)
    if report is None:
        response.status_code = 400
    return response


@login_required
def showback_csv(request: HttpRequest) -> HttpResponse:
    form, report = _showback(request)
    if report is None:
        return _showback_text_error(form)
    return exports.csv_response(_showback_name(report, "csv"), showback.csv_rows(report))


@login_required
def showback_pdf(request: HttpRequest) -> HttpResponse:
    form, report = _showback(request)
    if report is None:
        return _showback_text_error(form)
    response = HttpResponse(
        showback_pdf_module.showback_pdf(report, demo=settings.CANOPY_DEMO_USAGE),
        content_type="application/pdf",
    )
    response["Content-Disposition"] = f'attachment; filename="{_showback_name(report, "pdf")}"'
    return response


def _price_pools(user: Any) -> list[tuple[ResourcePool, list[showback.Resource]]]:
    """Every pool with the resources a price applies to there (`showback.price_refusal`)."""
    rows = []
    for pool in tenant_selectors.pool_list(user=user).select_related("cluster"):
        resources = [
            r
            for r in showback.RESOURCES
            if showback.price_refusal(
                yarn=pool.is_yarn, default_pool=pool.name == ResourcePool.DEFAULT_NAME, resource=r.key
            )
            is None
        ]
        if resources:
            rows.append((pool, resources))
    return rows


@login_required
def showback_prices(request: HttpRequest) -> HttpResponse:
    """Platform admins: the prices the showback's costs come from, all in one currency."""
    user = request.user
    if not is_platform_admin(user):
        raise Http404("No such page.")
    pools = _price_pools(user)
    current = list(selectors.pool_prices(user=user))
    initial: dict[str, Any] = {f"price_{p.pool_id}_{p.resource}": p.price for p in current}
    initial["currency"] = current[0].currency if current else settings.CANOPY_SHOWBACK_CURRENCY
    form = forms.PoolPricesForm(request.POST or None, initial=initial, pools=pools)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            by_pk = {pool.pk: pool for pool, _ in pools}
            specs = [
                services.PriceSpec(by_pk[pool.pk], resource, form.cleaned_data[name])
                for pool, names in form.rows
                for name, resource in names
                if form.cleaned_data.get(name) is not None
            ]
            try:
                services.pool_prices_set(
                    acting_user=user, currency=form.cleaned_data["currency"] or "", prices=specs
                )
            except ValidationError as error:
                for field, refusals in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, refusals)
            else:
                messages.success(request, "Prices saved.")
                return redirect("usage:showback_prices")
        status = 400
    response = render(request, "usage/showback_prices.html", {"nav": "showback", "form": form})
    response.status_code = status
    return response


# Idle-quota hints (issue 19, point 4)

# The quotas app's "ask" page turns a hint into a proposed change: a quota request lowering the
# tenant's guarantee, asked with the hint's `Proposal` as its query string (tenant, pool, resource,
# current, amount, reason), which the parent's admins decide like any other. Named, not imported:
# quotas is downstream of usage.
PROPOSE_URL_NAME = "quotas:request_create"


@login_required
def idle_quota(request: HtmxHttpRequest) -> HttpResponse:
    """Tenants whose peak use of their guaranteed GPUs stayed under a threshold over a window, for
    the admins above them (platform admins: every tenant). Read only: nothing is stopped, nothing
    changes until someone proposes and approves a change. A page for people who administer
    something; for anyone else it does not exist."""
    user = request.user
    if not (is_platform_admin(user) or administers_somewhere(user)):
        raise Http404("No such page.")
    form = forms.IdleQuotaForm.from_query(request.GET.dict())
    context: dict[str, Any] = {"nav": "idle_quota", "form": form, "report": None, "propose_url": None}
    if form.is_valid():
        context["report"] = selectors.idle_quota_report(
            user=user,
            now=timezone.now(),
            window_days=form.cleaned_data["window"],
            threshold_percent=form.cleaned_data["threshold"],
        )
        context["propose_url"] = reverse(PROPOSE_URL_NAME)
    response = render_page(request, "usage/idle_quota.html", context, "hints")
    if not form.is_valid() and not request.htmx:  # htmx swaps only a success: there the errors show too
        response.status_code = 400
    return response
