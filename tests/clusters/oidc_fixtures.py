"""pytest plugin: a real OpenID provider (panva's oidc-provider on Node.js) for the whole session.

Register with ``pytest_plugins = ["tests.clusters.oidc_fixtures"]``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.clusters.oidc import OidcProvider


@pytest.fixture(scope="session")
def oidc_provider(live_server) -> Iterator[OidcProvider]:
    """The provider, with Canopy's live server registered as its client; stopped at the end."""
    provider = OidcProvider(redirect_uri=f"{live_server.url}/oidc/callback/")
    try:
        yield provider.start()
    finally:
        provider.stop()
