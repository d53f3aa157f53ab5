"""The audit trail as people read it (issue 18, point 7): labels, amounts in units, who reads which
rows and which details, the page's filters, its CSV and the API, and what a page costs."""

from __future__ import annotations

import ast
import csv
import datetime
import io
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tenants import services
from tenants.audit import audit, changes
from tenants.models import AuditAction, AuditEvent, Tenant
from tests.tenants.builders import GI, TokenClient, spec, user

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def api_rows(who, query: str = "") -> list[dict]:
    response = TokenClient().as_user(who).get(f"/api/v1/audit/?page_size=500{query}")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def browser(who) -> Client:
    client = Client()
    client.force_login(who)
    return client


def csv_rows(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return list(csv.DictReader(io.StringIO(response.content.decode(), newline="")))


# ---------------------------------------------------------------------------------------------
# Labels: one catalogue, every action written has its label


def written_actions() -> set[str]:
    """Every action code the product's code passes to the audit writers as a literal."""
    found = set()
    for path in [
        *ROOT.glob("*/services*.py"),
        *ROOT.glob("*/services/*.py"),
        *ROOT.glob("*/migrations/*.py"),
    ]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "action":
                found |= {
                    value.value
                    for value in ast.walk(node.value)
                    if isinstance(value, ast.Constant) and isinstance(value.value, str)
                }
            if isinstance(node, ast.Tuple):  # `action, reason = "CONNECTION_DELETED", ...`
                found |= {
                    value.value
                    for value in node.elts
                    if isinstance(value, ast.Constant)
                    and isinstance(value.value, str)
                    and re.fullmatch(r"[A-Z]+(_[A-Z]+)+", value.value)
                    and value.value.endswith(("_CREATED", "_UPDATED", "_DELETED"))
                }
    return found


def test_every_action_the_code_writes_has_a_label():
    written = written_actions()
    assert {"TENANT_CREATED", "KUBECONFIG_ISSUED", "CONNECTION_DELETED", "USAGE_INTERVAL_UPDATED"} <= written
    assert written <= set(AuditAction.values), written - set(AuditAction.values)
    for code, label in AuditAction.choices:
        assert label and label != code and not label.isupper()
    assert AuditAction.label_of("MEMBERSHIP_GRANTED") == "Membership granted"
    assert AuditAction.label_of("SOMETHING_OLD") == "SOMETHING_OLD"  # a code no longer written


def test_an_action_without_a_label_is_refused_before_anything_is_written(platform_admin):
    with pytest.raises(ValueError, match="NOT_AN_ACTION is no audit action"):
        audit(acting_user=platform_admin, action="NOT_AN_ACTION", target=None, tenant=None)
    assert not AuditEvent.objects.exists()


# ---------------------------------------------------------------------------------------------
# Amounts in units


def texts(before, after) -> list[str]:
    return [str(change) for change in changes(before, after)]


def test_an_allocation_change_reads_in_units(k8s_world):
    w = k8s_world
    services.allocation_set(
        acting_user=w.admin,
        tenant=w.dev2,
        spec=spec(w.pool, gpu=2, cpu_millicores=4000, memory_bytes=8 * GI, memory_bytes_burst=16 * GI),
    )
    event = AuditEvent.objects.get(action="ALLOCATION_UPDATED")
    assert texts(event.before, event.after) == [
        "CPU: 8 CPU → 4 CPU",
        "Memory: 60 GiB → 8 GiB",
        "Memory burst: no burst → 16 GiB",
    ]
    created = AuditEvent.objects.get(action="TENANT_CREATED", tenant=w.dev2)
    assert texts(None, created.after) == [
        "Name: dev2",
        "Path: department1/dev2",
        "Leaf tenant: no",
        "State: active",
        "Allocations: gpu-cluster/default: GPUs 2 GPUs, CPU 8 CPU, Memory 60 GiB",
    ]
    row = api_rows(w.admin, "&action=ALLOCATION_UPDATED")[0]
    assert row["action"] == "ALLOCATION_UPDATED" and row["label"] == "Allocation changed"
    assert row["changes"][0] == {
        "field": "cpu_millicores",
        "label": "CPU",
        "before": "8 CPU",
        "after": "4 CPU",
    }
    assert row["after"]["memory_bytes"] == 8 * GI  # the machine's figures are kept as recorded


def test_yarn_percentages_pools_and_exact_bytes_read_in_units(yarn_world, k8s_world):
    w = yarn_world
    services.allocation_set(
        acting_user=w.admin,
        tenant=w.t2,
        spec=spec(w.pool, capacity_percent=Decimal(40), max_capacity_percent=Decimal("62.5")),
    )
    event = AuditEvent.objects.get(action="ALLOCATION_UPDATED", tenant=w.t2)
    assert texts(event.before, event.after) == [
        "YARN capacity: 30 % → 40 %",
        "YARN maximum capacity: 100 % → 62.5 %",
    ]
    pool = AuditEvent.objects.get(action="POOL_UPDATED", target_repr="gpu-cluster/default")
    assert texts(pool.before, pool.after) == [
        "GPU capacity: 0 GPUs → 3 GPUs",
        "CPU capacity: 0 CPU → 12 CPU",
        "Memory capacity: 0 B → 90 GiB",
    ]
    # Never rounded: an audit must show that 4294967295 bytes is not 4 GiB.
    assert texts({"memory_bytes": 4 * GI}, {"memory_bytes": 4 * GI - 1}) == [
        "Memory: 4 GiB → 4294967295 bytes (3.99 GiB)"
    ]
    assert texts({"gpu": None}, {"gpu": 1}) == ["GPUs: unlimited → 1 GPU"]


# ---------------------------------------------------------------------------------------------
# Who reads which rows, and which details


def test_a_member_and_a_viewer_read_the_changes_to_their_own_tenant(k8s_world):
    """Before: a member or a viewer read no audit row at all, not even of their own tenant."""
    w = k8s_world
    for who in (w.bob, w.people.dev1_viewer):
        rows = api_rows(who)
        assert {row["tenant_path"] for row in rows} == {"department1/dev1"}
        assert {row["action"] for row in rows} == {
            "TENANT_CREATED",
            "ALLOCATION_CREATED",
            "MEMBERSHIP_GRANTED",
        }
        assert not any(row["details_withheld"] for row in rows)
        page = browser(who).get("/audit/").content.decode()
        assert "Membership granted" in page and "department1/dev1" in page and "GPUs: 1 GPU" in page
        tab = browser(who).get(f"/tenants/{w.dev1.pk}/?tab=audit", HTTP_HX_REQUEST="true").content.decode()
        assert "Tenant created" in tab
    assert {row["tenant_path"] for row in api_rows(w.tom)} == {"department1/dev2"}
    assert api_rows(w.people.outsider) == []


def test_a_member_never_learns_the_parents_of_a_move_they_cannot_see(k8s_world):
    """dev1 moves from department1 to department2; Bob, its member, sees neither parent now. He
    reads the move and the rows recorded before it, under dev1's path now, without their details
    (which say department1)."""
    w = k8s_world
    services.allocation_set(acting_user=w.admin, tenant=w.dev1, spec=spec(w.pool, gpu=0))
    department2 = services.tenant_create(
        acting_user=w.admin, parent=None, name="department2", allocations=[spec(w.pool, gpu=0)]
    )
    services.tenant_move(acting_user=w.admin, tenant=w.dev1, new_parent=department2)
    bob = w.bob
    rows = api_rows(bob)
    assert {row["tenant_path"] for row in rows} == {"department2/dev1"}
    moved = next(row for row in rows if row["action"] == "TENANT_MOVED")
    assert moved["label"] == "Tenant moved" and moved["details_withheld"] is True
    assert (moved["before"], moved["after"], moved["changes"], moved["target_repr"]) == (None, None, None, "")
    assert all(row["details_withheld"] for row in rows)  # every one was recorded under department1
    responses = {
        "api": TokenClient().as_user(bob).get("/api/v1/audit/?page_size=500"),
        "page": browser(bob).get("/audit/"),
        "csv": browser(bob).get("/audit.csv"),
        "tab": browser(bob).get(f"/tenants/{w.dev1.pk}/?tab=audit", HTTP_HX_REQUEST="true"),
    }
    for where, response in responses.items():
        assert response.status_code == 200, where
        assert b"department1" not in response.content, where
    # A grant after the move is recorded under the path Bob reads: its details are his.
    services.membership_grant(acting_user=w.admin, tenant=w.dev1, user=w.tom, role="viewer")
    granted = api_rows(bob, "&action=MEMBERSHIP_GRANTED")[0]
    assert granted["details_withheld"] is False and granted["after"] == {"user": "tom", "role": "viewer"}
    # The platform admin reads the move as recorded; an admin of both parents' common ... there is
    # none: department2's admin reads the move but not where it came from.
    as_recorded = next(row for row in api_rows(w.admin) if row["action"] == "TENANT_MOVED")
    assert as_recorded["before"] == {"path": "department1/dev1"}
    admin2 = user("dept2-admin")
    services.membership_grant(acting_user=w.admin, tenant=department2, user=admin2, role="admin")
    theirs = next(row for row in api_rows(admin2) if row["action"] == "TENANT_MOVED")
    assert theirs["details_withheld"] is True
    assert b"department1" not in TokenClient().as_user(admin2).get("/api/v1/audit/?page_size=500").content


def test_a_viewer_of_a_parent_reads_neither_a_sub_tenants_deletion_nor_a_shared_volumes_tenants(k8s_world):
    w = k8s_world
    viewer = user("dept-viewer")
    services.membership_grant(acting_user=w.admin, tenant=w.department1, user=viewer, role="viewer")
    services.volume_create(
        acting_user=w.admin,
        spec=services.VolumeSpec(
            share=w.share,
            name="public",
            sub_path="public",
            capacity_bytes=10 * GI,
            scope="shared",
            tenants=[w.dev1, w.dev2],
        ),
    )
    services.tenant_delete(acting_user=w.admin, tenant=w.dev2, confirm=True)
    rows = {row["action"]: row for row in api_rows(viewer)}
    assert "TENANT_DELETED" not in rows  # recorded on department1, about dev2
    assert rows["VOLUME_CREATED"]["details_withheld"] is True  # it names dev1 and dev2
    assert rows["TENANT_CREATED"]["details_withheld"] is False  # department1's own
    for url in ("/api/v1/audit/?page_size=500", "/audit/", "/audit.csv"):
        client = TokenClient().as_user(viewer) if url.startswith("/api") else browser(viewer)
        assert b"dev2" not in client.get(url).content and b"dev1" not in client.get(url).content, url
    # Its admin reads both, in full.
    rows = {row["action"]: row for row in api_rows(w.people.dept_admin)}
    assert rows["TENANT_DELETED"]["before"]["name_path"] == "department1/dev2"
    assert set(rows["VOLUME_CREATED"]["after"]["tenants"]) == {"department1/dev1", "department1/dev2"}


def test_a_member_reads_that_their_tenant_was_suspended_not_how_many_sub_tenants_went_with_it(k8s_world):
    w = k8s_world
    services.tenant_create(acting_user=w.admin, parent=w.dev1, name="hidden-child")
    services.tenant_set_state(acting_user=w.people.dept_admin, tenant=w.dev1, state=Tenant.State.SUSPENDED)
    suspended = api_rows(w.bob, "&action=TENANT_SUSPENDED")
    assert [(row["label"], row["details_withheld"]) for row in suspended] == [("Tenant suspended", True)]
    assert "hidden-child" not in str(api_rows(w.bob))
    assert api_rows(w.people.dev1_admin, "&action=TENANT_SUSPENDED")[0]["after"]["tenants_changed"] == 2


# ---------------------------------------------------------------------------------------------
# The page's filters: plain GET (bookmarkable), htmx, form errors, pagination, CSV


def shown_actions(response) -> list[str]:
    assert response.status_code == 200
    return [entry.event.action for entry in response.context["entries"]]


def test_filters_by_tenant_user_action_and_dates_as_a_plain_get_and_with_htmx(k8s_world):
    w = k8s_world
    services.membership_grant(acting_user=w.people.dept_admin, tenant=w.dev2, user=w.bob, role="viewer")
    admin = browser(w.admin)
    by_tenant = admin.get("/audit/", {"tenant": "department1/dev1"})
    assert set(shown_actions(by_tenant)) == {"TENANT_CREATED", "ALLOCATION_CREATED", "MEMBERSHIP_GRANTED"}
    assert len(shown_actions(admin.get("/audit/", {"tenant": "department1"}))) == 4
    assert len(shown_actions(admin.get("/audit/", {"tenant": "department1", "subtree": "on"}))) == 14
    assert shown_actions(admin.get("/audit/", {"user": "dept-admin"})) == ["MEMBERSHIP_GRANTED"]
    assert set(shown_actions(admin.get("/audit/", {"action": "TENANT_CREATED"}))) == {"TENANT_CREATED"}
    today = timezone.localdate()
    assert (
        len(shown_actions(admin.get("/audit/", {"since": today, "until": today})))
        == AuditEvent.objects.count()
    )
    tomorrow = today + datetime.timedelta(days=1)
    assert shown_actions(admin.get("/audit/", {"since": tomorrow})) == []
    # The same with htmx: only the part of the page that changes, filters and rows.
    fragment = admin.get("/audit/", {"action": "TENANT_CREATED"}, HTTP_HX_REQUEST="true")
    assert b"<html" not in fragment.content and b"<form" not in fragment.content  # the rows only
    assert b'id="err-action" hx-swap-oob="true"' in fragment.content  # and each field's errors
    assert b'title="TENANT_CREATED">Tenant created' in fragment.content
    assert b'title="MEMBERSHIP_GRANTED"' not in fragment.content
    # The action picker lists the labels, the pickers suggest what the person can see.
    page = admin.get("/audit/").content.decode()
    assert '<option value="MEMBERSHIP_GRANTED">Membership granted</option>' in page
    assert '<option value="department1/dev2">' in page
    bobs = browser(w.bob).get("/audit/").content.decode()
    assert '<option value="department1/dev2">' in bobs and '<option value="department1">' not in bobs


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"since": "2026-02-30"}, "since", "Enter a valid date."),
        ({"until": "yesterday"}, "until", "Enter a valid date."),
        ({"since": "99999-01-01"}, "since", "Enter a valid date."),
        ({"action": "DROP TABLE"}, "action", "Select a valid choice."),
        (
            {"since": "2026-03-02", "until": "2026-03-01"},
            "until",
            "The end (2026-03-01) comes before the start",
        ),
        ({"tenant": "department1/nope"}, "tenant", "No tenant department1/nope among those you can see."),
    ],
)
def test_bad_filter_input_is_a_form_error_not_a_500(k8s_world, query, field, message):
    response = browser(k8s_world.people.dev1_admin).get("/audit/", query)
    assert response.status_code == 200
    assert message in " ".join(response.context["filters"].errors[field])
    assert response.context["entries"] == []
    assert message.split(" among")[0].encode() in response.content
    assert b'aria-invalid="true"' in response.content
    csv_response = browser(k8s_world.people.dev1_admin).get("/audit.csv", query)
    assert csv_response.status_code == 400 and message.split(" among")[0].encode() in csv_response.content


def test_a_tenant_one_cannot_see_is_answered_as_a_missing_one(k8s_world):
    w = k8s_world
    dev1_admin = browser(w.people.dev1_admin)
    hidden = dev1_admin.get("/audit/", {"tenant": "department1/dev2"})
    missing = dev1_admin.get("/audit/", {"tenant": "department1/dev9"})
    assert hidden.context["filters"].errors["tenant"] == [
        "No tenant department1/dev2 among those you can see."
    ]
    assert missing.context["filters"].errors["tenant"] == [
        "No tenant department1/dev9 among those you can see."
    ]


def test_pages_keep_the_filters_and_the_csv_exports_what_the_filters_keep(k8s_world):
    w = k8s_world
    for number in range(60):
        services.tenant_update(acting_user=w.admin, tenant=w.dev1, description=f"d{number}")
    admin = browser(w.admin)
    first = admin.get("/audit/", {"tenant": "department1/dev1", "action": "TENANT_UPDATED"})
    assert len(first.context["entries"]) == 50
    assert "?tenant=department1%2Fdev1&amp;action=TENANT_UPDATED&amp;page=2" in first.content.decode()
    second = admin.get("/audit/", {"tenant": "department1/dev1", "action": "TENANT_UPDATED", "page": 2})
    assert len(second.context["entries"]) == 10
    assert (
        "Description: d59 → d" not in second.content.decode()
        and "Description: d0 → d1" in second.content.decode()
    )
    rows = csv_rows(admin.get("/audit.csv", {"tenant": "department1/dev1", "action": "TENANT_UPDATED"}))
    assert len(rows) == 60 and {row["label"] for row in rows} == {"Tenant changed"}
    assert rows[0]["changes"] == "Description: d58 → d59" and rows[0]["tenant"] == "department1/dev1"
    assert list(rows[0]) == ["id", "time", "user", "action", "label", "tenant", "target", "changes"]


# ---------------------------------------------------------------------------------------------
# What the page costs: the same for 25 rows as for 50, pinned


def queries_of(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


# A platform admin: the session, the user, the rows' count and page, the tenants and people the
# pickers suggest. Anyone else also reads their grants (restrict) and their tenants' paths of names
# (what of each row they read).
@pytest.mark.parametrize(
    ("who", "expected"),
    [("admin", 6), ("dept_admin", 8), ("bob", 8)],
)
def test_the_audit_page_costs_the_same_for_any_number_of_rows(k8s_world, who, expected):
    w = k8s_world
    reader = w.admin if who == "admin" else getattr(w.people, who, None) or getattr(w, who)
    client = browser(reader)
    client.get("/audit/")  # a first request reads what every later one has cached (content types)
    few = queries_of(client, "/audit/")
    for number in range(60):
        services.tenant_update(acting_user=w.admin, tenant=w.dev1, description=f"d{number}")
    many = queries_of(client, "/audit/")
    filtered = queries_of(
        client, "/audit/?tenant=department1/dev1&subtree=on&action=TENANT_UPDATED&since=2020-01-01"
    )
    assert (few, many) == (expected, expected)
    assert filtered == expected + 1  # the tenant typed is looked up among those the person sees
