"""pytest plugin: a real OpenLDAP server (Debian's slapd) for the whole test session.

Register with ``pytest_plugins = ["tests.clusters.ldap_fixtures"]``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.clusters.ldap import LdapServer


@pytest.fixture(scope="session")
def ldap_server() -> Iterator[LdapServer]:
    """slapd on a free loopback port with alice, bob and their groups; stopped at the end."""
    server = LdapServer()
    try:
        yield server.start()
    finally:
        server.stop()
