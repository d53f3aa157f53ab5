"""Issue 18, point 8: the Members tab's picker. It offers exactly the people and groups the reader
may see (`permissions.restrict_users`, `restrict_groups`), never anyone else of the platform; a
name given as typed that is refused comes back as an error under the picker, as typed, and
nothing is written. Query counts pinned."""

import json

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tenants import selectors, services
from tenants.models import AuditEvent, Membership
from tests.tenants.builders import user
from tests.tenants.test_api_permissions import person


@pytest.fixture
def world(k8s_world):
    """The Arena world, plus: tom's full name; the group ml-team with a role on dev2; the
    department admin in a group of their own that holds no role; and elsewhere a tenant, a person
    and a group the department's admins cannot see; someone deactivated and someone whose name a
    cluster cannot hold, both in dev2."""
    w = k8s_world
    admin = w.admin
    services.user_update(acting_user=admin, user=w.tom, first_name="Tom", last_name="Thumb")
    services.membership_grant(acting_user=admin, tenant=w.dev2, group="ml-team", role="viewer")
    w.people.dept_admin.groups.add(Group.objects.create(name="dept-own"))
    elsewhere = services.tenant_create(acting_user=admin, parent=None, name="elsewhere")
    zoe = user("zoe")
    services.membership_grant(acting_user=admin, tenant=elsewhere, user=zoe, role="member")
    services.membership_grant(acting_user=admin, tenant=elsewhere, group="ops-team", role="member")
    gone = user("gone")
    services.membership_grant(acting_user=admin, tenant=w.dev2, user=gone, role="member")
    services.user_update(acting_user=admin, user=gone, is_active=False)
    w.people.dev2_admin.groups.add(Group.objects.create(name="not a cluster name"))
    user("dana@example.com").groups.add(Group.objects.get(name="ml-team"))  # holds dev2 through ml-team
    w.elsewhere = elsewhere
    return w


def offered(reader, tenant, query: str = "") -> set[str]:
    return {c.value for c in selectors.member_choices(user=reader, tenant=tenant, query=query)}


def test_a_tenant_admin_is_offered_only_who_they_may_see(world):
    w = world
    # Not bob, dev1-admin, dev1-viewer (they hold a role on dev1 already); not the outsider, zoe or
    # ops-team (nothing in common); not gone (deactivated) nor dana@example.com (no cluster holds
    # that name: a role through a group only), nor the platform admin.
    assert offered(w.people.dept_admin, w.dev1) == {
        "user:dept-admin",
        "user:dev2-admin",
        "user:tom",
        "group:ml-team",
        "group:dept-own",
    }
    # dev1's admin sees dev1's people only (and their own groups: none).
    assert offered(w.people.dev1_admin, w.dev1) == set()
    assert offered(w.people.dev2_admin, w.dev2) == set()  # everyone they see holds dev2 already


def test_a_platform_admin_is_offered_everyone_active_with_a_name_a_cluster_holds(world):
    w = world
    assert offered(w.admin, w.dev1) == {
        f"user:{name}" for name in (w.admin.username, "dept-admin", "dev2-admin", "outsider", "tom", "zoe")
    } | {"group:ml-team", "group:dept-own", "group:ops-team"}


def test_the_search_reads_user_names_full_names_and_group_names(world):
    w = world
    dept_admin = w.people.dept_admin
    assert offered(dept_admin, w.dev1, "THUMB") == {"user:tom"}
    assert offered(dept_admin, w.dev1, "dev2") == {"user:dev2-admin"}
    assert offered(dept_admin, w.dev1, "team") == {"group:ml-team"}
    assert offered(dept_admin, w.dev1, "zo") == set()  # zoe exists, but not for them
    assert offered(dept_admin, w.dev1, "ops") == set()


@pytest.mark.parametrize(
    ("who", "status"),
    [("outsider", 404), ("dev2_admin", 404), ("dev1_viewer", 403), ("bob", 403), ("dev1_admin", 200)],
)
def test_the_endpoint_answers_admins_of_the_tenant_only(world, who, status):
    client = Client()
    client.force_login(person(world, who))
    response = client.get(f"/tenants/{world.dev1.pk}/members/choices/?q=t")
    assert response.status_code == status
    if status == 200:
        assert response.json() == {"results": []}  # dev1's admin sees nobody without a role on dev1


def test_the_endpoint_answers_json_for_the_picker_and_refuses_a_bad_query(world):
    client = Client()
    client.force_login(world.people.dept_admin)
    answer = client.get(f"/tenants/{world.dev1.pk}/members/choices/?q=t").json()
    assert answer["results"] == [
        {"value": "user:dept-admin", "kind": "user", "name": "dept-admin", "full_name": ""},
        {"value": "user:tom", "kind": "user", "name": "tom", "full_name": "Tom Thumb"},
        {"value": "group:dept-own", "kind": "group", "name": "dept-own", "full_name": ""},
        {"value": "group:ml-team", "kind": "group", "name": "ml-team", "full_name": ""},
    ]
    refused = client.get(f"/tenants/{world.dev1.pk}/members/choices/", {"q": "a\x00b"})
    assert refused.status_code == 400 and "q" in refused.json()
    assert client.get(f"/tenants/{world.dev1.pk}/members/choices/", {"q": "x" * 151}).status_code == 400
    anonymous = Client().get(f"/tenants/{world.dev1.pk}/members/choices/")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")


def rows() -> tuple:
    return (
        sorted(Membership.objects.values_list("tenant_id", "user_id", "group_id", "role"), key=str),
        sorted(Group.objects.values_list("name", flat=True)),
        AuditEvent.objects.count(),
    )


def picker_option(page: str) -> dict:
    """The option the picker starts with: what was sent."""
    select = page[
        page.index('<select name="member"') : page.index("</select>", page.index('<select name="member"'))
    ]
    start = select.index('data-data="') + len('data-data="')
    raw = select[start : select.index('"', start)]
    return json.loads(raw.replace("&quot;", '"').replace("&amp;", "&"))


@pytest.mark.parametrize(
    ("member", "error"),
    [
        ("user:tomm", "There is no active user named tomm."),
        ("user:gone", "There is no active user named gone."),
        ("user:dana@example.com", "cannot be used as a user or group name on the clusters"),
        ("group:ml team", "cannot be used as a user or group name on the clusters"),
        ("user:bob", "bob is already member of department1/dev1; change the role instead."),
        ("tomm", "Pick a user or a group"),
        ("", "Pick a user or a group."),
    ],
)
def test_a_refused_name_is_an_error_under_the_picker_that_keeps_what_was_typed(world, member, error):
    client = Client()
    client.force_login(world.people.dept_admin)
    before = rows()
    response = client.post(f"/tenants/{world.dev1.pk}/members/", {"member": member, "role": "admin"})
    assert response.status_code == 200
    page = response.content.decode()
    errors = page[page.index('id="err-member"') :]
    assert error.replace("'", "&#x27;") in errors[: errors.index("</ul>")]
    assert '<option value="admin" selected>' in page  # the role chosen
    if member:
        assert picker_option(page)["value"] == member
    else:
        assert "data-data=" not in page
    # Its tabs lead back to the tenant page, not to this form's URL.
    assert f'href="/tenants/{world.dev1.pk}/?tab=summary"' in page
    assert rows() == before


def test_a_group_given_as_typed_is_created_and_granted(world):
    client = Client()
    client.force_login(world.people.dev1_admin)
    response = client.post(f"/tenants/{world.dev1.pk}/members/", {"member": "group:ml-ops", "role": "viewer"})
    assert response.status_code == 302 and response["Location"] == f"/tenants/{world.dev1.pk}/?tab=members"
    assert Membership.objects.filter(tenant=world.dev1, group__name="ml-ops", role="viewer").exists()


@pytest.mark.parametrize("who", ["dev1_viewer", "bob"])
def test_someone_who_may_not_add_members_is_refused_before_the_form_is_read(world, who):
    client = Client()
    client.force_login(person(world, who))
    before = rows()
    for body in ({}, {"member": "user:tom", "role": "admin"}):
        assert client.post(f"/tenants/{world.dev1.pk}/members/", body).status_code == 403
    assert rows() == before


# Exact queries: session and user, then (tenant admins only) their grants once; the page's own
# reads. The picker's answer: its tenant, then the people and the groups (one query each). A
# refused name: the tenant and the permission read as for any write (the grants afresh), the person
# looked up, then the page as a GET draws it (the grants once more).
PICKER_QUERIES = {
    "platform": {"members tab": 8, "members fragment": 7, "choices": 5, "refused name": 9},
    "dept_admin": {"members tab": 9, "members fragment": 8, "choices": 6, "refused name": 14},
}


@pytest.mark.parametrize("who", sorted(PICKER_QUERIES))
def test_the_members_tab_and_the_picker_cost_pinned_queries(world, who):
    client = Client()
    client.force_login(person(world, who))
    dev1 = world.dev1.pk
    requests = {
        "members tab": lambda: client.get(f"/tenants/{dev1}/?tab=members"),
        "members fragment": lambda: client.get(
            f"/tenants/{dev1}/?tab=members", headers={"HX-Request": "true"}
        ),
        "choices": lambda: client.get(f"/tenants/{dev1}/members/choices/?q=t"),
        "refused name": lambda: client.post(
            f"/tenants/{dev1}/members/", {"member": "user:tomm", "role": "member"}
        ),
    }
    counts = {}
    for name, request in requests.items():
        with CaptureQueriesContext(connection) as queries:
            response = request()
        assert response.status_code == 200, name
        counts[name] = len(queries)
    assert counts == PICKER_QUERIES[who]
