"""Authentication backends: OpenID Connect with issuer discovery and group claims, and the local
break-glass backend used when local sign-in is switched off."""

from __future__ import annotations

import logging
from typing import Any

import requests
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from identity.groups import groups_mirror

log = logging.getLogger(__name__)

# mozilla-django-oidc's endpoint settings and the discovery document's names for them.
DISCOVERED = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",  # nosec B105 # a setting's name, not a password
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
    "OIDC_OP_LOGOUT_ENDPOINT": "end_session_endpoint",
}
_discovery_cache: dict[str, dict[str, Any]] = {}


def oidc_discovery(issuer: str) -> dict[str, Any]:
    """The issuer's /.well-known/openid-configuration, fetched once per process."""
    if issuer not in _discovery_cache:
        response = requests.get(  # nosec B113 # timeout= below (OIDC_TIMEOUT, 10 s)
            f"{issuer}/.well-known/openid-configuration",
            timeout=getattr(settings, "OIDC_TIMEOUT", 10),
            verify=getattr(settings, "OIDC_VERIFY_SSL", True),
        )
        response.raise_for_status()
        document = response.json()
        if document.get("issuer", "").rstrip("/") != issuer:
            raise ImproperlyConfigured(
                f"The discovery document of {issuer} names another issuer: {document.get('issuer')!r}."
            )
        _discovery_cache[issuer] = document
    return _discovery_cache[issuer]


def oidc_setting(attr: str, *default: Any) -> Any:
    """A mozilla-django-oidc setting; endpoints not set explicitly come from issuer discovery."""
    if hasattr(settings, attr):
        return getattr(settings, attr)
    issuer = getattr(settings, "CANOPY_OIDC_ISSUER", "")
    if attr in DISCOVERED and issuer:
        value = oidc_discovery(issuer).get(DISCOVERED[attr])
        if value or default:
            return value or default[0]
    if default:
        return default[0]
    raise ImproperlyConfigured(f"Setting {attr} not found")


class OIDCBackend(OIDCAuthenticationBackend):
    """Users are matched by the username claim (not e-mail), created on first sign-in, and their
    groups set from the group claim at each sign-in."""

    get_settings = staticmethod(oidc_setting)

    def _username(self, claims: dict[str, Any]) -> str:
        return str(claims.get(self.get_settings("CANOPY_OIDC_USERNAME_CLAIM")) or "")[:150]

    def describe_user_by_claims(self, claims: dict[str, Any]) -> str:
        return f"username {self._username(claims)}"

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return bool(self._username(claims))

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        return self.UserModel.objects.filter(username=self._username(claims))

    def get_username(self, claims: dict[str, Any]) -> str:
        return self._username(claims)

    def create_user(self, claims: dict[str, Any]) -> Any:
        user = self.UserModel.objects.create_user(self._username(claims), email=claims.get("email", ""))
        return self.update_user(user, claims)  # create_user leaves the password unusable

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        if user.has_usable_password():
            # A local account (a break-glass admin, say) is never taken over by a provider's claim.
            raise SuspiciousOperation(f"{user.get_username()} is a local account; sign in with its password")
        user.email = claims.get("email", user.email) or ""
        user.first_name = (claims.get("given_name") or user.first_name)[:150]
        user.last_name = (claims.get("family_name") or user.last_name)[:150]
        names = claims.get(self.get_settings("CANOPY_OIDC_GROUPS_CLAIM")) or []
        if isinstance(names, str):
            names = [names]
        staff_group = self.get_settings("CANOPY_OIDC_STAFF_GROUP")
        if staff_group:
            user.is_staff = staff_group in names
        user.save()
        groups_mirror(user=user, names=names, source="oidc")
        return user


class BreakGlassBackend(ModelBackend):
    """Local passwords with CANOPY_LOCAL_LOGIN=false: only active superusers, so platform admins can
    still get in when the directory or the identity provider is down."""

    def user_can_authenticate(self, user: Any) -> bool:
        return bool(super().user_can_authenticate(user) and user.is_superuser)
