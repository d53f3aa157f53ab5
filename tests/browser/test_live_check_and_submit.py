"""Issue 15, point 4, in Chromium against the embedded default (SQLite, portal.settings.local, as
`scripts/console.sh` runs it): someone types a new tenant and submits at once, while the check as
they type is still on its way or still waiting for its delay. The form sends one request at a time
(the submit waits for the running check), nothing fails, and every tenant is created once."""

from __future__ import annotations

import http.client
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import ConsoleErrors, sign_in
from tests.embedded import ADMIN, ADMIN_PASSWORD, embedded_console


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    with embedded_console(tmp_path_factory.mktemp("embedded-browser")) as running:
        yield running


class TimingProxy:
    """Between Chromium and the console: when each POST reached the server and when its answer came
    back, per path. The answer is recorded before it is passed on, so a browser that waits for one
    answer before sending the next request can never show two at once here; a browser that does
    not, does."""

    def __init__(self, upstream: str) -> None:
        self.windows: list[tuple[str, float, float, int]] = []  # (path, sent, answered, status)
        self._lock = threading.Lock()
        upstream_address = urlsplit(upstream)
        proxy = self

        class Forward(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                started = time.monotonic()
                connection = http.client.HTTPConnection(
                    upstream_address.hostname, upstream_address.port, timeout=60
                )
                headers = {key: value for key, value in self.headers.items() if key.lower() != "connection"}
                connection.request(self.command, self.path, body=body, headers=headers)
                answer = connection.getresponse()
                content = answer.read()
                if self.command == "POST":
                    with proxy._lock:
                        proxy.windows.append(
                            (urlsplit(self.path).path, started, time.monotonic(), answer.status)
                        )
                self.send_response_only(answer.status, answer.reason)
                for key, value in answer.getheaders():
                    if key.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(content)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(content)
                connection.close()

            do_GET = do_POST = do_HEAD = _forward

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def most_at_once(self, path: str) -> int:
        """The most POSTs to `path` the server was answering at the same moment."""
        windows = [(sent, answered) for posted_to, sent, answered, _ in self.windows if posted_to == path]
        events = sorted(
            [(sent, 1) for sent, _ in windows] + [(answered, -1) for _, answered in windows],
            key=lambda event: (event[0], event[1]),
        )
        running = most = 0
        for _, change in events:
            running += change
            most = max(most, running)
        return most

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def is_check(request) -> bool:
    return request.method == "POST" and "validate=1" in (request.post_data or "")


def type_and_submit(page, field: str, text: str, how: str) -> None:
    """Type into `field` and submit at once: while the check of the last keystroke is on its way
    to the server, or before its delay is over (the check then comes after the submit)."""
    if how == "while-checking":
        with page.expect_request(is_check):
            page.locator(field).press_sequentially(text)
        page.keyboard.press("Enter")
    else:
        page.locator(field).press_sequentially(text, delay=10)
        page.click("main form button[type=submit]")


HOW = ("while-checking", "before-the-check")


def test_typing_and_submitting_at_once_sends_one_request_at_a_time(browser, console):
    pool = console.kubernetes_pool()
    proxy = TimingProxy(console.url)
    context = browser.new_context(base_url=proxy.url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    console_errors = ConsoleErrors(context)
    page = context.new_page()
    names = [f"quick-{how}-{round_}" for round_ in range(4) for how in HOW]
    try:
        sign_in(page, ADMIN, ADMIN_PASSWORD)
        for index, name in enumerate(names):
            page.goto("/tenants/new/")
            page.check(f"#id_pool_{pool['id']}_on")
            page.fill(f"#id_pool_{pool['id']}_gpu", "1")
            page.fill(f"#id_pool_{pool['id']}_memory", "4Gi")
            type_and_submit(page, "#id_name", name, HOW[index % 2])
            expect(page.locator("h1")).to_have_text(name)
            expect(page.locator(".messages")).to_contain_text(f"Tenant {name} created.")

        # The allocations form checks as you type too.
        (tenant_id,) = console.query("SELECT id FROM tenants_tenant WHERE name = ?", names[0])[0]
        allocations = f"/tenants/{tenant_id}/allocations/"
        for gpus in range(2, 8):
            page.goto(allocations)
            page.fill(f"#id_pool_{pool['id']}_gpu", "")
            type_and_submit(page, f"#id_pool_{pool['id']}_gpu", str(gpus), HOW[gpus % 2])
            expect(page.locator(".messages")).to_contain_text(f"Allocations of {names[0]} saved.")
            assert console.query("SELECT gpu FROM tenants_allocation WHERE tenant_id = ?", tenant_id) == [
                (gpus,)
            ]
        page.wait_for_load_state("networkidle")
    finally:
        context.close()
        proxy.close()

    console_errors.check()
    for path, submits in (("/tenants/new/", len(names)), (allocations, 6)):
        statuses = [status for posted_to, _, _, status in proxy.windows if posted_to == path]
        assert len(statuses) >= 2 * submits, (path, statuses)  # a check and a submit for each, at least
        assert proxy.most_at_once(path) == 1, (
            f"the server answered {proxy.most_at_once(path)} POSTs to {path} at once"
        )
        assert all(status < 500 for status in statuses), (path, statuses)
    created = console.query("SELECT name FROM tenants_tenant WHERE name LIKE 'quick-%'")
    assert sorted(name for (name,) in created) == sorted(names)


def test_choosing_a_parent_and_submitting_at_once_sends_one_request_at_a_time(browser, console):
    """Issue 18, point 1: another parent redraws the form (a check with redraw=1). A submit right
    after the choice waits for the redraw, then sends what the redrawn form holds: the tenant is
    made once, under the parent just chosen, with the amounts typed before."""
    pool = console.kubernetes_pool("parents-cluster")
    headers = {"Authorization": f"Token {console.api_token()}"}
    parent = requests.post(
        f"{console.url}/api/v1/tenants/",
        json={"parent": None, "name": "parents", "allocations": [{"pool": pool["id"], "gpu": 100}]},
        headers=headers,
        timeout=30,
    )
    assert parent.status_code == 201, parent.text
    proxy = TimingProxy(console.url)
    context = browser.new_context(base_url=proxy.url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    console_errors = ConsoleErrors(context)
    page = context.new_page()
    names = [f"kid-{round_}" for round_ in range(4)]
    try:
        sign_in(page, ADMIN, ADMIN_PASSWORD)
        for name in names:
            page.goto("/tenants/new/")
            page.fill("#id_name", name)
            page.check(f"#id_pool_{pool['id']}_on")
            page.fill(f"#id_pool_{pool['id']}_gpu", "1")
            with page.expect_request(lambda r: "redraw=1" in (r.post_data or "")):
                page.select_option("#id_parent", str(parent.json()["id"]))
            page.click("main form button[type=submit]")
            expect(page.locator("h1")).to_have_text(name)
            expect(page.locator(".messages")).to_contain_text(f"Tenant parents/{name} created.")
        page.wait_for_load_state("networkidle")
    finally:
        context.close()
        proxy.close()

    console_errors.check()
    statuses = [status for posted_to, _, _, status in proxy.windows if posted_to == "/tenants/new/"]
    assert len(statuses) >= 2 * len(names), statuses  # a redraw and a submit for each, at least
    assert proxy.most_at_once("/tenants/new/") == 1
    assert all(status < 500 for status in statuses), statuses
    created = console.query(
        "SELECT t.name_path, a.gpu FROM tenants_tenant t JOIN tenants_allocation a ON a.tenant_id = t.id "
        "WHERE t.name LIKE 'kid-%'"
    )
    assert sorted(created) == [(f"parents/{name}", 1) for name in names]
