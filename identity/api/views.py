"""Identity's part of /api/v1/ (included from portal/urls.py beside tenants' and provisioning's): the
API token endpoint, signing yourself out everywhere, and a platform admin revoking a user's tokens."""

from __future__ import annotations

from django.contrib.auth import user_logged_in
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from identity import services
from tenants import selectors as tenant_selectors
from tenants.addresses import client_address


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
        key, expiry = services.api_token_issue(acting_user=user, address=client_address(request))
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


class UserTokensRevokeView(APIView):
    """Platform admins: revoke every API token of this user (audited; their console sessions stay).
    Resetting the password or deactivating the user revokes tokens and sessions too."""

    def get_queryset(self) -> QuerySet:
        """The users the requester may see (the rest are a 404); also gives the schema the id's model."""
        return tenant_selectors.user_list(user=self.request.user)

    @extend_schema(request=None, responses={200: REVOCATION_SCHEMA})
    def post(self, request: Request, pk: int) -> Response:
        user = get_object_or_404(self.get_queryset(), pk=pk)
        revoked = services.api_tokens_revoke(acting_user=request.user, user=user)
        return Response({"tokens": revoked.tokens, "sessions": revoked.sessions})
