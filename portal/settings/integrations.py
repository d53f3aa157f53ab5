"""Signing in with the company's identity: LDAP / Active Directory and OpenID Connect.

Each integration is on only when its environment variables are set (docs/authentication.md).
`ldap_settings(env)` and `oidc_settings(env)` turn an environment into Django settings so the tests
can configure a real directory or provider the same way a deployment does.
"""

from __future__ import annotations

from typing import Any

import environ

from identity import (
    BREAK_GLASS_BACKEND,
    LDAP_BACKEND,
    LOCAL_BACKEND,
    LOCKOUT_BACKEND,
    OIDC_BACKEND,
)

env = environ.Env()

LDAP_GROUP_TYPES = {
    "groupOfNames": "GroupOfNamesType",
    "groupOfUniqueNames": "GroupOfUniqueNamesType",
    "posixGroup": "PosixGroupType",
    "activeDirectory": "NestedActiveDirectoryGroupType",
    "nestedGroupOfNames": "NestedGroupOfNamesType",
}


def ldap_settings(env: environ.Env) -> dict[str, Any]:
    """AUTH_LDAP_* settings for django-auth-ldap, or {} when CANOPY_LDAP_SERVER_URI is unset."""
    uri = env("CANOPY_LDAP_SERVER_URI", default="")
    if not uri:
        return {}
    # python-ldap is only needed where LDAP is configured (it builds against libldap).
    try:
        import ldap
        from django_auth_ldap import config
    except ImportError as exc:
        raise environ.ImproperlyConfigured(
            'CANOPY_LDAP_SERVER_URI is set but python-ldap is missing: pip install ".[ldap]" '
            "(it builds against Debian's libldap2-dev and libsasl2-dev)."
        ) from exc

    user_base = env("CANOPY_LDAP_USER_SEARCH_BASE", default="")
    user_filter = env("CANOPY_LDAP_USER_SEARCH_FILTER", default="(uid=%(user)s)")
    group_base = env("CANOPY_LDAP_GROUP_SEARCH_BASE", default="")
    group_type_name = env("CANOPY_LDAP_GROUP_TYPE", default="groupOfNames")
    if group_type_name not in LDAP_GROUP_TYPES:
        raise environ.ImproperlyConfigured(
            f"CANOPY_LDAP_GROUP_TYPE must be one of {', '.join(LDAP_GROUP_TYPES)}, not {group_type_name!r}."
        )
    default_group_filter = {
        "posixGroup": "(objectClass=posixGroup)",
        "activeDirectory": "(objectClass=group)",
        "groupOfUniqueNames": "(objectClass=groupOfUniqueNames)",
    }.get(group_type_name, "(objectClass=groupOfNames)")
    options: dict[int, Any] = {
        ldap.OPT_REFERRALS: 0,  # Active Directory's referrals need a bind of their own; never follow them
        ldap.OPT_NETWORK_TIMEOUT: env.float("CANOPY_LDAP_TIMEOUT_SECONDS", default=5.0),
        ldap.OPT_TIMEOUT: env.float("CANOPY_LDAP_TIMEOUT_SECONDS", default=5.0),
    }
    ca_file = env("CANOPY_LDAP_CA_CERT_FILE", default="")
    if ca_file:
        options[ldap.OPT_X_TLS_CACERTFILE] = ca_file
        options[ldap.OPT_X_TLS_REQUIRE_CERT] = ldap.OPT_X_TLS_DEMAND
        options[ldap.OPT_X_TLS_NEWCTX] = 0  # must come last: applies the TLS options above
    result: dict[str, Any] = {
        "AUTH_LDAP_SERVER_URI": uri,
        "AUTH_LDAP_BIND_DN": env("CANOPY_LDAP_BIND_DN", default=""),
        "AUTH_LDAP_BIND_PASSWORD": env("CANOPY_LDAP_BIND_PASSWORD", default=""),
        "AUTH_LDAP_START_TLS": env.bool("CANOPY_LDAP_START_TLS", default=False),
        "AUTH_LDAP_CONNECTION_OPTIONS": options,
        "AUTH_LDAP_USER_ATTR_MAP": {
            "first_name": env("CANOPY_LDAP_ATTR_FIRST_NAME", default="givenName"),
            "last_name": env("CANOPY_LDAP_ATTR_LAST_NAME", default="sn"),
            "email": env("CANOPY_LDAP_ATTR_EMAIL", default="mail"),
        },
        "AUTH_LDAP_ALWAYS_UPDATE_USER": True,
        "AUTH_LDAP_CACHE_TIMEOUT": 0,  # group changes count at the next sign-in
    }
    dn_template = env("CANOPY_LDAP_USER_DN_TEMPLATE", default="")
    if dn_template:
        result["AUTH_LDAP_USER_DN_TEMPLATE"] = dn_template
    elif user_base:
        result["AUTH_LDAP_USER_SEARCH"] = config.LDAPSearch(user_base, ldap.SCOPE_SUBTREE, user_filter)
    else:
        raise environ.ImproperlyConfigured(
            "Set CANOPY_LDAP_USER_SEARCH_BASE (or CANOPY_LDAP_USER_DN_TEMPLATE) with CANOPY_LDAP_SERVER_URI."
        )
    if group_base:
        group_filter = env("CANOPY_LDAP_GROUP_SEARCH_FILTER", default=default_group_filter)
        result["AUTH_LDAP_GROUP_SEARCH"] = config.LDAPSearch(group_base, ldap.SCOPE_SUBTREE, group_filter)
        result["AUTH_LDAP_GROUP_TYPE"] = getattr(config, LDAP_GROUP_TYPES[group_type_name])()
        # Directory groups become Django groups of the same name; each sign-in sets the user's groups
        # to exactly the directory's, so a removal counts at the next sign-in. Canopy's backend does
        # it (identity/ldap.py: names checked, changes audited), not AUTH_LDAP_MIRROR_GROUPS.
        result["CANOPY_LDAP_MIRROR_GROUPS"] = True
        staff_group = env("CANOPY_LDAP_STAFF_GROUP_DN", default="")
        if staff_group:
            result["AUTH_LDAP_USER_FLAGS_BY_GROUP"] = {"is_staff": staff_group}
        require_group = env("CANOPY_LDAP_REQUIRE_GROUP_DN", default="")
        if require_group:
            result["AUTH_LDAP_REQUIRE_GROUP"] = require_group
    return result


def oidc_settings(env: environ.Env) -> dict[str, Any]:
    """OIDC_* settings for mozilla-django-oidc, or {} when CANOPY_OIDC_CLIENT_ID is unset.

    Endpoints come from CANOPY_OIDC_ISSUER's discovery document unless given one by one.
    """
    client_id = env("CANOPY_OIDC_CLIENT_ID", default="")
    if not client_id:
        return {}
    issuer = env("CANOPY_OIDC_ISSUER", default="").rstrip("/")
    endpoints = {
        "OIDC_OP_AUTHORIZATION_ENDPOINT": env("CANOPY_OIDC_AUTHORIZATION_ENDPOINT", default=""),
        "OIDC_OP_TOKEN_ENDPOINT": env("CANOPY_OIDC_TOKEN_ENDPOINT", default=""),
        "OIDC_OP_USER_ENDPOINT": env("CANOPY_OIDC_USERINFO_ENDPOINT", default=""),
        "OIDC_OP_JWKS_ENDPOINT": env("CANOPY_OIDC_JWKS_ENDPOINT", default=""),
    }
    if not issuer and not all(endpoints.values()):
        raise environ.ImproperlyConfigured(
            "Set CANOPY_OIDC_ISSUER (endpoints from its discovery document) or all four "
            "CANOPY_OIDC_*_ENDPOINT variables with CANOPY_OIDC_CLIENT_ID."
        )
    return {
        "OIDC_RP_CLIENT_ID": client_id,
        "OIDC_RP_CLIENT_SECRET": env("CANOPY_OIDC_CLIENT_SECRET", default=""),
        "OIDC_RP_SCOPES": env("CANOPY_OIDC_SCOPES", default="openid email profile groups"),
        "OIDC_RP_SIGN_ALGO": env("CANOPY_OIDC_SIGN_ALGO", default="RS256"),
        "OIDC_USE_PKCE": True,
        "OIDC_CREATE_USER": True,
        "OIDC_VERIFY_SSL": env.bool("CANOPY_OIDC_VERIFY_SSL", default=True),
        "OIDC_TIMEOUT": env.float("CANOPY_OIDC_TIMEOUT_SECONDS", default=10.0),
        "OIDC_STORE_ID_TOKEN": True,  # the logout endpoint needs it  # nosec B105 # a setting's name, not a password
        "LOGIN_REDIRECT_URL_FAILURE": "/accounts/login/?failed=oidc",
        "CANOPY_OIDC_ISSUER": issuer,
        **{name: value for name, value in endpoints.items() if value},
        "CANOPY_OIDC_PROVIDER_NAME": env("CANOPY_OIDC_PROVIDER_NAME", default="single sign-on"),
        "CANOPY_OIDC_USERNAME_CLAIM": env("CANOPY_OIDC_USERNAME_CLAIM", default="preferred_username"),
        "CANOPY_OIDC_GROUPS_CLAIM": env("CANOPY_OIDC_GROUPS_CLAIM", default="groups"),
        "CANOPY_OIDC_STAFF_GROUP": env("CANOPY_OIDC_STAFF_GROUP", default=""),
    }


def authentication_backends(*, ldap: bool, oidc: bool, local_login: bool) -> list[str]:
    backends = [LOCKOUT_BACKEND]
    if ldap:
        backends.append(LDAP_BACKEND)
    if oidc:
        backends.append(OIDC_BACKEND)
    backends.append(LOCAL_BACKEND if local_login else BREAK_GLASS_BACKEND)
    return backends


_ldap = ldap_settings(env)
_oidc = oidc_settings(env)
globals().update(_ldap)
globals().update(_oidc)
CANOPY_LOCAL_LOGIN = env.bool("CANOPY_LOCAL_LOGIN", default=True)
AUTHENTICATION_BACKENDS = authentication_backends(
    ldap=bool(_ldap), oidc=bool(_oidc), local_login=CANOPY_LOCAL_LOGIN
)
__all__ = [*_ldap, *_oidc, "CANOPY_LOCAL_LOGIN", "AUTHENTICATION_BACKENDS"]  # what base.py takes
