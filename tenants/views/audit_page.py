"""The audit log, restricted to what the user may read: filtered, paginated, and as CSV."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils import timezone

from tenants import exports, selectors
from tenants.audit_filters import AuditPageFilter
from tenants.views._page import HtmxHttpRequest, render_page

PAGE_SIZE = 50
# The pickers suggest this many tenants and people (tree order, names); any other is typed.
SUGGESTIONS = 500
WITHHELD = "Details are shown to the tenant's admins."


def _filtered(request: HttpRequest) -> tuple[AuditPageFilter, QuerySet]:
    """The filters as sent, and the rows they keep (none while a filter is wrong)."""
    events = selectors.audit_list(user=request.user)
    filters = AuditPageFilter(request.GET or None, queryset=events, request=request)
    if not filters.is_bound:
        return filters, events
    return filters, filters.qs if filters.is_valid() else events.none()


@login_required
def audit(request: HtmxHttpRequest) -> HttpResponse:
    filters, events = _filtered(request)
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    reader = selectors.audit_reader(user=request.user)
    query = request.GET.copy()
    query.pop("page", None)
    context: dict[str, Any] = {
        "nav": "audit",
        "filters": filters,
        "events": page,
        "entries": [reader.entry(event) for event in page],
        "csv_query": query.urlencode(),
        "tenant_paths": selectors.tenant_list(user=request.user).values_list("name_path", flat=True)[
            :SUGGESTIONS
        ],
        "usernames": selectors.user_list(user=request.user).values_list("username", flat=True)[:SUGGESTIONS],
    }
    return render_page(request, "tenants/audit.html", context, "events")


@login_required
def audit_csv(request: HttpRequest) -> HttpResponse:
    """What the page shows with the same filters, every page of it, as the person may read it."""
    filters, events = _filtered(request)
    if filters.is_bound and not filters.is_valid():
        problems = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in filters.errors.items())
        return HttpResponseBadRequest(
            f"Fix the filters: {problems}", content_type="text/plain; charset=utf-8"
        )
    reader = selectors.audit_reader(user=request.user)
    header = ["id", "time", "user", "action", "label", "tenant", "target", "changes"]
    rows: Iterable[Sequence[Any]] = (
        [
            entry.event.pk,
            entry.event.created_at.isoformat(),
            entry.event.actor_name,
            entry.event.action,
            entry.label,
            entry.tenant_path,
            entry.target,
            WITHHELD if entry.withheld else entry.summary,
        ]
        for entry in map(reader.entry, events.iterator(chunk_size=2000))
    )
    return exports.csv_response(f"audit-{timezone.now():%Y%m%dT%H%M}.csv", chain([header], rows))
