"""Browser tests: Debian's Chromium (/usr/bin/chromium) driven by Playwright for Python against
pytest-django's live server. No downloaded browser."""

import os
import re
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


class ConsoleErrors:
    """Every error a page of a browser context logs to its console and every uncaught exception in
    its scripts (issue 18: a browser test fails on any console error). A test that provokes an
    error on purpose (it opens a URL it must be refused) says so with `expect`, which also checks
    the error happened; nothing else is ever let through."""

    def __init__(self, context) -> None:
        self.errors: list[str] = []
        context.on("console", self._console)
        context.on("weberror", lambda error: self.errors.append(f"uncaught: {error.error}"))

    def _console(self, message) -> None:
        if message.type == "error":
            where = message.location.get("url", "") if message.location else ""
            self.errors.append(f"console.error: {message.text} ({where})")

    def expect(self, pattern: str) -> None:
        """The test caused the error matching `pattern` on purpose: it must be there, and goes."""
        found = [error for error in self.errors if re.search(pattern, error)]
        assert found, f"expected a console error matching {pattern!r}; got {self.errors}"
        self.errors.remove(found[0])

    def check(self) -> None:
        assert not self.errors, "the browser logged errors:\n" + "\n".join(self.errors)


def _console_page(browser, base_url: str, **context_options):
    context = browser.new_context(base_url=base_url, **context_options)
    context.set_default_timeout(10_000)
    console_errors = ConsoleErrors(context)
    in_flight = set()
    context.on("request", lambda request: in_flight.add(request))
    context.on("requestfinished", lambda request: in_flight.discard(request))
    context.on("requestfailed", lambda request: in_flight.discard(request))
    page = context.new_page()
    page.console_errors = console_errors
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
    console_errors.check()


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


@pytest.fixture
def page(browser, live_server):
    yield from _console_page(browser, live_server.url, viewport={"width": 1400, "height": 900})


PHONE = {"width": 390, "height": 844}  # issue 18, point 10


@pytest.fixture
def phone(browser, live_server):
    """A page as a phone shows it: 390 x 844 CSS pixels, touch, the page's own meta viewport."""
    yield from _console_page(
        browser, live_server.url, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=3
    )


def sign_in(page, username: str, password: str = "not-a-secret-1") -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def pick_member(page, typed: str, value: str, form: str = "#add-member") -> None:
    """In the Members tab's picker: type `typed`, wait for the entry `value` ("user:tom",
    "group:ml-team"; listed by the server or given as typed) and pick it."""
    page.locator(f"{form} .ts-control").click()
    page.locator(f"{form} .ts-control input").fill(typed)
    entry = page.locator(f"{form} .ts-dropdown [data-value='{value}']")
    entry.wait_for(state="visible")
    entry.click()
