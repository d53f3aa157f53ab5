"""Issue 18, point 6, in Chromium: Suspend asks first in a dialog that says what it does to running
work and to the subtree, and Resume in one that says what starts again; Delete and other actions
that take something away are red; every button shows it is busy while its request runs (a plain
form post, an htmx form, an htmx link)."""

import re

import pytest
from playwright.sync_api import expect

from tenants import services
from tenants.models import Tenant
from tests.browser.conftest import pick_member, sign_in
from tests.tenants.builders import build_k8s_world

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

DANGER_RED = "rgb(207, 34, 46)"  # --canopy-bad


class HeldRequests:
    """Requests matching a URL pattern wait here until the test lets them go, so the test can look
    at the page while they run."""

    def __init__(self, page, pattern: str, method: str = "POST") -> None:
        self.routes = []
        self.page, self.pattern = page, pattern

        def hold(route):
            if route.request.method == method:
                self.routes.append(route)
            else:
                route.continue_()

        self._hold = hold
        page.route(pattern, hold)

    def wait(self) -> None:
        for _ in range(200):
            if self.routes:
                return
            self.page.wait_for_timeout(25)
        raise AssertionError(f"no request to {self.pattern} was sent")

    def release(self) -> None:
        for route in self.routes:
            route.continue_()
        self.page.unroute(self.pattern, self._hold)


def watch_busy(page, selector: str, *, click_again: bool = False) -> list[str]:
    """Every change of the aria-busy of `selector`, as the page reports it on its console: while a
    form post is on its way Playwright's own calls wait for the next page, which the test holds
    back. `click_again`: the page clicks the button once more as soon as it is busy."""
    changes: list[str] = []
    page.on("console", lambda m: changes.append(m.text[5:]) if m.text.startswith("busy:") else None)
    page.evaluate(
        """([selector, again]) => {
            const button = document.querySelector(selector);
            new MutationObserver(() => {
                const busy = button.getAttribute("aria-busy");
                console.log("busy:" + busy);
                if (again && busy === "true") { again = false; setTimeout(() => button.click()); }
            }).observe(button, {attributes: true, attributeFilter: ["aria-busy"]});
        }""",
        [selector, click_again],
    )
    return changes


def wait_until(page, condition) -> None:
    for _ in range(200):
        if condition():
            return
        page.wait_for_timeout(25)
    raise AssertionError("the page never got there")


def state_of(*tenants: Tenant) -> list[str]:
    return [Tenant.objects.get(pk=t.pk).state for t in tenants]


def test_suspend_asks_first_and_says_what_happens_to_running_work_and_the_subtree(page, platform_admin):
    w = build_k8s_world(platform_admin)
    interns = services.tenant_create(acting_user=platform_admin, parent=w.dev2, name="interns")
    sign_in(page, platform_admin.username)
    page.goto(f"/tenants/{w.department1.pk}/")
    dialog = page.locator("dialog#suspend-dialog")
    expect(dialog).to_be_hidden()

    page.click("button:has-text('Suspend…')")
    expect(dialog).to_be_visible()
    assert page.evaluate("document.getElementById('suspend-dialog').matches(':modal')")
    expect(dialog.locator("h2")).to_have_text("Suspend department1 and its 3 sub-tenants?")
    expect(dialog).to_contain_text("Every tenant below department1, at every level, is suspended with it")
    expect(dialog).to_contain_text("No new work starts; work already running keeps running.")
    expect(dialog).to_contain_text("pods: 0")
    expect(dialog).to_contain_text("stopPolicy: Hold")
    expect(dialog).to_contain_text("STOPPED")
    assert state_of(w.department1, w.dev1, w.dev2, interns) == ["active"] * 4  # asking changed nothing

    dialog.locator("button:has-text('Cancel')").click()
    expect(dialog).to_be_hidden()
    assert state_of(w.department1) == ["active"]

    page.click("button:has-text('Suspend…')")
    confirm = dialog.locator("button[type=submit]")
    expect(confirm).to_have_text("Suspend 4 tenants")
    assert confirm.evaluate("b => getComputedStyle(b).backgroundColor") == DANGER_RED
    busy = watch_busy(page, "#suspend-dialog button[type=submit]")
    held = HeldRequests(page, "**/state/")
    confirm.click(no_wait_after=True)
    held.wait()
    wait_until(page, lambda: busy == ["true"])  # busy while the post runs
    held.release()
    expect(page.locator(".messages")).to_contain_text("department1 and its sub-tenants are now suspended.")
    assert state_of(w.department1, w.dev1, w.dev2, interns) == ["suspended"] * 4
    # A suspended tenant offers Resume, which asks first as well.
    expect(page.locator("button:has-text('Suspend…')")).to_have_count(0)
    expect(page.locator("dialog#suspend-dialog")).to_have_count(0)
    resume = page.locator("dialog#resume-dialog")
    expect(resume).to_be_hidden()
    page.click(".tenant-head button:has-text('Resume…')")
    expect(resume).to_be_visible()
    assert page.evaluate("document.getElementById('resume-dialog').matches(':modal')")
    expect(resume.locator("h2")).to_have_text("Resume department1 and its 3 sub-tenants?")
    expect(resume).to_contain_text("Every tenant below department1, at every level, becomes active with it")
    expect(resume).to_contain_text("New work may start again")
    expect(resume).to_contain_text("stopPolicy: None")
    expect(resume).to_contain_text("RUNNING")
    resume.locator("button:has-text('Cancel')").click()
    expect(resume).to_be_hidden()
    assert state_of(w.department1, interns) == ["suspended", "suspended"]  # asking changed nothing

    page.click(".tenant-head button:has-text('Resume…')")
    confirm = resume.locator("button[type=submit]")
    expect(confirm).to_have_text("Resume 4 tenants")
    assert confirm.evaluate("b => getComputedStyle(b).backgroundColor") != DANGER_RED
    busy = watch_busy(page, "#resume-dialog button[type=submit]")
    held = HeldRequests(page, "**/state/")
    confirm.click(no_wait_after=True)
    held.wait()
    wait_until(page, lambda: busy == ["true"])
    held.release()
    expect(page.locator(".messages")).to_contain_text("department1 and its sub-tenants are now active.")
    assert state_of(w.department1, w.dev1, w.dev2, interns) == ["active"] * 4
    expect(page.locator("dialog#resume-dialog")).to_have_count(0)

    # A leaf says it goes alone.
    page.goto(f"/tenants/{w.dev1.pk}/")
    page.click("button:has-text('Suspend…')")
    expect(dialog.locator("h2")).to_have_text("Suspend department1/dev1?")
    expect(dialog).to_contain_text("department1/dev1 has no sub-tenants: only it is suspended.")
    expect(dialog.locator("button[type=submit]")).to_have_text("Suspend dev1")


def test_actions_that_take_something_away_are_red(page, platform_admin):
    w = build_k8s_world(platform_admin)
    sign_in(page, platform_admin.username)
    page.goto(f"/tenants/{w.dev2.pk}/")
    delete = page.locator(".tenant-head a:has-text('Delete')")
    assert delete.evaluate("a => getComputedStyle(a).color") == DANGER_RED
    assert delete.evaluate("a => getComputedStyle(a).borderColor") == DANGER_RED
    for harmless in ("Edit allocations", "Apply plan", "Suspend"):
        colour = page.locator(f".tenant-head :is(a, button):has-text('{harmless}')").evaluate(
            "e => getComputedStyle(e).color"
        )
        assert colour != DANGER_RED, harmless
    delete.click()
    expect(page).to_have_url(re.compile(r"/delete/$"))
    assert (
        page.locator("main form button[type=submit]").evaluate("b => getComputedStyle(b).backgroundColor")
        == DANGER_RED
    )
    page.goto(f"/tenants/{w.dev2.pk}/?tab=members")
    remove = page.locator("[data-member='user:tom'] button:has-text('Remove')")
    assert remove.evaluate("b => getComputedStyle(b).color") == DANGER_RED
    page.goto("/users/")
    revoke = page.locator("button:has-text('Revoke API tokens')").first
    assert revoke.evaluate("b => getComputedStyle(b).color") == DANGER_RED


def test_buttons_are_busy_while_their_request_runs(page, platform_admin):
    w = build_k8s_world(platform_admin)
    sign_in(page, platform_admin.username)

    # An htmx form (checked as you type, sent with htmx): its submit button, until the answer.
    page.goto(f"/tenants/{w.dev2.pk}/allocations/")
    page.wait_for_load_state("networkidle")
    save = page.locator("button:has-text('Save allocations')")
    held = HeldRequests(page, "**/allocations/")
    save.click(no_wait_after=True)
    held.wait()
    expect(save).to_have_attribute("aria-busy", "true")
    held.release()
    expect(page.locator(".messages")).to_contain_text("Allocations of department1/dev2 saved.")

    # An htmx link (a tab): busy until its fragment is in, then not.
    tab = page.locator("nav.tabs a:has-text('Members')")
    held = HeldRequests(page, re.compile(r"\?tab=members"), method="GET")
    tab.click(no_wait_after=True)
    held.wait()
    expect(tab).to_have_attribute("aria-busy", "true")
    held.release()
    expect(page.locator("#add-member")).to_be_visible()
    expect(tab).not_to_have_attribute("aria-busy", "true")

    # A plain form post: busy until the next page; a second click sends nothing more.
    add = page.locator("#add-member")
    pick_member(page, "bob", "user:bob")
    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    busy = watch_busy(page, "#add-member button[type=submit]", click_again=True)
    held = HeldRequests(page, "**/members/")
    add.locator("button:has-text('Add member')").click(no_wait_after=True)
    held.wait()
    wait_until(page, lambda: busy == ["true"])
    page.wait_for_timeout(200)  # time for the second click to send something, if it could
    held.release()
    expect(page.locator(".messages")).to_contain_text("bob is now member of department1/dev2")
    assert [url for url in posts if url.endswith("/members/")] == [f"{page.url.split('?')[0]}members/"]
