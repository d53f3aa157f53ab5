"""Signing in with OpenID Connect in Chromium, through the real redirect flow to a real provider
(panva's oidc-provider on loopback, tests/clusters/oidc.py) and back."""

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from tenants import services
from tests.clusters.oidc import ACCOUNTS
from tests.identity.helpers import configured

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

User = get_user_model()


def provider_sign_in(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.click("text=Sign in with Example SSO")
    expect(page.locator("h1")).to_have_text("Sign in to the test identity provider")
    page.fill("#login", username)
    page.fill("#password", password)
    page.click("button:has-text('Sign in')")


def test_sign_in_with_the_provider_creates_the_user_with_the_claims_groups(
    page, oidc_provider, platform_admin
):
    research = services.tenant_create(acting_user=platform_admin, parent=None, name="research")
    services.membership_grant(acting_user=platform_admin, tenant=research, group="data-admins", role="viewer")
    with configured(oidc_provider.env()):
        provider_sign_in(page, "alice", ACCOUNTS["alice"]["password"])
        expect(page.locator("h1")).to_have_text("Allow access")
        page.click("button:has-text('Allow')")

        expect(page).to_have_url(re.compile(r"/me/$"))
        expect(page.locator(".topbar .user")).to_contain_text("alice")
        alice = User.objects.get(username="alice")
        assert alice.email == "alice@example.test"
        assert set(alice.groups.values_list("name", flat=True)) == {"ml-team", "data-admins"}
        # The group's role on research is hers, and My access says where it comes from.
        expect(page.locator("article header")).to_contain_text("research")
        expect(page.locator(".role-sources")).to_have_text("(viewer via group data-admins)")

        # A wrong password stays at the provider and Canopy signs no one in.
        page.context.clear_cookies()
        provider_sign_in(page, "bob", "not-his-password")
        expect(page.locator("[role=alert]")).to_have_text("Wrong user name or password.")
        assert not User.objects.filter(username="bob").exists()


def break_glass(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.click("summary:has-text('Break-glass sign-in')")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")


def test_local_sign_in_switched_off_leaves_break_glass_for_superusers(page, oidc_provider, make_user):
    make_user("ops", password="ops-local-1")
    make_user("root", password="root-local-1", is_staff=True, is_superuser=True)
    with configured(oidc_provider.env(CANOPY_LOCAL_LOGIN="false")):
        page.goto("/accounts/login/")
        expect(page.locator("a:has-text('Sign in with Example SSO')")).to_be_visible()
        expect(page.locator("#id_username")).to_be_hidden()

        break_glass(page, "ops", "ops-local-1")
        expect(page.locator("[role=alert]")).to_contain_text("did not match")
        expect(page.locator("#id_username")).to_be_visible()  # the form stays open on a refusal

        break_glass(page, "root", "root-local-1")
        expect(page.locator(".topbar .user")).to_contain_text("root")
