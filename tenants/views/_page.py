"""The one helper that renders a page or, for an htmx request, one of its fragments."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """A request as django-htmx's middleware leaves it (every request: portal.settings), for annotations."""

    htmx: HtmxDetails


def render_page(
    request: HtmxHttpRequest, template: str, context: dict[str, Any], partial: str | None = None
) -> HttpResponse:
    """The page, or only `partial` of it for an HTMX request that asks for a fragment."""
    if partial and request.htmx and not request.htmx.boosted:
        return render(request, f"{template}#{partial}", context)
    return render(request, template, context)
