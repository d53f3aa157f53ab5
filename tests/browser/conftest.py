"""Browser tests: Debian's Chromium (/usr/bin/chromium) driven by Playwright for Python against
pytest-django's live server. No downloaded browser."""

import os
import shutil
import time

import pytest

# Playwright's sync API runs an event loop in this thread; the test body still uses the ORM to
# arrange data and check results, which Django would otherwise refuse next to a running loop.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CANOPY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    assert shutil.which(CHROMIUM) or os.path.exists(CHROMIUM), (
        f"{CHROMIUM} is missing: apt-get install chromium"
    )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(10_000)
    in_flight = set()
    context.on("request", lambda request: in_flight.add(request))
    context.on("requestfinished", lambda request: in_flight.discard(request))
    context.on("requestfailed", lambda request: in_flight.discard(request))
    page = context.new_page()
    yield page
    # A test may pass while the live server still handles its last request (a form posted after
    # the input already showed what the test expects). pytest-django then flushes the database
    # under that request: the flush fails and the next test finds this test's rows. So the test
    # ends only when the browser has nothing in flight.
    for _ in range(200):
        if not in_flight:
            break
        page.wait_for_timeout(50)
    assert not in_flight, f"requests still in flight after the test: {[r.url for r in in_flight]}"
    context.close()
    _wait_for_the_live_server()


def _wait_for_the_live_server(timeout: float = 10.0) -> None:
    """Wait until no other connection works in the test database. The browser may have got its last
    answer while the live server's thread still runs queries for it (or for a request the closed
    page aborted); pytest-django's flush (TRUNCATE) next to those queries deadlocks, fails, and the
    next test finds this one's rows."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    deadline = time.monotonic() + timeout
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state <> 'idle'"
            )
            (busy,) = cursor.fetchone()
        if not busy or time.monotonic() > deadline:
            return
        time.sleep(0.05)


def sign_in(page, username: str, password: str = "not-a-secret-1") -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
