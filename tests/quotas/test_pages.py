"""The console's quota request pages: who reads which, the form that keeps what was typed, the
decision dialogs (htmx and plain posts), the inbox, the parts on the tenants' pages, and what the
list pages cost."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from quotas import services
from quotas.models import Notification, QuotaRequest
from tenants.models import Allocation
from tests.tenants.test_api_permissions import person

pytestmark = pytest.mark.django_db


def browser(w, who: str) -> Client:
    client = Client()
    client.force_login(person(w, who))
    return client


def ask(w, who=None, tenant=None, **asked):
    return services.quota_request_create(
        acting_user=who or w.bob,
        tenant=tenant or w.dev1,
        pool=w.pool,
        asked=asked or {"gpu": 2},
        reason="Training.",
    )


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("outsider", 404),
        ("dev1_viewer", 404),
        ("dev1_admin", 404),
        ("dev2_admin", 404),
        ("bob", 200),
        ("dept_admin", 200),
        ("platform", 200),
    ],
)
def test_a_request_page_is_read_by_its_requester_and_deciders_only(world, who, status):
    request = ask(world)
    answer = browser(world, who).get(f"/requests/{request.pk}/")
    assert answer.status_code == status
    if status == 404:
        assert b"department1" not in answer.content
    else:
        page = answer.content.decode()
        assert ("Approve…" in page) == (who in ("dept_admin", "platform"))
        assert ("Withdraw" in page) == (who == "bob")


def test_asking_keeps_what_was_typed_and_shows_the_refusal_on_its_field(world):
    w = world
    bob = browser(w, "bob")
    url = f"/requests/new/?tenant={w.dev1.pk}"
    assert bob.get(url).status_code == 200
    answer = bob.post(
        url, {"pool": w.pool.pk, "resource": "memory", "amount": "lots", "reason": "For the model."}
    )
    page = answer.content.decode()
    assert answer.status_code == 200 and "is not a Kubernetes quantity" in page
    assert 'value="lots"' in page and "For the model." in page
    answer = bob.post(url, {"pool": w.pool.pk, "resource": "gpu", "amount": "1", "reason": "For the model."})
    assert "department1/dev1 has 1 GPU in pool gpu-cluster/default already." in answer.content.decode()
    assert not QuotaRequest.objects.exists()
    answer = bob.post(url, {"pool": w.pool.pk, "resource": "gpu", "amount": "2", "reason": "For the model."})
    request = QuotaRequest.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/requests/{request.pk}/"
    # A viewer is not offered the form, and it is not theirs.
    assert browser(w, "dev1_viewer").get(url).status_code == 404


def test_the_decision_dialogs_answer_htmx_with_the_form_and_its_errors_then_redirect(world):
    w = world
    request = ask(w)
    dept = browser(w, "dept_admin")
    url = f"/requests/{request.pk}/decide/"
    refused = dept.post(
        url, {"decision": "change", "gpu": "3x", "comment": ""}, headers={"HX-Request": "true"}
    )
    fragment = refused.content.decode()
    assert refused.status_code == 200 and fragment.lstrip().startswith("<form")
    assert "is not a Kubernetes quantity" in fragment and 'value="3x"' in fragment
    # Without JavaScript: the page, with that dialog open.
    page = dept.post(url, {"decision": "refuse", "comment": ""}).content.decode()
    assert 'id="decide-refuse" aria-labelledby="decide-refuse-title" data-open-on-load' in page
    assert "Say why" in page
    done = dept.post(url, {"decision": "approve", "comment": ""}, headers={"HX-Request": "true"})
    assert done.status_code == 200 and done["HX-Redirect"] == f"/requests/{request.pk}/"
    assert Allocation.objects.get(tenant=w.dev1).gpu == 2
    shown = dept.get(f"/requests/{request.pk}/").content.decode()
    assert "Approved" in shown and "Approve…" not in shown


def test_the_tenants_pages_offer_ask_for_more_to_those_who_use_the_tenant(world):
    w = world
    ask(w)
    for who, offered in (("bob", True), ("dev1_viewer", False), ("dev1_admin", True)):
        tab = browser(w, who).get(f"/tenants/{w.dev1.pk}/?tab=resources").content.decode()
        assert (f"/requests/new/?tenant={w.dev1.pk}" in tab) == offered, who
        mine = browser(w, who).get("/me/").content.decode()
        assert (f"/requests/new/?tenant={w.dev1.pk}" in mine) == offered, who
    assert "1 open request" in browser(w, "bob").get("/me/").content.decode()
    # The open request is listed on the tab for those who read it.
    assert "#" in browser(w, "dept_admin").get(f"/tenants/{w.dev1.pk}/?tab=resources").content.decode()


def test_the_inbox_and_its_unread_count(world):
    w = world
    ask(w)
    dept = browser(w, "dept_admin")
    assert 'title="1 unread"' in dept.get("/inbox/unread/").content.decode()
    page = dept.get("/inbox/").content.decode()
    assert "Quota request: department1/dev1 asks for more" in page
    note = Notification.objects.get(recipient=w.people.dept_admin)
    assert dept.post("/inbox/read/", {"notification": note.pk}).status_code == 302
    assert 'title="' not in dept.get("/inbox/unread/").content.decode()
    # Someone else's notification is not theirs to mark.
    other = ask(w, who=w.people.dept_admin, tenant=w.dev2, cpu_millicores=9000)
    platform_note = Notification.objects.filter(quota_request=other).first()
    assert (
        platform_note is None
        or browser(w, "bob").post("/inbox/read/", {"notification": platform_note.pk}).status_code == 302
    )
    assert all(n.read_at is None for n in Notification.objects.exclude(recipient=w.people.dept_admin))


@pytest.mark.parametrize("count", [1, 8])
def test_the_list_pages_cost_the_same_for_any_number_of_requests(world, count):
    w = world
    for _ in range(count):
        ask(w)
    measured = {}
    for who, page in (("dept_admin", "/requests/"), ("bob", "/requests/"), ("dept_admin", "/inbox/")):
        client = browser(w, who)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(page).status_code == 200
        measured[(who, page)] = len(captured)
    assert measured == {
        ("dept_admin", "/requests/"): 5,
        ("bob", "/requests/"): 5,
        ("dept_admin", "/inbox/"): 5,
    }
