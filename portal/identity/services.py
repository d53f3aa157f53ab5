"""Writes of the sign-in side: API tokens handed out and sign-in lock-outs, each with its audit row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from knox.models import AuthToken

from tenants import services as tenant_services
from tenants.models import AuditEvent


def client_address(request: HttpRequest) -> str:
    """The address a request came from, as the sign-in rate limit counts it."""
    return get_client_ip_address(request) or ""


def lockout_message() -> str:
    minutes = round(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    return f"Too many failed sign-ins; try again in {minutes} minutes."


def api_token_issue(*, acting_user: AbstractBaseUser, address: str) -> tuple[str, datetime | None]:
    """A new API token for `acting_user` (who just gave their password) and when it expires.

    Only its digest is stored, so the token is shown once, here; the audit row says who, when and
    from where, never the token. The user's expired tokens go at the same time.
    """
    with transaction.atomic():
        AuthToken.objects.filter(user=acting_user, expiry__lt=timezone.now()).delete()
        token, key = AuthToken.objects.create(user=acting_user)
        tenant_services.audit(
            acting_user=acting_user,
            action="API_TOKEN_ISSUED",
            target=acting_user,
            tenant=None,
            after={"address": address, "expires_at": token.expiry.isoformat() if token.expiry else None},
        )
    return key, token.expiry


def sign_in_lockout_record(*, username: str, address: str, path: str) -> AuditEvent:
    """One audit row when a user name is locked out from an address (the user, if there is one)."""
    person = get_user_model().objects.filter(username=username).first() if username else None
    return tenant_services.audit(
        acting_user=None,
        action="SIGN_IN_LOCKED_OUT",
        target=person,
        tenant=None,
        after={
            "username": username,
            "address": address,
            "path": path,
            "failures": settings.AXES_FAILURE_LIMIT,
            "cool_off_minutes": round(settings.AXES_COOLOFF_TIME.total_seconds() / 60),
        },
    )


def on_user_locked_out(
    sender: Any, request: Any, username: str | None, ip_address: str | None, **_: Any
) -> None:
    """django-axes' `user_locked_out`: sent when the limit is reached and again for each attempt
    refused during the cool-off; only the first, which counted the failures, is audited."""
    if getattr(request, "axes_failures_since_start", None) is None:
        return
    sign_in_lockout_record(
        username=username or "", address=ip_address or "", path=getattr(request, "path", "")
    )
