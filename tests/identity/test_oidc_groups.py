"""The OpenID Connect backend's handling of claims (the full redirect flow is in
tests/browser/test_sign_in_oidc.py)."""

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import SuspiciousOperation

from identity.backends import OIDCBackend
from tests.identity.helpers import configured

pytestmark = pytest.mark.django_db

ENV = {
    "CANOPY_OIDC_CLIENT_ID": "canopy",
    "CANOPY_OIDC_AUTHORIZATION_ENDPOINT": "https://sso.example/auth",
    "CANOPY_OIDC_TOKEN_ENDPOINT": "https://sso.example/token",
    "CANOPY_OIDC_USERINFO_ENDPOINT": "https://sso.example/me",
    "CANOPY_OIDC_JWKS_ENDPOINT": "https://sso.example/jwks",
    "CANOPY_OIDC_STAFF_GROUP": "platform-ops",
}


def claims(**extra):
    return {"sub": "x1", "preferred_username": "dana", "email": "dana@example.test", **extra}


def test_groups_claim_is_mirrored_and_follows_the_provider():
    with configured(ENV):
        backend = OIDCBackend()
        dana = backend.create_user(claims(groups=["ml-team", "platform-ops"]))
        assert set(dana.groups.values_list("name", flat=True)) == {"ml-team", "platform-ops"}
        assert dana.is_staff

        assert list(backend.filter_users_by_claims(claims())) == [dana]
        backend.update_user(dana, claims(groups=["ml-team"]))

    assert set(dana.groups.values_list("name", flat=True)) == {"ml-team"}
    assert not dana.is_staff
    assert Group.objects.filter(name="platform-ops").exists()  # the group stays, with its roles


def test_a_claim_without_a_username_is_refused():
    with configured(ENV):
        assert not OIDCBackend().verify_claims({"sub": "x1", "email": "someone@example.test"})


def test_a_local_account_is_never_taken_over_by_a_claim(make_user):
    make_user("dana", is_superuser=True, is_staff=True)
    with configured(ENV), pytest.raises(SuspiciousOperation):
        backend = OIDCBackend()
        backend.update_user(backend.filter_users_by_claims(claims())[0], claims(groups=["x"]))
