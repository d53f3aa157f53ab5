"""Issue 15, point 3: user and group names that YARN ACLs, HDFS ACL specs or Kubernetes role bindings
would read as syntax ("*" is everyone on a queue, "a,b" two names, "x:rwx,default:other:" an extra
HDFS entry, "system:authenticated" everyone on a cluster) are refused by every writer that takes a
name: the services, the API, the console and the admin. Nothing is written when they are."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.urls import reverse

from tenants import services
from tenants.cluster_names import NAME_MAX, is_cluster_name, name_problem
from tenants.models import AuditEvent, Membership
from tests.tenants.builders import TokenClient

pytestmark = pytest.mark.django_db
User = get_user_model()

# What the outside probe used, and the rest of the syntax of the three backends.
HOSTILE = [
    "*",
    " *",
    "devs,default:other::rwx",
    "devs:rwx,default:other:",
    "ops team",
    "Domain Users",
    "system:authenticated",
    "system:masters",
    "a\nb",
    "tab\there",
    "nul\x00",
    "~proxy",
    "-rf",
    ".hidden",
    "..",
    "alice@example.com",
    "ñoño",
    "x" * (NAME_MAX + 1),
    "quote'd",
    "$(touch pwned)",
]
GOOD = ["ml-team", "data_admins", "bob", "u.ser-1", "_svc", "3f2504e0-4f89-11d3-9a0c-0305e82c3301"]


@pytest.mark.parametrize("name", GOOD)
def test_posix_like_names_are_usable(name):
    assert is_cluster_name(name) and name_problem(name) is None


@pytest.mark.parametrize("name", [*HOSTILE, ""])
def test_names_a_cluster_would_read_as_syntax_are_not(name):
    problem = name_problem(name)
    assert problem is not None and not is_cluster_name(name)
    assert "letters a-z and A-Z, digits, '_', '.' and '-'" in problem or "empty" in problem


def rows() -> tuple:
    return (
        list(Membership.objects.order_by("pk").values_list("pk", "group_id", "user_id", "role")),
        list(Group.objects.order_by("pk").values_list("pk", "name")),
        list(User.objects.order_by("pk").values_list("pk", "username")),
        AuditEvent.objects.count(),
    )


@pytest.mark.parametrize("name", HOSTILE)
def test_a_group_is_never_granted_a_role_by_a_name_clusters_read_as_syntax(k8s_world, name):
    w = k8s_world
    before = rows()
    with pytest.raises(ValidationError) as refused:
        services.membership_grant(acting_user=w.people.dev1_admin, tenant=w.dev1, group=name, role="admin")
    assert "cannot be used as a user or group name on the clusters" in refused.value.message_dict["group"][0]
    assert rows() == before


def test_a_group_made_elsewhere_with_such_a_name_is_not_granted_either(k8s_world):
    """Django's own group admin page, or a directory mirrored before names were checked."""
    everyone = Group.objects.create(name="*")
    before = rows()
    with pytest.raises(ValidationError) as refused:
        services.membership_grant(
            acting_user=k8s_world.admin, tenant=k8s_world.dev1, group=everyone, role="member"
        )
    assert "group" in refused.value.message_dict
    assert rows() == before


def test_groups_mirrored_at_sign_in_are_never_such_names(k8s_world):
    """The sign-in backends leave such names out (tests/identity/test_groups_mirror.py); the service
    they call refuses them too, so no other caller can put someone in such a group."""
    zoe = User.objects.create_user("zoe")
    before = rows()
    with pytest.raises(ValidationError) as refused:
        services.user_groups_mirror(user=zoe, names=["ml-team", "*"], source="oidc")
    assert "cannot be used as a user or group name on the clusters" in refused.value.message_dict["groups"][0]
    assert rows() == before and not zoe.groups.exists()


def test_a_person_whose_name_clusters_cannot_hold_gets_no_direct_role(k8s_world):
    """An identity provider may name someone "dana@example.com": they sign in and hold roles through
    groups, but a role of their own would put that name in ACLs."""
    dana = User.objects.create_user("dana@example.com")
    before = rows()
    with pytest.raises(ValidationError) as refused:
        services.membership_grant(
            acting_user=k8s_world.admin, tenant=k8s_world.dev1, user=dana, role="member"
        )
    assert "'dana@example.com' cannot be used" in refused.value.message_dict["user"][0]
    assert rows() == before


@pytest.mark.parametrize("name", ["*", "ops team", "a,b", "x:y", "alice@example.com", "ñoño"])
def test_users_are_not_created_or_renamed_to_such_names(platform_admin, name):
    before = rows()
    with pytest.raises(ValidationError) as refused:
        services.user_create(acting_user=platform_admin, username=name, password="a long enough passphrase")
    assert "username" in refused.value.message_dict
    bob = services.user_create(
        acting_user=platform_admin, username="bob", password="a long enough passphrase"
    )
    before = rows()
    with pytest.raises(ValidationError):
        services.user_update(acting_user=platform_admin, user=bob, username=name)
    bob.refresh_from_db()
    assert bob.username == "bob" and rows() == before


def test_someone_named_before_the_rule_can_still_be_edited_without_a_rename(platform_admin):
    dana = User.objects.create_user("dana@example.com")
    services.user_update(acting_user=platform_admin, user=dana, first_name="Dana")
    dana.refresh_from_db()
    assert (dana.username, dana.first_name) == ("dana@example.com", "Dana")


# --------------------------------------------------------------------------- the API, console, admin


def test_the_api_answers_400_on_the_field_and_writes_nothing(k8s_world):
    w = k8s_world
    api = TokenClient().as_user(w.people.dev1_admin)
    before = rows()
    for name in ("*", "devs,default:other::rwx", "system:authenticated"):
        response = api.post("/api/v1/memberships/", {"tenant": w.dev1.pk, "group": name}, format="json")
        assert response.status_code == 400, response.content
        assert "cannot be used as a user or group name" in response.json()["group"][0]
    users = TokenClient().as_user(w.admin)
    response = users.post(
        "/api/v1/users/", {"username": "a,b", "password": "a long enough passphrase"}, format="json"
    )
    assert response.status_code == 400 and "username" in response.json()
    response = users.patch(f"/api/v1/users/{w.bob.pk}/", {"username": "bob smith"}, format="json")
    assert response.status_code == 400 and "username" in response.json()
    assert rows() == before


def test_the_members_tab_says_why_and_writes_nothing(k8s_world, client):
    w = k8s_world
    client.force_login(w.people.dev1_admin)
    before = rows()
    page = client.post(f"/tenants/{w.dev1.pk}/members/", {"member": "group:*", "role": "admin"}, follow=True)
    assert "cannot be used as a user or group name on the clusters" in page.content.decode()
    assert rows() == before


def test_djangos_user_and_group_admin_pages_check_the_names_too(k8s_world, client):
    client.force_login(k8s_world.admin)
    before = rows()
    page = client.post(reverse("admin:auth_group_add"), {"name": "*", "_save": "Save"})
    assert page.status_code == 200 and "cannot be used as a user or group name" in page.content.decode()
    page = client.post(
        reverse("admin:auth_user_add"),
        {
            "username": "alice@example.com",
            "password1": "a long enough passphrase",
            "password2": "a long enough passphrase",
            "usable_password": "true",
        },
    )
    assert page.status_code == 200 and "cannot be used as a user or group name" in page.content.decode()
    assert rows() == before
    assert (
        client.post(reverse("admin:auth_group_add"), {"name": "ml-ops", "_save": "Save"}).status_code == 302
    )
