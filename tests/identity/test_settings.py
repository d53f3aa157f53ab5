"""The CANOPY_LDAP_* / CANOPY_OIDC_* environment turned into settings, and the sign-in page's methods."""

import environ
import pytest
from django_auth_ldap.config import GroupOfNamesType, LDAPSearch, NestedActiveDirectoryGroupType

from identity import BREAK_GLASS_BACKEND, LDAP_BACKEND, LOCAL_BACKEND, LOCKOUT_BACKEND, OIDC_BACKEND
from portal.settings import integrations
from tests.identity.helpers import configured, env_of, integration_settings

LDAP_ENV = {
    "CANOPY_LDAP_SERVER_URI": "ldaps://dc1.corp.example:636",
    "CANOPY_LDAP_USER_SEARCH_BASE": "ou=people,dc=corp,dc=example",
}


def test_nothing_configured_keeps_local_accounts_only():
    assert integration_settings({})["AUTHENTICATION_BACKENDS"] == [LOCKOUT_BACKEND, LOCAL_BACKEND]


def test_the_sign_in_rate_limit_comes_first_then_ldap_and_oidc_before_local_accounts():
    backends = integration_settings(
        {**LDAP_ENV, "CANOPY_OIDC_CLIENT_ID": "canopy", "CANOPY_OIDC_ISSUER": "https://sso.example/"}
    )["AUTHENTICATION_BACKENDS"]
    assert backends == [LOCKOUT_BACKEND, LDAP_BACKEND, OIDC_BACKEND, LOCAL_BACKEND]


def test_local_login_off_leaves_the_break_glass_backend():
    assert integration_settings({"CANOPY_LOCAL_LOGIN": "false"})["AUTHENTICATION_BACKENDS"] == [
        LOCKOUT_BACKEND,
        BREAK_GLASS_BACKEND,
    ]


def test_active_directory_settings():
    settings = integrations.ldap_settings(
        env_of(
            {
                **LDAP_ENV,
                "CANOPY_LDAP_USER_SEARCH_FILTER": "(sAMAccountName=%(user)s)",
                "CANOPY_LDAP_GROUP_SEARCH_BASE": "ou=groups,dc=corp,dc=example",
                "CANOPY_LDAP_GROUP_TYPE": "activeDirectory",
            }
        )
    )
    assert isinstance(settings["AUTH_LDAP_USER_SEARCH"], LDAPSearch)
    assert settings["AUTH_LDAP_USER_SEARCH"].filterstr == "(sAMAccountName=%(user)s)"
    assert isinstance(settings["AUTH_LDAP_GROUP_TYPE"], NestedActiveDirectoryGroupType)
    assert settings["AUTH_LDAP_GROUP_SEARCH"].filterstr == "(objectClass=group)"
    # Canopy's LDAP backend mirrors the groups (names checked, changes audited), not django-auth-ldap.
    assert settings["CANOPY_LDAP_MIRROR_GROUPS"] is True and "AUTH_LDAP_MIRROR_GROUPS" not in settings


def test_default_group_type_is_group_of_names():
    settings = integrations.ldap_settings(env_of({**LDAP_ENV, "CANOPY_LDAP_GROUP_SEARCH_BASE": "ou=g"}))
    assert isinstance(settings["AUTH_LDAP_GROUP_TYPE"], GroupOfNamesType)


@pytest.mark.parametrize(
    "env",
    [
        {"CANOPY_LDAP_SERVER_URI": "ldap://dc1"},  # no user search base
        {**LDAP_ENV, "CANOPY_LDAP_GROUP_TYPE": "nis"},
        {"CANOPY_OIDC_CLIENT_ID": "canopy"},  # neither issuer nor endpoints
    ],
)
def test_incomplete_settings_are_refused(env):
    with pytest.raises(environ.ImproperlyConfigured):
        integration_settings(env)


def test_explicit_oidc_endpoints_without_discovery():
    settings = integrations.oidc_settings(
        env_of(
            {
                "CANOPY_OIDC_CLIENT_ID": "canopy",
                "CANOPY_OIDC_AUTHORIZATION_ENDPOINT": "https://sso.example/auth",
                "CANOPY_OIDC_TOKEN_ENDPOINT": "https://sso.example/token",
                "CANOPY_OIDC_USERINFO_ENDPOINT": "https://sso.example/me",
                "CANOPY_OIDC_JWKS_ENDPOINT": "https://sso.example/jwks",
                "CANOPY_OIDC_GROUPS_CLAIM": "roles",
            }
        )
    )
    assert settings["OIDC_OP_TOKEN_ENDPOINT"] == "https://sso.example/token"
    assert settings["CANOPY_OIDC_GROUPS_CLAIM"] == "roles"
    assert settings["OIDC_RP_SCOPES"] == "openid email profile groups"


@pytest.mark.django_db
def test_sign_in_page_shows_the_configured_methods(client):
    oidc = {"CANOPY_OIDC_CLIENT_ID": "canopy", "CANOPY_OIDC_ISSUER": "https://sso.example"}
    with configured({**oidc, "CANOPY_OIDC_PROVIDER_NAME": "Corp SSO"}):
        page = client.get("/accounts/login/").content.decode()
    assert "Sign in with Corp SSO" in page
    assert "Break-glass" not in page
    assert 'id="id_password"' in page

    with configured({**oidc, "CANOPY_LOCAL_LOGIN": "false"}):
        page = client.get("/accounts/login/").content.decode()
    assert "Sign in with single sign-on" in page
    assert "Break-glass sign-in for platform administrators" in page

    with configured(oidc):
        page = client.get("/accounts/login/?failed=oidc").content.decode()
    assert "Signing in with single sign-on did not succeed" in page

    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with" not in page
    assert "Break-glass" not in page
