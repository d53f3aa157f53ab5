"""Settings built from an environment exactly as portal/settings/integrations.py builds them."""

from __future__ import annotations

from typing import Any

import environ
from django.test import override_settings

from portal.settings import integrations


def env_of(values: dict[str, str]) -> environ.Env:
    env = environ.Env()
    env.ENVIRON = values
    return env


def integration_settings(values: dict[str, str]) -> dict[str, Any]:
    env = env_of(values)
    ldap = integrations.ldap_settings(env)
    oidc = integrations.oidc_settings(env)
    local = env.bool("CANOPY_LOCAL_LOGIN", default=True)
    return {
        **ldap,
        **oidc,
        "CANOPY_LOCAL_LOGIN": local,
        "AUTHENTICATION_BACKENDS": integrations.authentication_backends(
            ldap=bool(ldap), oidc=bool(oidc), local_login=local
        ),
    }


def configured(values: dict[str, str]) -> override_settings:
    """override_settings for this environment's sign-in methods."""
    return override_settings(**integration_settings(values))
