"""Signing in against LDAP / Active Directory: django-auth-ldap, with the directory's groups mirrored
by Canopy (`identity.groups.groups_mirror`) rather than by django-auth-ldap's own
AUTH_LDAP_MIRROR_GROUPS, which neither checks the names nor audits the roles that come and go.

Imported only where LDAP is configured (python-ldap is an optional extra)."""

from __future__ import annotations

import logging
from typing import Any

import ldap
from django.conf import settings
from django_auth_ldap.backend import LDAPBackend as DirectoryBackend

from identity.groups import groups_mirror

log = logging.getLogger(__name__)


class LDAPBackend(DirectoryBackend):
    def authenticate_ldap_user(self, ldap_user: Any, password: str) -> Any:
        user = super().authenticate_ldap_user(ldap_user, password)
        if user is None or not getattr(settings, "CANOPY_LDAP_MIRROR_GROUPS", False):
            return user
        try:
            names = ldap_user.group_names
        except ldap.LDAPError as error:
            # As django-auth-ldap does: someone whose groups cannot be read does not sign in with
            # the roles of groups they may have left.
            log.warning("Sign-in of %s refused: its directory groups could not be read (%s)", user, error)
            return None
        groups_mirror(user=user, names=names, source="ldap")
        return user
