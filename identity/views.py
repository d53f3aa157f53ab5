"""The sign-in page (saying so when the rate limit locked a name out), OpenID Connect's views with
discovery, and the console's credential pages: signing out everywhere, and a platform admin revoking a
user's API tokens from the Users page. The API's are in identity/api/views.py."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST
from mozilla_django_oidc import views as oidc_views

from identity import LDAP_BACKEND, LOCAL_BACKEND, OIDC_BACKEND, services
from identity.backends import oidc_setting
from tenants import selectors as tenant_selectors


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


class SignInForm(AuthenticationForm):
    """Django's sign-in form, saying so when the sign-in rate limit (django-axes) refused it."""

    def clean(self) -> dict[str, Any]:
        try:
            return super().clean()
        except ValidationError:
            if getattr(self.request, "axes_locked_out", False):
                raise ValidationError(services.lockout_message(), code="locked_out") from None
            raise


class LoginView(auth_views.LoginView):
    redirect_authenticated_user = True
    authentication_form = SignInForm

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(sign_in_methods())
        context["oidc_failed"] = self.request.GET.get("failed") == "oidc"
        form = context.get("form")
        if form is not None and form.has_error(NON_FIELD_ERRORS, "locked_out"):
            context["locked_out"] = services.lockout_message()
        return context

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_invalid(form)
        if form.has_error(NON_FIELD_ERRORS, "locked_out"):
            response.status_code = 429
        return response


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict[str, Any] | None
) -> HttpResponse:
    """django-axes' response to a locked-out sign-in (AXES_LOCKOUT_CALLABLE). The sign-in page and
    the token endpoint already answer 429 with the reason; other sign-in forms (the admin's) get it
    as text."""
    if original_response is not None and original_response.status_code == 429:
        return original_response
    return HttpResponse(services.lockout_message(), status=429, content_type="text/plain; charset=utf-8")


@login_required
@require_POST
def sign_out_everywhere(request: HttpRequest) -> HttpResponse:
    """The console's "Sign out everywhere": ends this session too, so back to the sign-in page."""
    revoked = services.sign_out_everywhere(acting_user=request.user)
    logout(request)
    messages.success(
        request,
        f"Signed out everywhere: {revoked.sessions} session(s) ended and {revoked.tokens} API token(s) revoked.",
    )
    return redirect(settings.LOGIN_URL)


@login_required
@require_POST
def user_revoke_tokens(request: HttpRequest, pk: int) -> HttpResponse:
    """Platform admins revoke every API token of a user, from the Users page."""
    person = get_object_or_404(tenant_selectors.user_list(user=request.user), pk=pk)
    revoked = services.api_tokens_revoke(acting_user=request.user, user=person)
    messages.success(request, f"Revoked {revoked.tokens} API token(s) of {person.get_username()}.")
    return redirect(f"{reverse('console:users')}?{urlencode({'q': person.get_username()})}")


class OIDCAuthenticationRequestView(oidc_views.OIDCAuthenticationRequestView):
    get_settings = staticmethod(oidc_setting)


class OIDCAuthenticationCallbackView(oidc_views.OIDCAuthenticationCallbackView):
    get_settings = staticmethod(oidc_setting)
