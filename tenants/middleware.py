"""Request middleware of the tenants app."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from tenants.permissions import grants_memoized

READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class GrantsPerRequestMiddleware:
    """A page restricts many querysets (the tree, the tenant, its tabs, each `can`); in a read-only
    request the user's grants cannot change, so they are read once instead of once per restrict.
    Writes read them afresh each time: a service may change them halfway through."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in READ_ONLY_METHODS:
            return self.get_response(request)
        with grants_memoized():
            return self.get_response(request)
