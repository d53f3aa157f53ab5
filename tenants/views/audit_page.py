"""The audit log, restricted to what the user may read."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse

from tenants import selectors
from tenants.views._page import HtmxHttpRequest, render_page


@login_required
def audit(request: HtmxHttpRequest) -> HttpResponse:
    events = selectors.audit_list(user=request.user)
    action = request.GET.get("action", "").strip()
    if action:
        events = events.filter(action=action)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return render_page(
        request, "tenants/audit.html", {"nav": "audit", "events": page, "action": action}, "events"
    )
