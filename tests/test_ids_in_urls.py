"""Issue 15, point 7: an id no row can have (larger than 2**63 - 1), in any URL, is answered as
a missing object is: a 404 (the admin: as it answers a missing object), never a 500. Every route
with an id comes from the URL resolver (console, API, admin) and is asked with every method, as a
platform admin: in-process on PostgreSQL, and on the embedded default's SQLite, which cannot even
compare such a number with a column (an OverflowError was the probe's 500)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

import pytest
import requests
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.test import Client

from tenants.converters import LARGEST_ID
from tests.embedded import EmbeddedConsole, embedded_console
from tests.test_csrf import url_patterns

OUT_OF_RANGE = [str(LARGEST_ID + 1), "9" * 19, str(10**30), "1" + "0" * 5_000]
MISSING = str(LARGEST_ID)  # an id in range that names no row
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
PARAMETER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")


def routes_with_ids() -> list[str]:
    """Every route of the URL resolver with an id in it: console, API and admin."""
    return sorted(route for route, _, _ in url_patterns() if PARAMETER.search(route))


def urls(route: str, value: str, real_ids: Callable[[str], list[str]]) -> list[str]:
    """`route` with `value` for each of its ids in turn, the others naming real rows (the admin's
    "view on site" takes a content type and an object: every content type is tried)."""
    names = [match["name"] for match in PARAMETER.finditer(route)]
    filled = []
    for target in names:
        others = [name for name in names if name != target]
        for choice in itertools.product(*(real_ids(name) for name in others)):
            values = {target: value, **dict(zip(others, choice, strict=True))}
            filled.append("/" + PARAMETER.sub(lambda match, values=values: values[match["name"]], route))
    return filled


def test_every_id_in_our_urls_goes_through_the_id_converter():
    """Console and API routes, and the admin's "view on site"; the admin's pages per model take
    any text as an object id (tenants.admin.IdsInRangeAdmin checks it for Canopy's models)."""
    ours = [
        route for route in routes_with_ids() if not route.startswith("admin/") or route.startswith("admin/r/")
    ]
    assert len(ours) >= 41, ours
    for route in ours:
        for match in PARAMETER.finditer(route):
            if (route, match["name"]) in NOT_IDS:
                continue
            assert match["converter"] == "id", route


# Route parameters that name something other than a row, with why.
NOT_IDS = {
    ("clusters/<id:pk>/hadoop-files/<str:name>", "name"): "a file name, one of HADOOP_FILES (else 404)",
}


def assert_answered_as_missing(
    request: Callable[[str, str], int], values: list[str], real_ids: Callable[[str], list[str]]
) -> None:
    wrong = []
    for route in routes_with_ids():
        admin = route.startswith("admin/")
        for method in ["GET", "POST"] if admin else METHODS:
            statuses = {
                value: {request(method, path) for path in urls(route, value, real_ids)}
                for value in [*values, MISSING]
            }
            missing = statuses.pop(MISSING)
            expected = missing if admin else {404}
            if any(answered != expected for answered in statuses.values()) or max(missing) >= 500:
                wrong.append((method, route, missing, statuses))
    assert not wrong, wrong


@pytest.mark.django_db
def test_on_postgresql_an_id_out_of_range_is_a_404_everywhere(platform_admin):
    browser = Client()
    browser.force_login(platform_admin)

    def request(method: str, path: str) -> int:
        return browser.generic(method, path).status_code

    def real_ids(name: str) -> list[str]:
        return (
            [str(pk) for pk in ContentType.objects.values_list("pk", flat=True)]
            if name == "content_type_id"
            else ["1"]
        )

    assert_answered_as_missing(request, OUT_OF_RANGE, real_ids)
    api = browser.get(f"/api/v1/kubernetes-connections/{OUT_OF_RANGE[0]}/")
    assert api.json() == {"detail": "Not found."}


@pytest.fixture(scope="module")
def console(tmp_path_factory) -> EmbeddedConsole:
    with embedded_console(tmp_path_factory.mktemp("embedded-ids")) as running:
        yield running


def test_on_the_embedded_default_an_id_out_of_range_is_a_404_everywhere(console):
    """What the probe found: /api/v1/kubernetes-connections/<id>/ (and hadoop-connections,
    DELETE, /test/) were 500s on SQLite."""
    browser = console.signed_in()
    token = console.api_token()
    headers = {"X-CSRFToken": browser.cookies["csrftoken"]}

    def request(method: str, path: str) -> int:
        if path.startswith("/api/"):
            answer = requests.request(method, console.url + path, headers={"Authorization": f"Token {token}"})
        else:
            answer = browser.request(method, console.url + path, headers=headers, allow_redirects=False)
        return answer.status_code

    # The admin's "view on site" route looks an object up by its model's primary key: one content
    # type per kind of key asks every lookup SQLite makes (on PostgreSQL above: every content type;
    # here over HTTP each costs a request per route, method and value).
    by_key_kind: dict[str, str] = {}
    for pk, app_label, model in console.query("SELECT id, app_label, model FROM django_content_type"):
        try:
            kind = type(apps.get_model(app_label, model)._meta.pk).__name__
        except LookupError:  # a content type whose model is gone
            kind = "gone"
        by_key_kind.setdefault(kind, str(pk))
    assert {"BigAutoField", "CharField"} <= by_key_kind.keys(), by_key_kind
    content_types = list(by_key_kind.values())

    def real_ids(name: str) -> list[str]:
        return content_types if name == "content_type_id" else ["1"]

    # One value past the largest id: SQLite refuses any of them alike (an OverflowError where it
    # compares), and the in-process test above asks them all.
    assert_answered_as_missing(request, OUT_OF_RANGE[:1], real_ids)


@pytest.mark.django_db
def test_no_format_suffix_twins_of_api_urls(k8s_world):
    """DRF's routers answered /api/v1/tenants/1/move.json too, a 500 for custom actions (their
    methods take no `format`); undocumented, they are gone."""
    browser = Client()
    browser.force_login(k8s_world.admin)
    dev1 = k8s_world.dev1.pk
    for method, path in [
        ("POST", f"/api/v1/tenants/{dev1}/move.json"),
        ("POST", f"/api/v1/tenants/{dev1}/suspend.json"),
        ("GET", f"/api/v1/tenants/{dev1}.json"),
        ("GET", "/api/v1/tenants.json"),
        ("POST", f"/api/v1/kubernetes-connections/{k8s_world.cluster.pk}/test.json"),
    ]:
        answer = browser.generic(method, path)
        assert (answer.status_code, answer.json()) == (404, {"detail": "Not found."}), path
