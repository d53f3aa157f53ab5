"""The console README's first command starts (`scripts/console.sh`: portal.settings.local, SQLite,
runserver), started the same way in a subprocess and used as people and scripts use it.

- Concurrent writes all land (issue 15, point 4): SQLite in WAL mode, IMMEDIATE transactions and
  a busy timeout; the console's live check and its submit, and API writes, racing, never a 500.
- The product's own error pages, never Django's debug pages (point 5); static files still served.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import requests

from tests.embedded import ADMIN, EmbeddedConsole, embedded_console, form_token

CONSOLE_PAIRS = 16  # tenants created in the console: each one's live check and submit sent together
API_CREATES = 16  # tenants created through the API meanwhile


@pytest.fixture(scope="module")
def console(tmp_path_factory) -> EmbeddedConsole:
    with embedded_console(tmp_path_factory.mktemp("embedded")) as running:
        yield running


@pytest.fixture(scope="module")
def pool(console) -> dict:
    return console.kubernetes_pool()


@dataclass
class Answer:
    kind: str
    name: str
    status: int
    body: str


def test_concurrent_writes_on_the_embedded_default_all_land(console, pool):
    sessions = [console.signed_in() for _ in range(4)]
    tokens = {
        session: form_token(session.get(f"{console.url}/tenants/new/", timeout=30).text)
        for session in sessions
    }
    api_headers = {"Authorization": f"Token {console.api_token()}"}

    def console_form(session: requests.Session, name: str) -> dict[str, str]:
        return {
            "csrfmiddlewaretoken": tokens[session],
            "parent": "",
            "name": name,
            "is_leaf": "true",
            f"pool_{pool['id']}_on": "on",
            f"pool_{pool['id']}_gpu": "1",
            f"pool_{pool['id']}_cpu": "2",
            f"pool_{pool['id']}_memory": "4Gi",
        }

    def check(session: requests.Session, name: str) -> Answer:
        answer = session.post(
            f"{console.url}/tenants/new/",
            data={**console_form(session, name), "validate": "1"},
            headers={"HX-Request": "true", "X-CSRFToken": tokens[session]},
            timeout=120,
        )
        return Answer("check", name, answer.status_code, answer.text[:300])

    def submit(session: requests.Session, name: str) -> Answer:
        answer = session.post(
            f"{console.url}/tenants/new/",
            data=console_form(session, name),
            allow_redirects=False,
            timeout=120,
        )
        return Answer("submit", name, answer.status_code, answer.text[:300])

    def api_create(name: str) -> Answer:
        answer = requests.post(
            f"{console.url}/api/v1/tenants/",
            json={
                "parent": None,
                "name": name,
                "allocations": [{"pool": pool["id"], "gpu": 1, "cpu": "2", "memory": "4Gi"}],
            },
            headers=api_headers,
            timeout=120,
        )
        return Answer("api", name, answer.status_code, answer.text[:300])

    with ThreadPoolExecutor(max_workers=24) as pool_of_threads:
        futures = []
        for index in range(max(CONSOLE_PAIRS, API_CREATES)):
            session = sessions[index % len(sessions)]
            if index < CONSOLE_PAIRS:
                # What the probe saw: the check of the last keystroke still running when the
                # submit arrives.
                futures.append(pool_of_threads.submit(check, session, f"console-{index}"))
                futures.append(pool_of_threads.submit(submit, session, f"console-{index}"))
            if index < API_CREATES:
                futures.append(pool_of_threads.submit(api_create, f"api-{index}"))
        answers = [future.result() for future in futures]

    failed = [answer for answer in answers if answer.status >= 500]
    assert not failed, (
        f"{len(failed)} of {len(answers)} answers were 5xx",
        [(a.kind, a.name, a.status, " ".join(a.body[a.body.find("<title>") :][:60].split())) for a in failed],
    )
    expected_status = {"check": 200, "submit": 302, "api": 201}
    wrong = [answer for answer in answers if answer.status != expected_status[answer.kind]]
    assert not wrong, wrong

    # Every write kept, once: the tenant, its allocation and its one audit row.
    expected = {f"console-{index}" for index in range(CONSOLE_PAIRS)} | {
        f"api-{index}" for index in range(API_CREATES)
    }
    created = console.query(
        "SELECT t.name, COUNT(DISTINCT a.id), COUNT(DISTINCT e.id) FROM tenants_tenant t "
        "JOIN tenants_allocation a ON a.tenant_id = t.id "
        "JOIN tenants_auditevent e ON e.tenant_id = t.id AND e.action = 'TENANT_CREATED' "
        "WHERE t.name LIKE 'console-%' OR t.name LIKE 'api-%' GROUP BY t.name"
    )
    assert {name: (allocations, audits) for name, allocations, audits in created} == {
        name: (1, 1) for name in expected
    }
    assert console.query("SELECT COUNT(*) FROM auth_user WHERE username = ?", ADMIN) == [(1,)]


# What Django's debug pages show and the product's pages never do.
DEBUG_MARKERS = (
    "Traceback",
    "Using the URLconf defined in",
    "You’re seeing this error because you have",
    "DEBUG = True",
    "SECRET_KEY",
    "DJANGO_SETTINGS_MODULE",
    "OperationalError",
    "api/v1/auth/token/",
    "ALLOWED_HOSTS",
)


def assert_product_page(answer: requests.Response, status: int, heading: str) -> None:
    assert answer.status_code == status, answer.text[:500]
    assert answer.headers["Content-Type"].startswith("text/html")
    assert f"<h1>{heading}</h1>" in answer.text
    assert '<header class="topbar">' in answer.text and "css/canopy.css" in answer.text
    shown = [marker for marker in DEBUG_MARKERS if marker in answer.text]
    assert not shown, shown


def test_debug_is_off_a_missing_page_is_the_products_404_and_json_in_the_api(console):
    signed_in = console.signed_in()
    assert_product_page(requests.get(f"{console.url}/no-such-page/", timeout=30), 404, "Not found")
    assert_product_page(signed_in.get(f"{console.url}/no-such-page/", timeout=30), 404, "Not found")
    assert_product_page(signed_in.get(f"{console.url}/tenants/987654/", timeout=30), 404, "Not found")

    api = requests.get(
        f"{console.url}/api/v1/no-such-thing/",
        headers={"Authorization": f"Token {console.api_token()}"},
        timeout=30,
    )
    assert (api.status_code, api.json()) == (404, {"detail": "Not found."})


def test_a_failing_page_is_the_products_500_and_json_in_the_api_the_details_in_the_log(console):
    signed_in = console.signed_in()
    headers = {"Authorization": f"Token {console.api_token()}"}
    assert signed_in.get(f"{console.url}/audit/", timeout=30).status_code == 200
    # A real failure, no test code in the server: the audit table goes missing under it.
    console.query("ALTER TABLE tenants_auditevent RENAME TO tenants_auditevent_away")
    try:
        page = signed_in.get(f"{console.url}/audit/", timeout=30)
        api = requests.get(f"{console.url}/api/v1/audit/", headers=headers, timeout=30)
    finally:
        console.query("ALTER TABLE tenants_auditevent_away RENAME TO tenants_auditevent")
    assert_product_page(page, 500, "Something went wrong")
    assert (api.status_code, api.json()) == (500, {"detail": "Server error; the details are in the log."})
    assert "no such table: tenants_auditevent" in console.server_log()
    assert signed_in.get(f"{console.url}/audit/", timeout=30).status_code == 200


def test_a_refused_page_and_a_bad_request_are_the_products_403_and_400(console):
    created = requests.post(
        f"{console.url}/api/v1/users/",
        json={"username": "viewer", "password": "A-long-enough-pass-42"},
        headers={"Authorization": f"Token {console.api_token()}"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    viewer = console.signed_in("viewer", "A-long-enough-pass-42")
    assert_product_page(viewer.get(f"{console.url}/plans/new/", timeout=30), 403, "Not allowed")

    # A Host the console does not serve: with debug on, Django's page would list ALLOWED_HOSTS.
    foreign = {"Host": "canopy.attacker.example"}
    assert_product_page(
        requests.get(f"{console.url}/accounts/login/", headers=foreign, timeout=30), 400, "Bad request"
    )
    api = requests.get(f"{console.url}/api/v1/tenants/", headers=foreign, timeout=30)
    assert (api.status_code, api.json()) == (400, {"detail": "Bad request."})


def test_static_files_are_served_with_debug_off(console):
    """The console's, the admin's and the API docs' own files: WhiteNoise, no collectstatic."""
    pages = [
        requests.get(f"{console.url}/accounts/login/", timeout=30).text,
        requests.get(f"{console.url}/admin/login/", timeout=30).text,
        console.signed_in().get(f"{console.url}/api/docs/", timeout=30).text,
    ]
    assets = {path for page in pages for path in re.findall(r'(?:href|src)="(/static/[^"?]+)', page)}
    assert {
        "/static/css/canopy.css",
        "/static/vendor/htmx/htmx.min.js",
        "/static/admin/css/base.css",
    } <= assets
    assert any("drf_spectacular_sidecar" in path for path in assets), assets
    for path in sorted(assets):
        answer = requests.get(f"{console.url}{path}", timeout=30)
        assert answer.status_code == 200, path
        assert answer.content, path
    assert (
        requests.get(f"{console.url}/static/css/canopy.css", timeout=30)
        .headers["Content-Type"]
        .startswith("text/css")
    )
