"""The one helper that renders a page or, for an htmx request, one of its fragments."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def render_page(
    request: HttpRequest, template: str, context: dict[str, Any], partial: str | None = None
) -> HttpResponse:
    """The page, or only `partial` of it for an HTMX request that asks for a fragment."""
    if partial and request.htmx and not request.htmx.boosted:
        return render(request, f"{template}#{partial}", context)
    return render(request, template, context)
