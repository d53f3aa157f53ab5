"""Signing in against a real OpenLDAP server (Debian's slapd, tests/clusters/ldap.py)."""

import pytest
from django.contrib.auth import get_user_model

from tests.clusters.ldap import PASSWORDS
from tests.identity.helpers import configured

pytestmark = pytest.mark.django_db

User = get_user_model()


def sign_in(client, username: str, password: str):
    return client.post("/accounts/login/", {"username": username, "password": password})


def group_names(user) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


@pytest.fixture
def directory(ldap_server):
    """Canopy configured for the test directory; bob's groups put back after each test."""
    with configured(ldap_server.env()):
        yield ldap_server


def test_right_password_signs_in_creates_the_user_and_mirrors_groups(client, directory):
    response = sign_in(client, "alice", PASSWORDS["alice"])

    assert response.status_code == 302
    alice = User.objects.get(username="alice")
    assert int(client.session["_auth_user_id"]) == alice.pk
    assert (alice.email, alice.first_name, alice.last_name) == ("alice@example.test", "Alice", "Example")
    assert not alice.has_usable_password()  # the directory holds the password, never Canopy
    assert group_names(alice) == {"ml-team", "data-admins"}
    assert client.get("/me/").status_code == 200


def test_wrong_password_is_refused_with_the_normal_message(client, directory):
    response = sign_in(client, "alice", "not-her-password")

    assert response.status_code == 200
    assert "Your user name and password did not match" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert not User.objects.filter(username="alice").exists()


def test_api_token_with_the_directory_password(directory):
    from rest_framework.test import APIClient

    api = APIClient()
    refused = api.post("/api/v1/auth/token/", {"username": "alice", "password": "wrong"}, format="json")
    assert refused.status_code == 400
    response = api.post(
        "/api/v1/auth/token/", {"username": "alice", "password": PASSWORDS["alice"]}, format="json"
    )
    assert response.status_code == 200 and response.json()["token"]


def test_unknown_person_is_refused(client, directory):
    response = sign_in(client, "mallory", "anything")

    assert "Your user name and password did not match" in response.content.decode()
    assert not User.objects.filter(username="mallory").exists()


def test_removed_from_a_directory_group_loses_the_django_group_at_next_sign_in(client, directory):
    sign_in(client, "bob", PASSWORDS["bob"])
    bob = User.objects.get(username="bob")
    assert group_names(bob) == {"ml-team", "platform-ops"}

    directory.remove_from_group("ml-team", "bob")
    try:
        client.logout()
        sign_in(client, "bob", PASSWORDS["bob"])
    finally:
        directory.add_to_group("ml-team", "bob")

    assert group_names(bob) == {"platform-ops"}
    assert User.objects.filter(username="bob").count() == 1


def test_start_tls_with_the_directory_ca(client, ldap_server):
    env = ldap_server.env(CANOPY_LDAP_START_TLS="true", CANOPY_LDAP_CA_CERT_FILE=str(ldap_server.ca_file))
    with configured(env):
        response = sign_in(client, "alice", PASSWORDS["alice"])

    assert response.status_code == 302
    assert group_names(User.objects.get(username="alice")) == {"ml-team", "data-admins"}


def test_local_accounts_still_sign_in_beside_ldap(client, directory, make_user):
    make_user("carol", password="carol-local-1")

    assert sign_in(client, "carol", "carol-local-1").status_code == 302


def test_directory_staff_group_makes_platform_admins(client, ldap_server):
    from tests.clusters.ldap import group_dn

    with configured(ldap_server.env(CANOPY_LDAP_STAFF_GROUP_DN=group_dn("platform-ops"))):
        sign_in(client, "bob", PASSWORDS["bob"])
        client.logout()
        sign_in(client, "alice", PASSWORDS["alice"])

    assert User.objects.get(username="bob").is_staff
    assert not User.objects.get(username="alice").is_staff


def test_a_directory_group_granted_on_a_tenant_gives_its_members_the_role(client, directory, platform_admin):
    from tenants import services
    from tenants.permissions import Action, can

    tenant = services.tenant_create(acting_user=platform_admin, parent=None, name="research")
    services.membership_grant(acting_user=platform_admin, tenant=tenant, group="ml-team", role="admin")

    sign_in(client, "bob", PASSWORDS["bob"])
    bob = User.objects.get(username="bob")
    assert can(bob, Action.ADMINISTER, tenant)

    directory.remove_from_group("ml-team", "bob")
    try:
        client.logout()
        sign_in(client, "bob", PASSWORDS["bob"])
    finally:
        directory.add_to_group("ml-team", "bob")
    assert not can(bob, Action.VIEW, tenant)
