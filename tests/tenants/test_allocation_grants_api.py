"""Time-bound grants in the API and the console: `ends_at` on an allocation's change (bad ones are
400 field errors, form errors on the page), the grant shown with the allocation and on the
Resources tab, and every caller against reading, ending and keeping one (refused calls change
nothing)."""

from __future__ import annotations

import datetime

import pytest
from django.test import Client
from django.utils import timezone

from tenants import services
from tenants.models import Allocation, AllocationGrant, AuditEvent
from tests.tenants.builders import spec
from tests.tenants.test_api_permissions import PERSONAS, Call, client_for, expect, state_of_the_world

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)


@pytest.fixture
def world(k8s_world):
    """dev1 runs on 0 of its 1 GPU until tomorrow (granted by department1's admin)."""
    services.allocation_set(
        acting_user=k8s_world.people.dept_admin,
        tenant=k8s_world.dev1,
        spec=spec(k8s_world.pool, gpu=0),
        ends_at=timezone.now() + DAY,
    )
    return k8s_world


def _grant(w) -> AllocationGrant:
    return AllocationGrant.objects.get(tenant=w.dev1)


def _allocation(w) -> Allocation:
    return Allocation.objects.get(tenant=w.dev1)


def test_the_allocation_shows_its_grant_and_a_change_may_carry_an_end_time(world, api):
    client = api.as_user(world.admin)
    body = client.get(f"/api/v1/allocations/{_allocation(world).pk}/").json()
    grant = body["grant"]
    assert grant["state"] == "active" and grant["granted_by_name"] == "dept-admin"
    assert grant["summary"].startswith("0 GPUs until ") and grant["summary"].endswith(", then back to 1 GPU")
    assert "ends_at" not in body  # write-only: what counts is the grant's

    until = (timezone.now() + 2 * DAY).replace(microsecond=0)
    response = client.patch(
        f"/api/v1/allocations/{_allocation(world).pk}/",
        {"gpu": 0, "ends_at": until.isoformat()},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["grant"]["ends_at"] == until.astimezone(datetime.UTC).isoformat().replace(
        "+00:00", "Z"
    )
    assert AllocationGrant.objects.filter(tenant=world.dev1, state="superseded").count() == 1
    listed = client.get(f"/api/v1/allocation-grants/?tenant={world.dev1.pk}&state=active").json()
    assert [row["back_to"]["gpu"] for row in listed["results"]] == [1]


@pytest.mark.parametrize(
    "ends_at, message",
    [
        ("yesterday", "Datetime has wrong format"),
        ("2001-01-01T00:00:00Z", "The end time must be in the future."),
    ],
)
def test_a_bad_end_time_is_a_400_on_its_field_and_changes_nothing(world, api, ends_at, message):
    before = (list(Allocation.objects.values_list("gpu", flat=True)), AllocationGrant.objects.count())
    response = api.as_user(world.admin).patch(
        f"/api/v1/allocations/{_allocation(world).pk}/", {"gpu": 1, "ends_at": ends_at}, format="json"
    )
    assert response.status_code == 400
    assert message in response.json()["ends_at"][0]
    assert (list(Allocation.objects.values_list("gpu", flat=True)), AllocationGrant.objects.count()) == before


def test_the_api_ends_a_grant_now_and_then_refuses_to_end_it_again(world, api):
    client = api.as_user(world.people.dept_admin)
    response = client.post(f"/api/v1/allocation-grants/{_grant(world).pk}/end/")
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "ended" and response.json()["status"] == "Ended early by dept-admin."
    assert _allocation(world).gpu == 1
    again = client.post(f"/api/v1/allocation-grants/{_grant(world).pk}/cancel/")
    assert again.status_code == 400 and again.json()["state"] == ["This grant has already ended."]


def _console(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_members_read_the_grant_on_the_resources_tab_and_admins_above_may_end_or_keep_it(world):
    tab = f"/tenants/{world.dev1.pk}/?tab=resources"
    for reader in (world.bob, world.people.dev1_viewer, world.people.dev1_admin):
        page = _console(reader).get(tab).content.decode()
        assert "Time-bound:" in page and "then back to 1 GPU" in page
        assert "/end/" not in page  # only those who may change the allocation are offered it
    page = _console(world.people.dept_admin).get(tab).content.decode()
    assert f"/allocation-grants/{_grant(world).pk}/end/" in page
    assert f"/allocation-grants/{_grant(world).pk}/cancel/" in page

    response = _console(world.people.dept_admin).post(f"/allocation-grants/{_grant(world).pk}/cancel/")
    assert response.status_code == 302
    assert _grant(world).state == "cancelled" and _allocation(world).gpu == 0
    assert "Time-bound:" not in _console(world.bob).get(tab).content.decode()


def test_a_refused_end_is_shown_until_the_allocation_changes(world):
    services.allocation_set(acting_user=world.admin, tenant=world.dev2, spec=spec(world.pool, gpu=3))
    services.allocation_grants_end_due(now=timezone.now() + 2 * DAY)
    assert _grant(world).state == "refused"
    tab = f"/tenants/{world.dev1.pk}/?tab=resources"
    page = _console(world.bob).get(tab).content.decode()
    assert "End refused" in page
    services.allocation_set(acting_user=world.admin, tenant=world.dev1, spec=spec(world.pool, gpu=0))
    assert "End refused" not in _console(world.bob).get(tab).content.decode()


def _form(w, **values) -> dict[str, str]:
    pool = w.pool.pk
    return {
        f"pool_{pool}_on": "on",
        f"pool_{pool}_gpu": "0",
        f"pool_{pool}_cpu": "",
        f"pool_{pool}_memory": "",
        **{f"pool_{pool}_{name}": value for name, value in values.items()},
    }


def test_the_allocation_form_takes_until_and_keeps_the_grant_when_saved_as_it_was(world):
    client = _console(world.people.dept_admin)
    url = f"/tenants/{world.dev1.pk}/allocations/"
    page = client.get(url).content.decode()
    shown = f"{timezone.localtime(_grant(world).ends_at):%Y-%m-%dT%H:%M}"
    assert f'value="{shown}"' in page and 'type="datetime-local"' in page

    # Saved as it was: the same grant goes on.
    response = client.post(url, _form(world, ends_at=shown))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert AllocationGrant.objects.get(tenant=world.dev1).state == "active"

    # A past or garbled end time is an error on the field; nothing is saved.
    for value, message in (
        ("2001-01-01T10:00", "The end time must be in the future."),
        ("soon", "Enter a valid"),
    ):
        response = client.post(url, _form(world, gpu="1", ends_at=value))
        assert response.status_code == 200 and message in response.content.decode()
        assert _allocation(world).gpu == 0

    later = f"{timezone.localtime(timezone.now() + 3 * DAY):%Y-%m-%dT%H:%M}"
    response = client.post(url, _form(world, ends_at=later))
    assert response.status_code == 302
    assert (
        f"{timezone.localtime(AllocationGrant.objects.get(state='active').ends_at):%Y-%m-%dT%H:%M}" == later
    )


# Who may change dev1's allocation (and so end or keep its grant): the admins above it.
THOSE_ABOVE = expect(
    outsider=404, dev2_admin=404, dev1_viewer=403, bob=403, dev1_admin=403, dept_admin=200, platform=200
)
GRANT_CALLS: dict[str, Call] = {
    "read dev1's grant": Call(
        "get",
        lambda w: f"/api/v1/allocation-grants/{_grant(w).pk}/",
        None,
        {**THOSE_ABOVE, "dev1_viewer": 200, "bob": 200, "dev1_admin": 200},
    ),
    "extend dev1's grant": Call(
        "patch",
        lambda w: f"/api/v1/allocations/{_allocation(w).pk}/",
        lambda w: {"gpu": 0, "ends_at": (timezone.now() + 2 * DAY).isoformat()},
        THOSE_ABOVE,
    ),
    "end dev1's grant now": Call(
        "post",
        lambda w: f"/api/v1/allocation-grants/{_grant(w).pk}/end/",
        None,
        THOSE_ABOVE,
    ),
    "keep dev1's grant": Call(
        "post",
        lambda w: f"/api/v1/allocation-grants/{_grant(w).pk}/cancel/",
        None,
        THOSE_ABOVE,
    ),
}


def _grants_state() -> list[tuple]:
    return list(AllocationGrant.objects.order_by("pk").values_list("pk", "state", "ends_at", "status"))


@pytest.mark.parametrize("who", PERSONAS)
@pytest.mark.parametrize("call_name", list(GRANT_CALLS))
def test_grant_permission_matrix(world, call_name, who):
    call = GRANT_CALLS[call_name]
    before = (state_of_the_world(), _grants_state())
    response = call.run(world, who)
    if who == "anonymous":
        assert response.status_code in (401, 403), response.content
    else:
        assert response.status_code == call.expected[who], response.content
    if response.status_code >= 400:
        assert (state_of_the_world(), _grants_state()) == before, "a refused call changed something"
        if response.status_code == 404:
            assert b"dev1" not in response.content
    elif call.method != "get":
        assert AuditEvent.objects.count() > before[0][-1], "an allowed write left no audit row"


def test_a_grant_outside_what_one_sees_is_not_listed(world):
    for who, count in (("outsider", 0), ("dev2_admin", 0), ("bob", 1), ("dept_admin", 1)):
        assert client_for(world, who).get("/api/v1/allocation-grants/").json()["count"] == count, who
