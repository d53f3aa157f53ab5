"""Save screenshots of the console for the README: the tenant tree, a tenant's Resources tab, the new
tenant form with a parent chosen, My access (also as a phone shows it) and a member's kubeconfig
help, from the demo data, in Debian's Chromium. Names after the folder save only those (the others
stay as they are):

    .venv/bin/python -m tests.browser.screenshots [docs/screenshots [kubeconfig-help.png ...]]

Runs the console on a throw-away SQLite database, so it needs no PostgreSQL.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CANOPY_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _manage(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout


def _create_form_with_a_parent(page) -> None:
    """The new tenant form as a platform admin fills it in: from the tree's root, a parent chosen
    (the form redraws with what that parent has left of each pool), a name typed."""
    page.goto("/tenants/")
    page.click(".tree-panel a:has-text('New level-1 tenant')")
    page.select_option("#id_parent", label="department1")
    page.locator("h1", has_text="New sub-tenant of department1").wait_for()
    page.fill("#id_name", "research")
    page.wait_for_load_state("networkidle")


def main(out_dir: str = "docs/screenshots", *only: str) -> None:
    out = (ROOT / out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings.local",
            "DATABASE_URL": f"sqlite:///{tmp}/screenshots.sqlite3",
        }
        env.pop("REDIS_URL", None)
        _manage(env, "migrate", "--no-input", "-v", "0")
        printed = _manage(env, "load_demo")
        admin_password = re.search(r"Platform admin:\s+\S+ / (\S+)", printed).group(1)
        user_password = re.search(r"Demo users:.* / (\S+)", printed).group(1)
        _manage(env, "demo_usage", "--backfill-days", "30")  # DEMO ONLY: invented usage for the charts
        _manage(env, "demo_quota_requests")  # Bob's open request, as scripts/console.sh makes it
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"{base}/accounts/login/", timeout=1)
                    break
                except OSError:
                    time.sleep(0.2)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                desktop = {"viewport": {"width": 1400, "height": 860}}
                # A phone (issue 18, point 10): 390 x 844 CSS pixels, drawn at twice the density.
                phone = {
                    "viewport": {"width": 390, "height": 844},
                    "is_mobile": True,
                    "has_touch": True,
                    "device_scale_factor": 2,
                }
                shots = [
                    (
                        "admin",
                        admin_password,
                        desktop,
                        [
                            ("tenant-tree.png", "department1", None),
                            ("tenant-resources.png", "department1/dev2", "resources"),
                            ("yarn-resources.png", "t1", "resources"),
                            ("tenant-monitoring.png", "department1", "monitoring"),
                            ("usage-overview.png", "/overview/", None),
                            ("tenant-create.png", _create_form_with_a_parent, None),
                            # Issue 19: the month's showback, the requests to decide, idle quota.
                            ("showback.png", "/showback/", None),
                            ("quota-request.png", "/requests/", "table a >> nth=0"),
                            ("idle-quota.png", "/idle-quota/", None),
                        ],
                    ),
                    (
                        "bob",
                        user_password,
                        desktop,
                        [
                            ("my-access.png", None, None),
                            # From My access, as a member finds it: the example of the export backend.
                            ("kubeconfig-help.png", "/me/", ".kubeconfig-links a >> nth=0"),
                        ],
                    ),
                    ("bob", user_password, phone, [("phone-my-access.png", None, None)]),
                ]
                for username, password, device, pages in shots:
                    pages = [shot for shot in pages if not only or shot[0] in only]
                    if not pages:
                        continue
                    page = browser.new_page(base_url=base, **device)
                    page.goto("/accounts/login/")
                    page.fill("#id_username", username)
                    page.fill("#id_password", password)
                    page.click("button[type=submit]")
                    page.wait_for_load_state("networkidle")
                    for name, tenant_path, tab in pages:
                        if callable(tenant_path):
                            tenant_path(page)  # a page reached by what a person does on it
                        elif tenant_path and tenant_path.startswith("/"):
                            page.goto(tenant_path)
                            page.wait_for_load_state("networkidle")
                            if tab:  # a link to follow from there
                                page.click(tab)
                                page.wait_for_load_state("networkidle")
                        elif tenant_path:
                            page.goto("/tenants/")
                            # Walk down the tree as a person would: each click opens the next level.
                            parts = tenant_path.split("/")
                            for depth in range(1, len(parts) + 1):
                                page.click(f"[data-tenant='{'/'.join(parts[:depth])}'] a >> nth=0")
                                page.wait_for_load_state("networkidle")
                            if tab:
                                page.goto(page.url.split("?")[0] + f"?tab={tab}")
                            page.wait_for_load_state("networkidle")
                        page.screenshot(path=str(out / name))
                        print(f"saved {out / name}")
                    page.close()
                browser.close()
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main(*sys.argv[1:])
