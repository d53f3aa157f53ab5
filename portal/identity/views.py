"""The sign-in page offers every configured method, and OpenID Connect's views use discovery."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from mozilla_django_oidc import views as oidc_views

from portal.identity import LDAP_BACKEND, LOCAL_BACKEND, OIDC_BACKEND
from portal.identity.backends import oidc_setting


def sign_in_methods() -> dict[str, Any]:
    """What the sign-in page shows: the provider button, the password form and whether that form is
    only the break-glass way in for platform administrators."""
    backends = settings.AUTHENTICATION_BACKENDS
    ldap = LDAP_BACKEND in backends
    local = LOCAL_BACKEND in backends
    return {
        "oidc_provider": getattr(settings, "CANOPY_OIDC_PROVIDER_NAME", "")
        if OIDC_BACKEND in backends
        else "",
        "ldap": ldap,
        "password_form": ldap or local,
        "break_glass_only": not (ldap or local),
    }


class LoginView(auth_views.LoginView):
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(sign_in_methods())
        context["oidc_failed"] = self.request.GET.get("failed") == "oidc"
        return context


class OIDCAuthenticationRequestView(oidc_views.OIDCAuthenticationRequestView):
    get_settings = staticmethod(oidc_setting)


class OIDCAuthenticationCallbackView(oidc_views.OIDCAuthenticationCallbackView):
    get_settings = staticmethod(oidc_setting)
