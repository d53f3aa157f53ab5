"""Issue 18, point 10, in Chromium as a phone (390 x 844): every page of the console, as a platform
admin, a tenant admin and a member, scrolls only up and down (tables scroll inside themselves), and
every button, tab and link of its actions can be brought into view and tapped.

Every URL the console answers (but the Django admin and the API) is either visited here or says why
it is not a page; a new URL fails this test until it is one or the other."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver
from playwright.sync_api import expect

from provisioning import services as provisioning_services
from quotas.models import QuotaRequest
from tenants.demo import load_demo
from tenants.models import Cluster, QuotaPlan, ResourcePool, Tenant
from tests.browser.conftest import PHONE, sign_in

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

TABS = ("summary", "resources", "storage", "subtenants", "members", "clusters", "monitoring", "audit")

# Routes that are not pages a person opens: what each is instead.
NOT_PAGES = {
    "tenants/<id:pk>/children/": "a fragment of the tree (drawn inside the tenant page, checked there)",
    "tenants/<id:pk>/state/": "POST only (suspend, resume: the dialog is checked on the tenant page)",
    "tenants/<id:pk>/usage.csv": "a CSV download",
    "audit.csv": "a CSV download (the Audit page's link)",
    "tenants/<id:pk>/members/": "POST only (the Members tab's form)",
    "tenants/<id:pk>/members/choices/": "JSON for the Members tab's picker (checked in its browser test)",
    "tenants/<id:pk>/services/": "POST only (the Services tab's form)",
    "tenant-services/<id:pk>/remove/": "POST only (the Services tab's button)",
    "memberships/<id:pk>/role/": "POST only (the Members tab's form)",
    "memberships/<id:pk>/remove/": "POST only (the Members tab's button)",
    "users/grant/": "POST only (the Users page's form)",
    "users/<id:pk>/revoke-tokens/": "POST only (the Users page's button)",
    "tenants/<id:pk>/push/": "POST only (the Clusters tab's button)",
    "tenants/<id:pk>/kubeconfig/<id:cluster_id>/": "a kubeconfig download",
    "clusters/<id:pk>/test/": "POST only (the Resource pools page's button; its answer is drawn there)",
    "clusters/<id:pk>/hadoop-files/<str:name>": "a file download (capacity-scheduler.xml, hdfs-setup.sh)",
    "clusters/<id:pk>/quota-engine/": "POST only (the Resource pools page's form)",
    "accounts/logout/": "POST only (the top bar's button)",
    "accounts/sign-out-everywhere/": "POST only (the top bar's button)",
    "oidc/authenticate/": "a redirect to the identity provider",
    "oidc/callback/": "the identity provider's redirect back",
    "showback.csv": "a CSV download (the Showback page's link)",
    "showback.pdf": "a PDF download (the Showback page's link)",
    "requests/<id:pk>/decide/": "POST only (the request page's dialogs, checked there)",
    "requests/<id:pk>/withdraw/": "POST only (the request page's button)",
    "inbox/read/": "POST only (the Inbox's buttons)",
    "allocation-grants/<id:pk>/end/": "POST only (the Resources tab's End now button)",
    "allocation-grants/<id:pk>/cancel/": "POST only (the Resources tab's Keep button)",
    "inbox/unread/": "a fragment: the menu's unread count (drawn on every page)",
}


VISITED_ROUTES = {
    "",
    "tenants/",
    "tenants/<id:pk>/",
    "tenants/new/",
    "tenants/<id:pk>/allocations/",
    "tenants/<id:pk>/plan/",
    "tenants/<id:pk>/delete/",
    "tenants/<id:pk>/move/",
    "pools/",
    "pools/<id:pk>/",
    "pools/<id:pk>/delete/",
    "clusters/new/",
    "clusters/<id:pk>/",
    "clusters/<id:pk>/delete/",
    "clusters/<id:pk>/pools/new/",
    "clusters/<id:pk>/connection/",
    "clusters/<id:pk>/connection/delete/",
    "plans/",
    "plans/new/",
    "plans/<id:pk>/",
    "users/",
    "users/new/",
    "users/<id:pk>/password/",
    "audit/",
    "me/",
    "tenants/<id:pk>/kubeconfig/<id:cluster_id>/help/",
    "overview/",
    "idle-quota/",
    "showback/",
    "showback/prices/",
    "requests/",
    "requests/new/",
    "requests/<id:pk>/",
    "inbox/",
    "accounts/login/",
}


@dataclass
class Demo:
    admin_password: str
    user_password: str
    department1: Tenant
    dev1: Tenant
    t1: Tenant
    etl: Tenant


def page_urls(demo: Demo) -> dict[str, dict[str, list[str]]]:
    """Route -> who opens it -> the URLs they open. The admin sees everything; usera administers t1
    and t2 (and manages t1/etl); bob is a member of department1/dev1."""
    plan = QuotaPlan.objects.get(name="gpu-small")
    gpu, bigdata = Cluster.objects.get(name="gpu-cluster"), Cluster.objects.get(name="bigdata")
    highmem = ResourcePool.objects.get(cluster=bigdata, name="highmem")
    bob = get_user_model().objects.get(username="bob")
    gpu_cluster = Cluster.objects.get(name="gpu-cluster")
    request = QuotaRequest.objects.get(tenant=demo.dev1)  # the demo's, from Bob
    tenant_tabs = {
        "admin": [f"/tenants/{demo.department1.pk}/?tab={tab}" for tab in TABS]
        + [f"/tenants/{demo.t1.pk}/?tab={tab}" for tab in TABS],
        "usera": [f"/tenants/{demo.t1.pk}/?tab={tab}" for tab in TABS],
        "bob": [f"/tenants/{demo.dev1.pk}/?tab={tab}" for tab in TABS],
    }
    return {
        "": {"admin": ["/"]},
        "tenants/": {"admin": ["/tenants/", "/tenants/?q=dev"], "usera": ["/tenants/"], "bob": ["/tenants/"]},
        "tenants/<id:pk>/": tenant_tabs,
        "tenants/new/": {"admin": ["/tenants/new/"], "usera": [f"/tenants/new/?parent={demo.t1.pk}"]},
        "tenants/<id:pk>/allocations/": {
            "admin": [f"/tenants/{demo.dev1.pk}/allocations/", f"/tenants/{demo.t1.pk}/allocations/"],
            "usera": [f"/tenants/{demo.etl.pk}/allocations/"],
        },
        "tenants/<id:pk>/plan/": {"admin": [f"/tenants/{demo.dev1.pk}/plan/"]},
        "tenants/<id:pk>/delete/": {
            "admin": [f"/tenants/{demo.department1.pk}/delete/"],
            "usera": [f"/tenants/{demo.etl.pk}/delete/"],
        },
        "tenants/<id:pk>/move/": {
            "admin": [f"/tenants/{demo.dev1.pk}/move/"],
            "usera": [f"/tenants/{demo.etl.pk}/move/"],
        },
        "pools/": {"admin": ["/pools/"], "usera": ["/pools/"], "bob": ["/pools/"]},
        # Clusters, pools and connections: platform admins only. The deletions' pages are what a
        # browser without JavaScript gets instead of the Pools page's dialogs (checked below).
        "pools/<id:pk>/": {"admin": [f"/pools/{highmem.pk}/"]},
        "pools/<id:pk>/delete/": {"admin": [f"/pools/{highmem.pk}/delete/"]},
        "clusters/new/": {"admin": ["/clusters/new/"]},
        "clusters/<id:pk>/": {"admin": [f"/clusters/{bigdata.pk}/"]},
        "clusters/<id:pk>/delete/": {"admin": [f"/clusters/{bigdata.pk}/delete/"]},
        "clusters/<id:pk>/pools/new/": {"admin": [f"/clusters/{gpu.pk}/pools/new/"]},
        "clusters/<id:pk>/connection/": {
            "admin": [f"/clusters/{gpu.pk}/connection/", f"/clusters/{bigdata.pk}/connection/"]
        },
        "clusters/<id:pk>/connection/delete/": {"admin": [f"/clusters/{bigdata.pk}/connection/delete/"]},
        "plans/": {"admin": ["/plans/"], "bob": ["/plans/"]},
        "plans/new/": {"admin": ["/plans/new/"]},
        "plans/<id:pk>/": {"admin": [f"/plans/{plan.pk}/"]},
        "users/": {"admin": ["/users/"], "usera": ["/users/"], "bob": ["/users/"]},
        "users/new/": {"admin": ["/users/new/"]},
        "users/<id:pk>/password/": {"admin": [f"/users/{bob.pk}/password/"]},
        "audit/": {
            "admin": ["/audit/", "/audit/?action=TENANT_CREATED&since=2020-13-01"],
            "usera": ["/audit/"],
            "bob": ["/audit/"],
        },
        "me/": {"admin": ["/me/"], "usera": ["/me/"], "bob": ["/me/"]},
        "tenants/<id:pk>/kubeconfig/<id:cluster_id>/help/": {
            "bob": [f"/tenants/{demo.dev1.pk}/kubeconfig/{gpu_cluster.pk}/help/"]
        },
        "overview/": {"admin": ["/overview/"]},
        "idle-quota/": {
            "admin": ["/idle-quota/", "/idle-quota/?window=30&threshold=100"],
            "usera": ["/idle-quota/"],
        },
        "showback/": {
            "admin": ["/showback/", f"/showback/?tenant={demo.department1.pk}"],
            "bob": [f"/showback/?tenant={demo.dev1.pk}"],
        },
        "showback/prices/": {"admin": ["/showback/prices/"]},
        "requests/": {"admin": ["/requests/"], "bob": ["/requests/"]},
        "requests/new/": {"bob": [f"/requests/new/?tenant={demo.dev1.pk}"]},
        "requests/<id:pk>/": {"admin": [f"/requests/{request.pk}/"], "bob": [f"/requests/{request.pk}/"]},
        "inbox/": {"admin": ["/inbox/"], "bob": ["/inbox/"]},
        "accounts/login/": {"anonymous": ["/accounts/login/"]},
    }


def console_routes() -> set[str]:
    """Every route the console answers, as its pattern text, but the Django admin and the API."""

    def walk(patterns, prefix: str = ""):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                yield route

    return {route for route in walk(get_resolver().url_patterns) if not route.startswith(("admin/", "api/"))}


# What a person taps on a page: the top bar, the navigation, and the buttons, tabs and links of main.
ACTIONS = (
    "header.topbar :is(a, button), nav.sidenav a, main :is(button, [role=button], input[type=submit],"
    " nav.tabs a, .tree a, .pagination a)"
)
# Scrolls each action into view (nested scrolling boxes too) and reports those that then are not
# wholly on the screen or are covered by something else.
UNREACHABLE = """([screen, selectors]) => {
  const found = [];
  for (const element of document.querySelectorAll(selectors)) {
    if (!element.checkVisibility()) continue;  // a closed <dialog> or <details>
    element.scrollIntoView({block: "center", inline: "center"});
    const box = element.getBoundingClientRect();
    const name = (element.textContent.trim() || element.outerHTML).slice(0, 60);
    if (box.left < -1 || box.right > screen.width + 1 || box.top < -1 || box.bottom > screen.height + 1) {
      found.push(`${name}: off the screen at x ${Math.round(box.left)}..${Math.round(box.right)}`);
      continue;
    }
    const hit = document.elementFromPoint((box.left + box.right) / 2, (box.top + box.bottom) / 2);
    if (!element.contains(hit) && !hit?.contains(element)) {
      found.push(`${name}: covered by ${hit ? hit.outerHTML.slice(0, 60) : "nothing"}`);
    }
  }
  window.scrollTo(0, 0);
  return found;
}"""

# What sticks out to the right where nothing scrolls it (only asked for when the page is too wide).
WIDEST = """(screen) => [...document.querySelectorAll("body *")]
  .filter((e) => e.getBoundingClientRect().right > screen.width + 1)
  .filter((e) => ![...document.querySelectorAll("*")].some((box) => box !== e && box.contains(e)
      && ["auto", "scroll", "hidden"].includes(getComputedStyle(box).overflowX)))
  .slice(0, 6).map((e) => `${e.tagName.toLowerCase()}.${e.className}: right ${Math.round(e.getBoundingClientRect().right)}`)"""


def check_page(page, url: str) -> list[str]:
    response = page.goto(url)
    assert response.status == 200, (url, response.status)
    page.wait_for_load_state("networkidle")
    problems = []
    # A phone widens its layout to fit a page that is too wide (and shrinks it to fit the screen):
    # window.innerWidth grows with the page, so both are held to the screen's width.
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    if max(widths) > PHONE["width"]:
        problems.append(
            f"{url}: {max(widths)} px wide on a {PHONE['width']} px screen: {page.evaluate(WIDEST, PHONE)}"
        )
    problems += [f"{url}: {problem}" for problem in page.evaluate(UNREACHABLE, [PHONE, ACTIONS])]
    return problems


def test_every_console_url_is_checked_on_a_phone_or_says_why_not():
    routes = console_routes()
    assert not VISITED_ROUTES & NOT_PAGES.keys()
    unchecked = routes - VISITED_ROUTES - NOT_PAGES.keys()
    assert unchecked == set(), (
        f"console URLs neither checked on a phone nor said not to be pages: {unchecked}"
    )
    assert VISITED_ROUTES | NOT_PAGES.keys() <= routes, "a route listed here is no longer a console URL"


def test_no_page_scrolls_sideways_on_a_phone_and_every_action_is_reachable(phone, settings):
    credentials = load_demo()
    # A connection to remove (its confirmation is a page too): bigdata's files, written for a GitOps tool.
    provisioning_services.hadoop_connection_set(
        acting_user=get_user_model().objects.get(username="admin"),
        cluster=Cluster.objects.get(name="bigdata"),
        spec=provisioning_services.HadoopConnectionSpec(
            rm_urls="", webhdfs_urls="", user="canopy", mode="export"
        ),
    )
    settings.CANOPY_DEMO_USAGE = True
    call_command("demo_usage")  # DEMO ONLY figures: the charts, the jobs and the overview have rows
    call_command("demo_quota_requests")  # Bob's open request, as the embedded default has it
    tenants = {t.name_path: t for t in Tenant.objects.all()}
    demo = Demo(
        credentials.admin_password,
        credentials.user_password,
        tenants["department1"],
        tenants["department1/dev1"],
        tenants["t1"],
        tenants["t1/etl"],
    )
    urls = page_urls(demo)
    assert set(urls) == VISITED_ROUTES
    assert phone.viewport_size == PHONE

    problems = []
    for url in urls["accounts/login/"]["anonymous"]:
        problems += check_page(phone, url)
    for who, password in (
        ("admin", demo.admin_password),
        ("usera", demo.user_password),
        ("bob", demo.user_password),
    ):
        phone.context.clear_cookies()
        sign_in(phone, who, password)
        for visits in urls.values():
            for url in visits.get(who, []):
                problems += check_page(phone, url)
        if who == "admin":
            # The suspend dialog fits too, with both of its buttons.
            phone.goto(f"/tenants/{demo.department1.pk}/")
            phone.click("button:has-text('Suspend…')")
            expect(phone.locator("dialog#suspend-dialog")).to_be_visible()
            problems += [
                f"suspend dialog: {problem}"
                for problem in phone.evaluate(UNREACHABLE, [PHONE, "dialog[open] button"])
            ]
            # And a deletion's dialog on the Pools page (brought by htmx).
            phone.goto("/pools/")
            phone.locator("tr:has-text('highmem') a:has-text('Delete…')").click()
            expect(phone.locator("dialog#delete-dialog")).to_be_visible()
            problems += [
                f"delete dialog: {problem}"
                for problem in phone.evaluate(UNREACHABLE, [PHONE, "dialog[open] :is(button, a)"])
            ]
    assert problems == [], "\n".join(problems)
