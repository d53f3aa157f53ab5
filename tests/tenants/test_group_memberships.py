"""Groups as tenant members: a group's role holds for each of its members, through the one permission
helper, the services, the API and the console; removing someone from the group removes the access."""

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext

from tenants import selectors, services
from tenants.models import AuditEvent, Membership, Tenant
from tenants.permissions import Action, _grants, can, visible_tenants
from tests.tenants.builders import spec, user

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(k8s_world):
    """ml-team is admin of department1; carol is in ml-team and holds no role of her own."""
    w = k8s_world
    w.team = Group.objects.create(name="ml-team")
    w.carol = user("carol")
    w.carol.groups.add(w.team)
    w.grant = services.membership_grant(acting_user=w.admin, tenant=w.department1, group=w.team, role="admin")
    w.other = services.tenant_create(acting_user=w.admin, parent=None, name="department2")
    return w


def paths(queryset) -> set[str]:
    return set(queryset.values_list("name_path", flat=True))


def test_admin_through_a_group_manages_exactly_that_subtree(world):
    carol = world.carol
    assert paths(visible_tenants(carol, Action.ADMINISTER)) == {
        "department1",
        "department1/dev1",
        "department1/dev2",
    }
    assert paths(visible_tenants(carol, Action.MANAGE)) == {"department1/dev1", "department1/dev2"}
    assert not can(carol, Action.VIEW, world.other)

    child = services.tenant_create(acting_user=carol, parent=world.dev1, name="exp")
    assert child.name_path == "department1/dev1/exp"
    services.allocation_set(acting_user=carol, tenant=world.dev1, spec=spec(world.pool, gpu=1))
    with pytest.raises(Http404):
        services.tenant_create(acting_user=carol, parent=world.other, name="nope")
    assert not Tenant.objects.filter(name="nope").exists()


def test_removing_someone_from_the_group_removes_the_access(world):
    world.carol.groups.remove(world.team)

    assert not visible_tenants(world.carol, Action.VIEW).exists()
    with pytest.raises(Http404):
        services.tenant_create(acting_user=world.carol, parent=world.dev1, name="exp")


def test_revoking_the_group_membership_removes_the_access(world):
    services.membership_revoke(acting_user=world.admin, membership=world.grant)

    assert not visible_tenants(world.carol, Action.VIEW).exists()
    event = AuditEvent.objects.filter(action="MEMBERSHIP_REVOKED").latest("id")
    assert event.before == {"group": "ml-team", "role": "admin"}


def test_grants_are_still_one_query_with_direct_and_group_roles(world):
    services.membership_grant(acting_user=world.admin, tenant=world.other, user=world.carol, role="viewer")
    with CaptureQueriesContext(connection) as queries:
        grants = _grants(world.carol)
    assert len(queries) == 1
    assert sorted(grants) == sorted([(world.department1.path, "admin"), (world.other.path, "viewer")])


def test_a_group_is_granted_by_name_and_created_if_the_directory_has_not_shown_it_yet(world):
    membership = services.membership_grant(
        acting_user=world.people.dev1_admin, tenant=world.dev1, group="data-admins", role="viewer"
    )
    assert membership.group == Group.objects.get(name="data-admins")
    assert str(membership) == "group data-admins is viewer of department1/dev1"
    event = AuditEvent.objects.get(action="MEMBERSHIP_GRANTED", target_id=str(membership.pk))
    assert event.after == {"group": "data-admins", "role": "viewer"}

    with pytest.raises(ValidationError, match="already viewer"):
        services.membership_grant(
            acting_user=world.admin, tenant=world.dev1, group="data-admins", role="admin"
        )
    with pytest.raises(ValidationError, match="either a user or a group"):
        services.membership_grant(
            acting_user=world.admin, tenant=world.dev1, user=world.carol, group="data-admins", role="admin"
        )


def test_no_role_cannot_grant_to_a_group_and_nothing_changes(world):
    before = list(Membership.objects.values_list("pk", "group_id", "role"))
    with pytest.raises(Http404):
        services.membership_grant(
            acting_user=world.people.outsider, tenant=world.dev1, group="x", role="admin"
        )
    assert list(Membership.objects.values_list("pk", "group_id", "role")) == before
    assert not Group.objects.filter(name="x").exists()


def test_effective_roles_say_where_each_comes_from(world):
    services.membership_grant(
        acting_user=world.admin, tenant=world.department1, user=world.carol, role="viewer"
    )
    roles = selectors.effective_roles(user=world.carol, person=world.carol)

    assert [(r.tenant.name_path, r.role) for r in roles] == [("department1", "admin")]
    assert [(m.role, m.group and m.group.name) for m in roles[0].sources] == [
        ("viewer", None),
        ("admin", "ml-team"),
    ]


# --------------------------------------------------------------------------- the API


def test_api_grants_a_group(world, api):
    client = api.as_user(world.people.dept_admin)
    response = client.post(
        "/api/v1/memberships/", {"tenant": world.dev2.pk, "group": "ml-ops", "role": "member"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["group"], body["user"], body["role"]) == ("ml-ops", None, "member")

    listed = client.get("/api/v1/memberships/", {"group__name": "ml-ops"}).json()["results"]
    assert [row["id"] for row in listed] == [body["id"]]
    changed = client.patch(f"/api/v1/memberships/{body['id']}/", {"role": "admin"}, format="json")
    assert changed.status_code == 200 and changed.json()["group"] == "ml-ops"


@pytest.mark.parametrize("body_format", ["json", "multipart"])
def test_api_grant_without_a_role_makes_a_member(world, api, body_format):
    """The role defaults to member, as the model's does (found by the long schemathesis run: a form
    POST without `role` got a 500)."""
    response = api.as_user(world.admin).post(
        "/api/v1/memberships/", {"tenant": world.dev2.pk, "group": "ml-ops"}, format=body_format
    )
    assert response.status_code == 201, response.content
    assert response.json()["role"] == Membership.Role.MEMBER
    assert Membership.objects.get(group__name="ml-ops", tenant=world.dev2).role == Membership.Role.MEMBER


@pytest.mark.parametrize(
    "payload", [{"role": "member"}, {"user": "carol", "group": "ml-ops", "role": "member"}]
)
def test_api_wants_exactly_one_subject(world, api, payload):
    response = api.as_user(world.admin).post(
        "/api/v1/memberships/", {"tenant": world.dev2.pk, **payload}, format="json"
    )
    assert response.status_code == 400
    assert not Group.objects.filter(name="ml-ops").exists()


def test_api_user_memberships_unchanged(world, api):
    response = api.as_user(world.admin).post(
        "/api/v1/memberships/", {"tenant": world.dev2.pk, "user": "carol", "role": "viewer"}, format="json"
    )
    assert response.status_code == 201
    assert (response.json()["user"], response.json()["group"]) == ("carol", None)


def test_api_viewer_cannot_grant_a_group(world, api):
    response = api.as_user(world.people.dev1_viewer).post(
        "/api/v1/memberships/", {"tenant": world.dev1.pk, "group": "ml-ops", "role": "admin"}, format="json"
    )
    assert response.status_code == 403
    assert not Group.objects.filter(name="ml-ops").exists()


# --------------------------------------------------------------------------- the console


def test_members_tab_adds_and_lists_a_group(world, client):
    client.force_login(world.people.dev1_admin)
    response = client.post(
        f"/tenants/{world.dev1.pk}/members/", {"member": "group:ml-ops", "role": "viewer"}, follow=True
    )
    page = response.content.decode()
    assert "Group ml-ops is now viewer of department1/dev1." in page
    assert Membership.objects.filter(tenant=world.dev1, group__name="ml-ops", role="viewer").exists()

    tab = client.get(f"/tenants/{world.dev1.pk}/?tab=members").content.decode()
    assert 'data-member="group:ml-ops"' in tab
    assert 'data-member="user:bob"' in tab


def test_my_access_shows_roles_through_groups(world, client):
    client.force_login(world.carol)
    page = client.get("/me/").content.decode()
    assert "department1" in page
    assert "admin via group ml-team" in page
    # Someone whose only admin role comes through a group lands on the tenant tree.
    assert client.get("/").url == "/tenants/"


def test_the_admin_grants_a_group_through_the_service(world, client):
    from django.urls import reverse

    client.force_login(world.admin)
    team = Group.objects.create(name="ml-ops")
    url = reverse("admin:tenants_membership_add")
    response = client.post(
        url, {"tenant": world.dev2.pk, "group": team.pk, "role": "viewer", "_save": "Save"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert AuditEvent.objects.filter(action="MEMBERSHIP_GRANTED", after__group="ml-ops").exists()

    both = client.post(
        url,
        {
            "tenant": world.dev1.pk,
            "group": team.pk,
            "user": world.carol.pk,
            "role": "viewer",
            "_save": "Save",
        },
    )
    assert both.status_code == 200  # a form error: a membership is a user's or a group's
    assert not Membership.objects.filter(tenant=world.dev1, group=team).exists()


def test_tenant_admins_see_the_people_who_hold_a_role_through_a_group(world):
    visible = set(selectors.user_list(user=world.people.dept_admin).values_list("username", flat=True))
    assert "carol" in visible
    assert "carol" not in set(selectors.user_list(user=world.bob).values_list("username", flat=True))
