"""The inbox's unread count, for the console's menu (templates/base.html)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from quotas import selectors


def inbox(request: HttpRequest) -> dict[str, Any]:
    # Lazy: read only by a page that draws the menu (never by the API, nor the JSON error pages).
    return {
        "inbox_unread": SimpleLazyObject(
            lambda: selectors.notification_unread_count(user=getattr(request, "user", None))
        )
    }
