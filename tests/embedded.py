"""The embedded default as `scripts/console.sh` starts it (README): `portal.settings.local` on a
SQLite file, tasks in-process, `manage.py runserver` (threaded) in a process of its own. Only the
database file, the export folder and the port are the test's; nothing of the test settings leaks in."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
ADMIN = "admin"
ADMIN_PASSWORD = "Embedded-console-pass-1"  # noqa: S105  # nosec B105 # a throw-away test database's


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def embedded_env(directory: Path, **extra: str) -> dict[str, str]:
    """The process environment of a console started by hand: none of the test run's Django,
    database, Redis or Canopy variables."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "REDIS_", "CANOPY_"))
    }
    return {
        **clean,
        "DJANGO_SETTINGS_MODULE": "portal.settings.local",
        "DATABASE_URL": f"sqlite:///{directory / 'db.sqlite3'}",
        "CANOPY_EXPORT_DIR": str(directory / "export"),
        **extra,
    }


def manage(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout


@dataclass
class EmbeddedConsole:
    url: str
    database: Path
    log: Path

    def signed_in(self, username: str = ADMIN, password: str = ADMIN_PASSWORD) -> requests.Session:
        """A browser-like session signed in on the console's sign-in page."""
        session = requests.Session()
        session.get(f"{self.url}/accounts/login/", timeout=30).raise_for_status()
        answer = session.post(
            f"{self.url}/accounts/login/",
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            allow_redirects=False,
            timeout=30,
        )
        assert answer.status_code == 302, answer.text[:500]
        return session

    def api_token(self, username: str = ADMIN, password: str = ADMIN_PASSWORD) -> str:
        answer = requests.post(
            f"{self.url}/api/v1/auth/token/", data={"username": username, "password": password}, timeout=30
        )
        assert answer.status_code == 200, answer.text[:500]
        return answer.json()["token"]

    def kubernetes_pool(self, cluster_name: str = "gpu-cluster") -> dict:
        """A new Kubernetes cluster's default pool with room for many tenants, through the API."""
        headers = {"Authorization": f"Token {self.api_token()}"}
        cluster = requests.post(
            f"{self.url}/api/v1/clusters/",
            json={"name": cluster_name, "kind": "kubernetes"},
            headers=headers,
            timeout=30,
        )
        assert cluster.status_code == 201, cluster.text
        pools = requests.get(
            f"{self.url}/api/v1/pools/", params={"cluster": cluster.json()["id"]}, headers=headers, timeout=30
        )
        updated = requests.patch(
            f"{self.url}/api/v1/pools/{pools.json()['results'][0]['id']}/",
            json={"gpu_capacity": "1000", "cpu_capacity": "1000", "memory_capacity": "1000Gi"},
            headers=headers,
            timeout=30,
        )
        assert updated.status_code == 200, updated.text
        return updated.json()

    def query(self, sql: str, *parameters: object) -> list[tuple]:
        """Read the console's database file directly (a connection of its own, as another process)."""
        with sqlite3.connect(self.database, timeout=30) as connection:
            return connection.execute(sql, parameters).fetchall()

    def server_log(self) -> str:
        return self.log.read_text(errors="replace")


def form_token(page_html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page_html).group(1)


@contextmanager
def embedded_console(directory: Path, **extra_env: str) -> Iterator[EmbeddedConsole]:
    """Migrate a new SQLite database, add a platform admin and serve it as console.sh does."""
    directory.mkdir(parents=True, exist_ok=True)
    env = embedded_env(directory, **extra_env)
    manage(env, "migrate", "--no-input", "-v", "0")
    manage(
        {**env, "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD},
        "createsuperuser",
        "--no-input",
        "--username",
        ADMIN,
        "--email",
        "admin@example.com",
    )
    port = free_port()
    log = directory / "runserver.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    console = EmbeddedConsole(url=f"http://127.0.0.1:{port}", database=directory / "db.sqlite3", log=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, console.server_log()
            try:
                requests.get(f"{console.url}/accounts/login/", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, console.server_log()
                time.sleep(0.2)
        yield console
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
