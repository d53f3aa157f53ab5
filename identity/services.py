"""Writes of the sign-in side: API tokens handed out and revoked, sessions ended, sign-in lock-outs,
each with its audit row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from knox.models import AuthToken

from identity.middleware import current_acting_user
from tenants.audit import audit
from tenants.models import AuditEvent
from tenants.permissions import AnyUser, require_platform_admin

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def lockout_message() -> str:
    minutes = round(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    return f"Too many failed sign-ins; try again in {minutes} minutes."


def api_token_issue(*, acting_user: AnyUser, address: str) -> tuple[str, datetime | None]:
    """A new API token for `acting_user` (who just gave their password) and when it expires.

    Only its digest is stored, so the token is shown once, here; the audit row says who, when and
    from where, never the token. The user's expired tokens go at the same time.
    """
    with transaction.atomic():
        AuthToken.objects.filter(user=acting_user, expiry__lt=timezone.now()).delete()
        token, key = AuthToken.objects.create(user=acting_user)
        audit(
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
    return audit(
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


# ---------------------------------------------------------------------------------------------
# Revoking API tokens and sessions


class RevocationReason:
    """Why a user's tokens (and sessions) were revoked, as the audit row says it."""

    PASSWORD_CHANGED = "password_changed"  # nosec B105 # a reason written in the audit row, not a password
    DEACTIVATED = "deactivated"
    SIGNED_OUT_EVERYWHERE = "signed_out_everywhere"
    REVOKED_BY_PLATFORM_ADMIN = "revoked_by_platform_admin"


@dataclass(frozen=True)
class Revocation:
    tokens: int
    sessions: int | None  # None: sessions were left alone


def _session_keys_of(user: User) -> list[str]:
    """The keys of the user's unexpired sessions. The session store keys rows by session, not by user,
    so each unexpired session is decoded; this runs only when someone is signed out everywhere."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    user_id = str(user._meta.pk.value_to_string(user))
    rows = store.get_model_class().objects.filter(expire_date__gt=timezone.now())
    return [
        key
        for key, data in rows.values_list("session_key", "session_data").iterator(chunk_size=2000)
        if str(store().decode(data).get(SESSION_KEY)) == user_id
    ]


def _sessions_end(user: User) -> int:
    store = import_module(settings.SESSION_ENGINE).SessionStore
    keys = _session_keys_of(user)
    for key in keys:
        store(session_key=key).delete()  # through the store, so a cached_db cache forgets it too
    return len(keys)


def credentials_revoke(
    *,
    acting_user: AnyUser | None,
    user: User,
    reason: str,
    sessions: bool = True,
    audit_if_none: bool = True,
) -> Revocation:
    """Delete every API token of `user` and, with `sessions`, end every session they are signed in
    with; one audit row says how many, who and why (never a token). Without `audit_if_none`, nothing
    revoked writes no row (a password set on a new account revokes nothing). No permission check:
    called for a change already allowed (a password change, a deactivation) and by the services below."""
    with transaction.atomic():
        tokens, _ = AuthToken.objects.filter(user=user).delete()
        ended = _sessions_end(user) if sessions else None
        if not (audit_if_none or tokens or ended):
            return Revocation(tokens=0, sessions=ended)
        after: dict[str, Any] = {"reason": reason, "tokens": tokens}
        if ended is not None:
            after["sessions"] = ended
        audit(acting_user=acting_user, action="CREDENTIALS_REVOKED", target=user, tenant=None, after=after)
    return Revocation(tokens=tokens, sessions=ended)


def sign_out_everywhere(*, acting_user: AnyUser) -> Revocation:
    """The user ends all their own sessions (this one too) and revokes all their API tokens."""
    if not acting_user.is_authenticated:
        raise PermissionDenied("Sign in first.")
    me = get_user_model()._default_manager.get(pk=acting_user.pk)  # not the request's lazy proxy
    return credentials_revoke(acting_user=me, user=me, reason=RevocationReason.SIGNED_OUT_EVERYWHERE)


def api_tokens_revoke(*, acting_user: AnyUser, user: User) -> Revocation:
    """A platform admin revokes every API token of `user` (their console sessions stay)."""
    require_platform_admin(acting_user)
    return credentials_revoke(
        acting_user=acting_user, user=user, reason=RevocationReason.REVOKED_BY_PLATFORM_ADMIN, sessions=False
    )


def _is_rehash(instance: User, update_fields: Any) -> bool:
    """Django stores a new hash of the same password when it checks one made with older hasher
    settings (`check_password`'s setter: set_password, then `_password = None`, then
    save(update_fields=["password"])). That is no password change: nobody is signed out."""
    return (
        update_fields is not None
        and set(update_fields) == {"password"}
        and getattr(instance, "_password", None) is None
        and instance.has_usable_password()
    )


def on_user_pre_save(sender: Any, instance: User, update_fields: Any = None, **_: Any) -> None:
    """Note whether this save changes the password or deactivates the user (read from the row)."""
    instance._canopy_revoke_reason = None  # type: ignore[attr-defined]
    if instance._state.adding or instance.pk is None:
        return
    if update_fields is not None and not {"password", "is_active"} & set(update_fields):
        return  # e.g. last_login at each sign-in: nothing to read
    stored = type(instance)._default_manager.filter(pk=instance.pk).values("password", "is_active").first()
    if stored is None:
        return
    if stored["is_active"] and not instance.is_active:
        instance._canopy_revoke_reason = RevocationReason.DEACTIVATED  # type: ignore[attr-defined]
    elif stored["password"] != instance.password and not _is_rehash(instance, update_fields):
        instance._canopy_revoke_reason = RevocationReason.PASSWORD_CHANGED  # type: ignore[attr-defined]


def on_user_post_save(sender: Any, instance: User, created: bool, **_: Any) -> None:
    """A changed password (set, reset or made unusable) or a deactivation revokes every API token
    and session the user had; a later `update_session_auth_hash` keeps the current browser's."""
    reason = getattr(instance, "_canopy_revoke_reason", None)
    if reason is None:
        return
    instance._canopy_revoke_reason = None  # type: ignore[attr-defined]
    credentials_revoke(acting_user=current_acting_user(), user=instance, reason=reason, audit_if_none=False)
