"""Where a request came from, as audit rows record it (an API token issued, a kubeconfig downloaded)."""

from __future__ import annotations

from axes.helpers import get_client_ip_address
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """The address a request came from, as the sign-in rate limit (django-axes) counts it, so the
    audit rows and the lock-outs name the same address behind a proxy."""
    return get_client_ip_address(request) or ""
