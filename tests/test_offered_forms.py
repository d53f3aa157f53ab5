"""Issue 18, point 8: no page offers its reader a form or a button they may not use.

For each role (platform admin, tenant admins high and low, member, viewer, someone with no role),
the console is read the way a person finds it: from the home page, following every link and
button it shows (the side menu, the tree, the tabs, the actions), and on every page each form that
posts (and each element that posts with htmx) is sent as the browser would send it: as it stands,
then with its empty fields filled in (so a view that reads the form before it refuses cannot hide
behind a form error). None answers 403 or 404, nor does any link the pages offer. Every post is
rolled back, so each page is judged on the same world.
"""

from __future__ import annotations

import copy
import datetime
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from provisioning import services as provisioning_services
from quotas import services as quota_services
from tenants import services
from tests.tenants.test_api_permissions import person

pytestmark = pytest.mark.django_db

ROLES = ["platform", "dept_admin", "dev1_admin", "bob", "dev1_viewer", "outsider"]
# Not the console's pages: the Django admin (platform admins only, linked from the Pools page), the
# API and its docs, static files, sign-in.
NOT_CRAWLED = ("/admin/", "/api/", "/static/", "/accounts/login/", "/oidc/")
MOST_PAGES = 400  # a bound, not an expectation: the world below has far fewer


@dataclass
class Form:
    action: str
    htmx: bool
    fields: list[tuple[str, str]] = field(default_factory=list)
    # Fields left empty as the page gives them: (name, input type), filled in on the second try.
    empty: list[tuple[str, str]] = field(default_factory=list)
    selects: dict[str, list[str]] = field(default_factory=dict)
    check_url: str | None = None  # an htmx check inside the form (tenants/partials/_live_check.html)


class PageReader(HTMLParser):
    """The links (and htmx GETs) of a page and the forms that post, with what each sends."""

    def __init__(self, url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.url = url
        self.links: list[str] = []
        self.forms: list[Form] = []
        self.form: Form | None = None
        self.select: str | None = None
        self.select_chosen = False
        self.textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: value or "" for name, value in attrs}
        if tag == "a" and "href" in a:
            self.links.append(urljoin(self.url, a["href"]))
        if "hx-get" in a:
            self.links.append(urljoin(self.url, a["hx-get"]))
        if tag == "form":
            method = (a.get("method") or "get").lower()
            self.form = (
                Form(urljoin(self.url, a.get("action", "")), htmx="hx-post" in a)
                if method == "post"
                else None
            )
            if self.form is not None:
                self.forms.append(self.form)
            return
        if "hx-post" in a and tag != "form":
            if self.form is not None:
                self.form.check_url = urljoin(self.url, a["hx-post"])
            else:  # an element posting on its own
                self.forms.append(Form(urljoin(self.url, a["hx-post"]), htmx=True))
        if self.form is None or "name" not in a or "disabled" in a:
            return
        name = a["name"]
        if tag == "input":
            kind = a.get("type", "text").lower()
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.form.fields.append((name, a.get("value") or "on"))
            elif kind not in ("submit", "button", "image", "reset", "file"):
                if a.get("value"):
                    self.form.fields.append((name, a["value"]))
                else:
                    self.form.empty.append((name, kind))
        elif tag == "select":
            self.select, self.select_chosen = name, False
            self.form.selects[name] = []
        elif tag == "textarea":
            self.textarea = name
            self.form.empty.append((name, "textarea"))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.form = None
        elif tag == "select" and self.form is not None and self.select is not None:
            options = self.form.selects.pop(self.select)
            if not self.select_chosen and options:
                self.form.fields.append((self.select, options[0]))
            elif not options:
                self.form.empty.append((self.select, "select"))
            self.select = None
        elif tag == "textarea":
            self.textarea = None


class OptionReader(PageReader):
    """PageReader, with each select's options and the one selected."""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "option" and self.form is not None and self.select is not None:
            a = {name: value or "" for name, value in attrs}
            value = a.get("value", "")
            if "selected" in a and not self.select_chosen:
                self.form.fields.append((self.select, value))
                self.select_chosen = True
            if value:
                self.form.selects[self.select].append(value)
            return
        super().handle_starttag(tag, attrs)


FILLED = {"password": "a-Long-enough-passw0rd", "email": "probe@example.com", "number": "1"}


def filled(form: Form) -> list[tuple[str, str]]:
    """The form with each empty field given a plausible value."""
    return form.fields + [(name, FILLED.get(kind, "probe1")) for name, kind in form.empty]


def local(url: str) -> str | None:
    """The path and query of a link to one of the console's own pages; None for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "") or parts.netloc not in ("", "testserver"):
        return None
    if not parts.path.startswith("/") or parts.path.startswith(NOT_CRAWLED):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def post(client: Client, url: str, data: list[tuple[str, str]], *, htmx: bool) -> int:
    """Send a form and undo whatever it did: the database and the client's cookies (a sign-out)."""
    cookies = copy.deepcopy(client.cookies)
    body: dict[str, list[str]] = {}
    for name, value in data:
        body.setdefault(name, []).append(value)
    with transaction.atomic():
        response = client.post(url, body, headers={"HX-Request": "true"} if htmx else {})
        transaction.set_rollback(True)
    client.cookies = cookies
    return response.status_code


@pytest.fixture
def world(k8s_world):
    w = k8s_world
    provisioning_services.connection_set(
        acting_user=w.admin, cluster=w.cluster, spec=provisioning_services.ConnectionSpec(mode="export")
    )
    services.plan_create(acting_user=w.admin, name="gpu-small", description="1 GPU")
    services.membership_grant(acting_user=w.admin, tenant=w.dev2, group="ml-team", role="viewer")
    # Quota requests: Bob's for the platform admins (the pool is full), Tom's for department1's admins.
    quota_services.quota_request_create(
        acting_user=w.bob, tenant=w.dev1, pool=w.pool, asked={"gpu": 2}, reason="Training."
    )
    quota_services.quota_request_create(
        acting_user=w.tom, tenant=w.dev2, pool=w.pool, asked={"cpu_millicores": 10_000}, reason="Builds."
    )
    # A time-bound grant: its End now and Keep buttons are offered to those who may use them.
    services.allocation_set(
        acting_user=w.admin,
        tenant=w.dev1,
        spec=services.AllocationSpec(pool=w.pool, gpu=0),
        ends_at=timezone.now() + datetime.timedelta(days=1),
    )
    return w


@pytest.mark.parametrize("who", ROLES)
def test_no_page_offers_a_form_or_a_link_its_reader_may_not_use(world, who):
    client = Client()
    client.force_login(person(world, who))
    to_read, seen, refused, sent = ["/"], {"/"}, [], 0
    while to_read:
        url = to_read.pop(0)
        response = client.get(url, follow=True)
        if response.status_code in (403, 404) or response.status_code >= 500:
            refused.append(f"GET {url}: {response.status_code}")
            continue
        if not response.get("Content-Type", "").startswith("text/html"):
            continue
        final = response.redirect_chain[-1][0] if response.redirect_chain else url
        reader = OptionReader(urljoin("http://testserver", final))
        reader.feed(response.content.decode())
        for link in reader.links:
            path = local(link)
            if path is not None and path not in seen:
                seen.add(path)
                to_read.append(path)
        for form in reader.forms:
            action = local(form.action)
            assert action is not None, f"{url} posts outside the console: {form.action}"
            tries = [(action, form.fields, form.htmx), (action, filled(form), form.htmx)]
            if form.check_url:
                tries.append((local(form.check_url), [*form.fields, ("validate", "1")], True))
            for target, data, htmx in tries:
                status = post(client, target, data, htmx=htmx)
                sent += 1
                if status in (403, 404) or status >= 500:
                    refused.append(f"POST {target} (from {url}): {status}")
        assert len(seen) <= MOST_PAGES
    assert refused == [], f"{who} is offered what they may not use:\n" + "\n".join(refused)
    # The crawl reached the console, not only the home page.
    assert len(seen) > (5 if who == "outsider" else 10) and sent > 0
