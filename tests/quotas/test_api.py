"""The quota requests' and the inbox's API against every kind of caller (as tests/tenants/
test_api_permissions.py does for the tenants' objects): anonymous, no role, a role on another
tenant, a viewer, a member, the tenant's own admin, the admin above (who decides), a platform
admin. Refused calls change nothing; a request one may not read is a 404 that names nothing."""

from __future__ import annotations

import pytest

from quotas import services
from quotas.models import Notification, QuotaRequest
from tenants.models import Allocation, AuditEvent
from tests.tenants.test_api_permissions import PERSONAS, client_for, person

pytestmark = pytest.mark.django_db


def state() -> tuple:
    return (
        list(QuotaRequest.objects.order_by("pk").values_list("pk", "state", "gpu", "comment")),
        list(Allocation.objects.order_by("pk").values_list("pk", "gpu", "cpu_millicores")),
        list(Notification.objects.order_by("pk").values_list("pk", "read_at")),
        AuditEvent.objects.count(),
    )


def bobs_request(w) -> QuotaRequest:
    return services.quota_request_create(
        acting_user=w.bob, tenant=w.dev1, pool=w.pool, asked={"gpu": 2}, reason="Training runs."
    )


ASK = {
    "outsider": 400,  # dev1 is not among the tenants they see: the field says "does not exist"
    "dev2_admin": 400,
    "dev1_viewer": 403,
    "bob": 201,
    "dev1_admin": 201,
    "dept_admin": 201,
    "platform": 201,
}


@pytest.mark.parametrize("who", PERSONAS)
def test_who_may_ask(world, who):
    w = world
    before = state()
    answer = client_for(w, who).post(
        "/api/v1/quota-requests/",
        {"tenant": w.dev1.pk, "pool": w.pool.pk, "gpu": "2", "reason": "Training runs."},
        format="json",
    )
    if who == "anonymous":
        assert answer.status_code in (401, 403)
    else:
        assert answer.status_code == ASK[who], answer.content
    if answer.status_code >= 400:
        assert state() == before
        if who in ("outsider", "dev2_admin"):  # a viewer sees dev1: only they are told its name
            assert b"department1" not in answer.content
    else:
        body = answer.json()
        assert (body["state"], body["gpu"], body["held"], body["deciding_tenant_path"]) == (
            "open",
            2,
            {"gpu": 1},
            "department1",
        )


# Reading Bob's request (decided by department1's admins) and deciding it.
READ = {
    "outsider": 404,
    "dev2_admin": 404,
    "dev1_viewer": 404,
    "bob": 200,
    "dev1_admin": 404,
    "dept_admin": 200,
    "platform": 200,
}
DECIDE = {**READ, "bob": 403, "dept_admin": 200, "platform": 200}


@pytest.mark.parametrize("who", PERSONAS)
def test_who_reads_and_decides(world, who):
    w = world
    request = bobs_request(w)
    client = client_for(w, who)
    read = client.get(f"/api/v1/quota-requests/{request.pk}/")
    listed = client.get("/api/v1/quota-requests/")
    before = state()
    decided = client.post(
        f"/api/v1/quota-requests/{request.pk}/decide/", {"decision": "approve"}, format="json"
    )
    if who == "anonymous":
        assert read.status_code in (401, 403) and decided.status_code in (401, 403)
        return
    assert read.status_code == READ[who]
    assert [row["id"] for row in listed.json()["results"]] == ([request.pk] if READ[who] == 200 else [])
    assert decided.status_code == DECIDE[who], decided.content
    if decided.status_code >= 400:
        assert state() == before
        if decided.status_code == 404:
            assert b"dev1" not in decided.content and b"department1" not in decided.content
    else:
        assert decided.json()["state"] == "approved"
        assert Allocation.objects.get(tenant=w.dev1).gpu == 2
    if read.status_code == 200:
        assert read.json()["may_decide"] == (DECIDE[who] == 200)


@pytest.mark.parametrize("who", PERSONAS)
def test_only_the_requester_withdraws(world, who):
    w = world
    request = bobs_request(w)
    before = state()
    answer = client_for(w, who).post(f"/api/v1/quota-requests/{request.pk}/withdraw/")
    expected = {**READ, "dept_admin": 403, "platform": 403}
    if who == "anonymous":
        assert answer.status_code in (401, 403)
        return
    assert answer.status_code == expected[who], answer.content
    if answer.status_code >= 400:
        assert state() == before
    else:
        assert answer.json()["state"] == "withdrawn"


def test_filters_mine_and_to_decide(world):
    w = world
    bobs = bobs_request(w)
    own = services.quota_request_create(
        acting_user=w.people.dept_admin,
        tenant=w.dev2,
        pool=w.pool,
        asked={"cpu_millicores": 9000},
        reason="x",
    )
    dept = client_for(w, "dept_admin")
    assert [r["id"] for r in dept.get("/api/v1/quota-requests/?mine=true").json()["results"]] == [own.pk]
    assert {r["id"] for r in dept.get("/api/v1/quota-requests/?to_decide=true").json()["results"]} == {
        bobs.pk,
        own.pk,
    }
    assert client_for(w, "bob").get("/api/v1/quota-requests/?to_decide=true").json()["count"] == 0
    assert client_for(w, "outsider").get(f"/api/v1/quota-requests/?tenant={w.dev1.pk}").json()["count"] == 0


def test_bad_input_is_a_400_with_field_errors_and_nothing_is_made(world):
    w = world
    bob = client_for(w, "bob")
    answer = bob.post(
        "/api/v1/quota-requests/",
        {"tenant": w.dev1.pk, "pool": w.pool.pk, "gpu": "two", "memory": "unlimited", "capacity": "400"},
        format="json",
    )
    assert answer.status_code == 400
    body = answer.json()
    assert set(body) == {"gpu", "memory", "capacity", "reason"}, body
    assert "not a Kubernetes quantity" in body["memory"][0]
    answer = bob.post(
        "/api/v1/quota-requests/",
        {"tenant": w.dev1.pk, "pool": w.pool.pk, "capacity": "40", "reason": "x"},
        format="json",
    )
    assert answer.json() == {
        "capacity": ["Capacity percentages apply to YARN pools only: ask for gpu, cpu or memory."]
    }
    assert not QuotaRequest.objects.exists()
    request = bobs_request(w)
    dept = client_for(w, "dept_admin")
    answer = dept.post(f"/api/v1/quota-requests/{request.pk}/decide/", {"decision": "refuse"}, format="json")
    assert answer.json() == {"comment": ["Say why: the admins who decide read it."]}
    answer = dept.post(f"/api/v1/quota-requests/{request.pk}/decide/", {"decision": "maybe"}, format="json")
    assert set(answer.json()) == {"decision"}
    assert QuotaRequest.objects.get().state == "open"


def test_an_approval_that_no_longer_fits_answers_the_request_refused_with_the_reason(world):
    w = world
    request = bobs_request(w)
    client_for(w, "dept_admin").patch(
        f"/api/v1/allocations/{Allocation.objects.get(tenant=w.dev2).pk}/", {"gpu": 3}, format="json"
    )
    answer = client_for(w, "dept_admin").post(
        f"/api/v1/quota-requests/{request.pk}/decide/", {"decision": "approve"}, format="json"
    )
    assert answer.status_code == 200
    assert answer.json()["state"] == "refused"
    assert answer.json()["refusal_reason"].startswith("It no longer fits: department1 has 4 GPUs")


def test_the_inbox_is_each_persons_own(world):
    w = world
    bobs_request(w)
    dept = client_for(w, "dept_admin")
    mine = dept.get("/api/v1/notifications/?unread=true").json()
    assert mine["count"] == 1 and mine["results"][0]["read_at"] is None
    note = mine["results"][0]["id"]
    assert client_for(w, "bob").get(f"/api/v1/notifications/{note}/").status_code == 404
    assert client_for(w, "bob").post(f"/api/v1/notifications/{note}/read/").status_code == 404
    assert Notification.objects.get(pk=note).read_at is None
    assert dept.post(f"/api/v1/notifications/{note}/read/").json()["read_at"] is not None
    assert dept.get("/api/v1/notifications/?unread=true").json()["count"] == 0
    assert dept.post("/api/v1/notifications/read-all/").status_code == 204


__all__ = ["person"]
