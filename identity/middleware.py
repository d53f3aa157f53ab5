"""The request being served, for the audit rows of revocations that Django's own writers cause (its
admin's forms call no service of ours, so nothing hands them the acting user)."""

from __future__ import annotations

import contextvars
from typing import Any

from django.http import HttpRequest

from tenants.permissions import AnyUser

_current_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar(
    "canopy_current_request", default=None
)


class ActingUserMiddleware:
    """Remembers the request being served. Its user is read when needed, not here: DRF
    authenticates a token inside the view, after the middleware has run."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        reset = _current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            _current_request.reset(reset)


def current_acting_user() -> AnyUser | None:
    """The signed-in user of the request being served; None outside a request (a command)."""
    user = getattr(_current_request.get(), "user", None)
    return user if user is not None and user.is_authenticated else None
