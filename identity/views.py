"""The sign-in page (saying so when the rate limit locked a name out), OpenID Connect's views with
discovery, the API token endpoint and signing out everywhere (API and console)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout, user_logged_in
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from mozilla_django_oidc import views as oidc_views
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from identity import LDAP_BACKEND, LOCAL_BACKEND, OIDC_BACKEND, services
from identity.backends import oidc_setting


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


class ApiTokenView(APIView):
    """Exchange a user name and password for an API token: send it as `Authorization: Token <token>`.

    Each call hands out a new token, valid until `expiry` (null: never); Canopy keeps only its digest,
    so keep the token safe. Too many failed attempts lock the user name out from your address for
    a while (429).
    """

    # The credentials are in the body; no session is read, so there is no cross-site request to refuse.
    authentication_classes = ()
    permission_classes = ()
    serializer_class = AuthTokenSerializer

    @extend_schema(
        request=AuthTokenSerializer,
        responses={
            200: inline_serializer(
                "ApiToken",
                {"token": serializers.CharField(), "expiry": serializers.DateTimeField(allow_null=True)},
            ),
            400: OpenApiResponse(description="Wrong user name or password."),
            429: OpenApiResponse(description="Too many failed sign-ins from this address; try again later."),
        },
    )
    def post(self, request: Request) -> Response:
        form = AuthTokenSerializer(data=request.data, context={"request": request})
        if not form.is_valid():
            if getattr(request, "axes_locked_out", False):
                return Response({"detail": services.lockout_message()}, status=429)
            raise ApiValidationError(form.errors)
        user = form.validated_data["user"]
        # As a console sign-in does: records the last sign-in and resets the failure count.
        user_logged_in.send(sender=type(user), request=request, user=user)
        key, expiry = services.api_token_issue(acting_user=user, address=services.client_address(request))
        return Response({"token": key, "expiry": expiry})


REVOCATION_SCHEMA = inline_serializer(
    "Revocation",
    {
        "tokens": serializers.IntegerField(help_text="API tokens revoked."),
        "sessions": serializers.IntegerField(
            allow_null=True, help_text="Console sessions ended; null where sessions were left alone."
        ),
    },
)


class SignOutEverywhereView(APIView):
    """Sign yourself out everywhere: every API token you hold (the one sending this too) stops
    working and every console session you have ends. Sign in again for a new token."""

    @extend_schema(request=None, responses={200: REVOCATION_SCHEMA})
    def post(self, request: Request) -> Response:
        revoked = services.sign_out_everywhere(acting_user=request.user)
        return Response({"tokens": revoked.tokens, "sessions": revoked.sessions})


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


class OIDCAuthenticationRequestView(oidc_views.OIDCAuthenticationRequestView):
    get_settings = staticmethod(oidc_setting)


class OIDCAuthenticationCallbackView(oidc_views.OIDCAuthenticationCallbackView):
    get_settings = staticmethod(oidc_setting)
