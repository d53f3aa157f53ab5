"""A real OpenID provider for the sign-in tests: panva's oidc-provider (OpenID certified), pinned by
``oidc/package-lock.json``, installed once with ``npm ci`` into a cache and run with Node.js on a free
loopback port. ``oidc/server.mjs`` adds a small sign-in page that checks passwords and a consent page.

People: alice (groups ml-team, data-admins) and bob (ml-team).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import requests

from tests.clusters.ldap import free_port
from tests.clusters.processes import stop_process

SOURCE_DIR = Path(__file__).resolve().parent / "oidc"
CLIENT_ID = "canopy"
CLIENT_SECRET = "canopy-client-secret"  # noqa: S105 (a throw-away test provider)
ACCOUNTS = {
    "alice": {
        "password": "alice-sso-1",
        "email": "alice@example.test",
        "given_name": "Alice",
        "family_name": "Example",
        "groups": ["ml-team", "data-admins"],
    },
    "bob": {
        "password": "bob-sso-1",
        "email": "bob@example.test",
        "given_name": "Bob",
        "family_name": "Example",
        "groups": ["ml-team"],
    },
}


class OidcProviderError(RuntimeError):
    """The provider could not be installed or started."""


def installed_dir() -> Path:
    """The cache directory holding node_modules for exactly this package-lock.json."""
    lock = (SOURCE_DIR / "package-lock.json").read_bytes()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "canopy" / "oidc-provider"
    target = cache / hashlib.sha256(lock).hexdigest()[:16]
    target.mkdir(parents=True, exist_ok=True)
    # Two test runs at once install once: the second waits for the first.
    with (target.parent / f"{target.name}.lock").open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        if not (target / "node_modules" / "oidc-provider" / "package.json").exists():
            npm = shutil.which("npm")
            if npm is None:
                raise OidcProviderError("npm is missing: apt-get install nodejs npm")
            for name in ("package.json", "package-lock.json"):
                shutil.copy2(SOURCE_DIR / name, target / name)
            result = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=target,
                capture_output=True,
                text=True,
                timeout=300,
            )
            if result.returncode != 0:
                raise OidcProviderError(f"npm ci failed: {result.stderr[-2000:]}")
        shutil.copy2(SOURCE_DIR / "server.mjs", target / "server.mjs")
    return target


class OidcProvider:
    """``issuer``, ``env(**overrides)`` (Canopy's CANOPY_OIDC_* for this provider), ``stop()``."""

    def __init__(self, *, redirect_uri: str) -> None:
        self.directory = installed_dir()
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.redirect_uri = redirect_uri
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> OidcProvider:
        config = {
            "port": self.port,
            "issuer": self.issuer,
            "client": {"id": CLIENT_ID, "secret": CLIENT_SECRET, "redirect_uri": self.redirect_uri},
            "accounts": ACCOUNTS,
            "cookie_key": secrets.token_hex(16),
        }
        self.log = self.directory / f"server-{self.port}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                ["node", "server.mjs", json.dumps(config)], cwd=self.directory, stdout=log, stderr=log
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise OidcProviderError(f"the provider exited: {self.log.read_text()[-2000:]}")
            try:
                if requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1).ok:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        self.stop()
        raise OidcProviderError("the provider did not answer within 20 s")

    def env(self, **overrides: str) -> dict[str, str]:
        return {
            "CANOPY_OIDC_ISSUER": self.issuer,
            "CANOPY_OIDC_CLIENT_ID": CLIENT_ID,
            "CANOPY_OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "CANOPY_OIDC_PROVIDER_NAME": "Example SSO",
            **overrides,
        }

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None
        if getattr(self, "log", None):
            self.log.unlink(missing_ok=True)
