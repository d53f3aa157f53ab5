"""API tokens: django-rest-knox stores a SHA-512 digest of each token, never the token."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication as KnoxTokenAuthentication


class TokenAuthentication(KnoxTokenAuthentication):
    """`Authorization: Token <key>` in one query, like DRF's own token check.

    knox also reads every other token of the user on each request to delete the expired ones; here
    an expired token is deleted when it is presented, and the user's other expired tokens when they
    are given a new one (`services.api_token_issue`).
    """

    def _cleanup_token(self, auth_token: Any) -> bool:
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            auth_token.delete()
            return True
        return False


class TokenScheme(OpenApiAuthenticationExtension):
    """The same `Authorization: Token <key>` scheme in the OpenAPI document as before knox."""

    target_class = "identity.tokens.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix=self.target.authenticate_header(None)
        )
