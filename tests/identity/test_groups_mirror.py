"""Issue 15, points 3 and 13: groups mirrored at sign-in (OpenID Connect claims, a real LDAP
directory) change people's tenant roles, so each change is audited (who, which groups joined and
left, which roles on which tenants come or go), and an upstream group whose name cannot be written
into a cluster's ACLs ("*", "Domain Users") is not mirrored: signing in still works, the log and the
audit row say which names were skipped."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from identity.backends import OIDCBackend
from provisioning.models import ProvisioningIntent
from tenants import services
from tenants.models import AuditEvent
from tests.clusters.ldap import PASSWORDS
from tests.identity.helpers import configured
from tests.identity.test_oidc_groups import ENV, claims

pytestmark = pytest.mark.django_db
User = get_user_model()
UNUSABLE = ["*", "Domain Users", "devs,default:other::rwx", "system:authenticated"]


def group_names(user) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


def mirrored() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="GROUPS_MIRRORED").order_by("pk"))


@pytest.fixture
def research(platform_admin):
    """A tenant where ml-team is admin and data-admins viewer."""
    tenant = services.tenant_create(acting_user=platform_admin, parent=None, name="research")
    services.membership_grant(acting_user=platform_admin, tenant=tenant, group="ml-team", role="admin")
    services.membership_grant(acting_user=platform_admin, tenant=tenant, group="data-admins", role="viewer")
    return tenant


def test_oidc_sign_in_audits_each_change_of_groups_with_the_roles_it_carries(research, caplog):
    with configured(ENV), caplog.at_level(logging.WARNING, logger="identity.groups"):
        backend = OIDCBackend()
        dana = backend.create_user(claims(groups=["ml-team", "platform-ops", *UNUSABLE]))

    assert group_names(dana) == {"ml-team", "platform-ops"}  # signed in, without the unusable ones
    assert not Group.objects.filter(name__in=UNUSABLE).exists()
    [event] = mirrored()
    assert (event.actor_name, event.target_type, event.target_repr, event.tenant) == (
        "system",
        "user",
        "dana",
        None,
    )
    assert event.before == {"groups": []}
    assert event.after == {
        "groups": ["ml-team", "platform-ops"],
        "source": "oidc",
        "joined": ["ml-team", "platform-ops"],
        "left": [],
        "roles": [{"tenant": "research", "group": "ml-team", "role": "admin", "change": "gained"}],
        "skipped": sorted(UNUSABLE),
    }
    assert "'*'" in caplog.text and "not mirrored" in caplog.text
    assert ProvisioningIntent.objects.filter(tenant_id=research.pk, reason="GROUPS_MIRRORED").exists()

    # The same groups again: nothing changed, nothing audited.
    with configured(ENV):
        OIDCBackend().update_user(dana, claims(groups=["platform-ops", "ml-team", "*"]))
    assert len(mirrored()) == 1

    # Moved from ml-team to data-admins: research's admin role goes, its viewer role comes.
    with configured(ENV):
        OIDCBackend().update_user(dana, claims(groups=["data-admins"]))
    event = mirrored()[-1]
    assert event.before == {"groups": ["ml-team", "platform-ops"]}
    assert (event.after["joined"], event.after["left"], event.after["skipped"]) == (
        ["data-admins"],
        ["ml-team", "platform-ops"],
        [],
    )
    assert event.after["roles"] == [
        {"tenant": "research", "group": "data-admins", "role": "viewer", "change": "gained"},
        {"tenant": "research", "group": "ml-team", "role": "admin", "change": "lost"},
    ]


def test_an_oidc_group_claim_of_only_unusable_names_signs_in_with_no_group(research):
    with configured(ENV):
        dana = OIDCBackend().create_user(claims(groups="*"))
    assert dana.pk and group_names(dana) == set()
    assert mirrored() == []  # no group joined or left: nothing to audit (the log says what was skipped)


@pytest.fixture
def directory(ldap_server):
    """Canopy configured for the test directory, with two groups bob is in whose names no cluster can
    hold; bob's groups put back afterwards."""
    ldap_server.add_group("*", ["bob"])
    ldap_server.add_group("Domain Users", ["bob", "alice"])
    try:
        with configured(ldap_server.env()):
            yield ldap_server
    finally:
        ldap_server.delete_group("*")
        ldap_server.delete_group("Domain Users")


def sign_in(client, username: str):
    response = client.post("/accounts/login/", {"username": username, "password": PASSWORDS[username]})
    assert response.status_code == 302, response.content.decode()[:500]
    return User.objects.get(username=username)


def test_ldap_sign_in_mirrors_usable_groups_and_audits_each_change(client, directory, research):
    bob = sign_in(client, "bob")

    assert group_names(bob) == {"ml-team", "platform-ops"}
    assert not Group.objects.filter(name__in=["*", "Domain Users"]).exists()
    [event] = mirrored()
    assert event.target_repr == "bob"
    assert event.after == {
        "groups": ["ml-team", "platform-ops"],
        "source": "ldap",
        "joined": ["ml-team", "platform-ops"],
        "left": [],
        "roles": [{"tenant": "research", "group": "ml-team", "role": "admin", "change": "gained"}],
        "skipped": ["*", "Domain Users"],
    }

    directory.remove_from_group("ml-team", "bob")
    try:
        client.logout()
        sign_in(client, "bob")
    finally:
        directory.add_to_group("ml-team", "bob")
    assert group_names(bob) == {"platform-ops"}
    event = mirrored()[-1]
    assert (event.after["joined"], event.after["left"]) == ([], ["ml-team"])
    assert event.after["roles"] == [
        {"tenant": "research", "group": "ml-team", "role": "admin", "change": "lost"}
    ]
    assert len(mirrored()) == 2
