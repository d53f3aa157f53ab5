"""Revoking API tokens and sessions (issue 15, point 8): a password change on any path (API, console,
the Django admin's forms, `manage.py changepassword`) and a deactivation revoke every API token and
end every session of the user; people sign themselves out everywhere; platform admins revoke a
user's tokens. Each revocation is audited (how many, who, why; never a token)."""

from __future__ import annotations

import getpass
import io
from importlib import import_module

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.test import Client, override_settings
from knox.models import AuthToken
from rest_framework.test import APIClient

from tenants import services
from tenants.models import AuditEvent
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
User = get_user_model()
NEW_PASSWORD = "a-Fresh-passw0rd-for-bob"


def issue_token(username: str, password: str = PASSWORD) -> str:
    response = APIClient().post("/api/v1/auth/token/", {"username": username, "password": password})
    assert response.status_code == 200, response.content
    return response.json()["token"]


def token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def token_works(key: str) -> bool:
    status = token_client(key).get("/api/v1/tenants/").status_code
    assert status in (200, 401), status
    return status == 200


def signed_in_browser(user) -> Client:
    """A console session of `user`, through the real sign-in page."""
    browser = Client()
    response = browser.post("/accounts/login/", {"username": user.get_username(), "password": PASSWORD})
    assert response.status_code == 302, response.content
    return browser


def session_rows_of(user) -> int:
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    return sum(
        str(store.decode(data).get(SESSION_KEY)) == str(user.pk)
        for data in Session.objects.values_list("session_data", flat=True)
    )


def revocations() -> list[tuple[str, str, dict]]:
    return list(
        AuditEvent.objects.filter(action="CREDENTIALS_REVOKED")
        .order_by("pk")
        .values_list("actor_name", "target_repr", "after")
    )


def no_token_in_the_audit(*keys: str) -> None:
    rows = str(list(AuditEvent.objects.values()))
    for key in keys:
        assert key not in rows and key[:15] not in rows


@pytest.fixture
def bob(make_user):
    return make_user("bob")


@pytest.fixture
def staff_browser(platform_admin) -> Client:
    platform_admin.set_password(PASSWORD)
    platform_admin.save()
    return signed_in_browser(platform_admin)


# ---------------------------------------------------------------------------------------------
# A password reset, on every path, revokes the tokens and ends the sessions issued before it.


def reset_through_the_api(bob, platform_admin, staff_browser, monkeypatch):
    response = APIClient()
    response.force_authenticate(platform_admin)
    answer = response.patch(f"/api/v1/users/{bob.pk}/", {"password": NEW_PASSWORD}, format="json")
    assert answer.status_code == 200, answer.content
    return "root-admin"


def reset_on_the_console(bob, platform_admin, staff_browser, monkeypatch):
    answer = staff_browser.post(f"/users/{bob.pk}/password/", {"password": NEW_PASSWORD})
    assert answer.status_code == 302, answer.content
    return "root-admin"


def reset_in_the_django_admin(bob, platform_admin, staff_browser, monkeypatch):
    answer = staff_browser.post(
        f"/admin/auth/user/{bob.pk}/password/",
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert answer.status_code == 302, answer.content
    return "root-admin"


def unusable_in_the_django_admin(bob, platform_admin, staff_browser, monkeypatch):
    """The admin's "disable password-based authentication": set_unusable_password, then save."""
    answer = staff_browser.post(
        f"/admin/auth/user/{bob.pk}/password/", {"usable_password": "false", "unset-password": "1"}
    )
    assert answer.status_code == 302, answer.content
    assert not User.objects.get(pk=bob.pk).has_usable_password()
    return "root-admin"


def reset_with_changepassword(bob, platform_admin, staff_browser, monkeypatch):
    answers = iter([NEW_PASSWORD, NEW_PASSWORD])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))  # the terminal's input
    call_command("changepassword", "bob", stdout=io.StringIO())
    return "system"


def deactivate_through_the_api(bob, platform_admin, staff_browser, monkeypatch):
    client = APIClient()
    client.force_authenticate(platform_admin)
    answer = client.patch(f"/api/v1/users/{bob.pk}/", {"is_active": False}, format="json")
    assert answer.status_code == 200, answer.content
    return "root-admin"


def deactivate_in_the_django_admin(bob, platform_admin, staff_browser, monkeypatch):
    answer = staff_browser.post(
        f"/admin/auth/user/{bob.pk}/change/",
        {
            "username": "bob",
            "email": bob.email,
            "date_joined_0": bob.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": bob.date_joined.strftime("%H:%M:%S"),
            # is_active left out: unchecked
        },
    )
    assert answer.status_code == 302, answer.content
    assert not User.objects.get(pk=bob.pk).is_active
    return "root-admin"


PATHS = {
    "API password reset": (reset_through_the_api, "password_changed"),
    "console password reset": (reset_on_the_console, "password_changed"),
    "Django admin password reset": (reset_in_the_django_admin, "password_changed"),
    "Django admin disables the password": (unusable_in_the_django_admin, "password_changed"),
    "manage.py changepassword": (reset_with_changepassword, "password_changed"),
    "API deactivation": (deactivate_through_the_api, "deactivated"),
    "Django admin deactivation": (deactivate_in_the_django_admin, "deactivated"),
}


@pytest.mark.parametrize("path", list(PATHS))
def test_a_token_and_a_session_from_before_a_password_reset_or_deactivation_stop_working(
    path, bob, platform_admin, staff_browser, monkeypatch
):
    change, reason = PATHS[path]
    first, second = issue_token("bob"), issue_token("bob")
    browser = signed_in_browser(bob)
    assert token_works(first) and token_works(second)
    assert browser.get("/me/").status_code == 200 and session_rows_of(bob) == 1

    actor = change(bob, platform_admin, staff_browser, monkeypatch)

    assert not token_works(first) and not token_works(second)
    assert not AuthToken.objects.filter(user=bob).exists()
    assert session_rows_of(bob) == 0
    assert browser.get("/me/").status_code == 302  # back to the sign-in page
    assert revocations() == [(actor, "bob", {"reason": reason, "tokens": 2, "sessions": 1})]
    no_token_in_the_audit(first, second)
    if reason == "deactivated":
        # Reactivating does not bring the old tokens back.
        User.objects.filter(pk=bob.pk).update(is_active=True)
        assert not token_works(first)
    else:
        # A token asked for with the new password works.
        if User.objects.get(pk=bob.pk).has_usable_password():
            assert token_works(issue_token("bob", NEW_PASSWORD))
    # The platform admin's own session and tokens are not touched.
    assert staff_browser.get("/me/").status_code == 200


def test_changing_your_own_password_in_the_django_admin_keeps_this_browser_only(platform_admin):
    platform_admin.set_password(PASSWORD)
    platform_admin.save()
    here, elsewhere = signed_in_browser(platform_admin), signed_in_browser(platform_admin)
    key = issue_token("root-admin")
    response = here.post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302, response.content
    assert not token_works(key)
    assert here.get("/me/").status_code == 200  # update_session_auth_hash gave it a new session
    assert elsewhere.get("/me/").status_code == 302
    assert session_rows_of(platform_admin) == 1
    assert revocations() == [
        ("root-admin", "root-admin", {"reason": "password_changed", "tokens": 1, "sessions": 2})
    ]


def test_other_saves_of_a_user_revoke_nothing(bob, platform_admin):
    key = issue_token("bob")  # signing in saves last_login
    services.user_update(acting_user=platform_admin, user=bob, first_name="Bob", is_staff=False)
    bob.refresh_from_db()
    bob.save()
    assert token_works(key) and revocations() == []


@override_settings(
    PASSWORD_HASHERS=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
)
def test_django_rehashing_a_password_at_sign_in_is_no_password_change(bob):
    """Django stores a new hash of the same password when the preferred hasher changed (as after an
    upgrade); that must not sign anybody out."""
    assert bob.password.startswith("md5$")
    key = issue_token("bob")  # checks the password: re-hashed with PBKDF2
    assert User.objects.get(pk=bob.pk).password.startswith("pbkdf2_sha256$")
    assert token_works(key) and revocations() == []


# ---------------------------------------------------------------------------------------------
# Signing out everywhere, and platform admins revoking a user's tokens


def test_signing_out_everywhere_through_the_api_revokes_every_token_and_session(bob):
    first, second = issue_token("bob"), issue_token("bob")
    browser = signed_in_browser(bob)
    response = token_client(first).post("/api/v1/auth/sign-out-everywhere/")
    assert response.status_code == 200 and response.json() == {"tokens": 2, "sessions": 1}
    assert not token_works(first) and not token_works(second)
    assert browser.get("/me/").status_code == 302
    assert revocations() == [("bob", "bob", {"reason": "signed_out_everywhere", "tokens": 2, "sessions": 1})]
    no_token_in_the_audit(first, second)


def test_signing_out_everywhere_on_the_console_ends_this_session_too(bob):
    key = issue_token("bob")
    here, elsewhere = signed_in_browser(bob), signed_in_browser(bob)
    assert b"Sign out everywhere" in here.get("/me/").content
    response = here.post("/accounts/sign-out-everywhere/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/accounts/login/")
    assert b"Signed out everywhere: 2 session(s) ended and 1 API token(s) revoked." in response.content
    assert here.get("/me/").status_code == 302 and elsewhere.get("/me/").status_code == 302
    assert not token_works(key) and session_rows_of(bob) == 0
    assert revocations() == [("bob", "bob", {"reason": "signed_out_everywhere", "tokens": 1, "sessions": 2})]
    # Only by POST (with its CSRF token): a link cannot sign anybody out.
    assert signed_in_browser(bob).get("/accounts/sign-out-everywhere/").status_code == 405


def test_a_platform_admin_revokes_a_users_tokens_on_the_users_page(bob, staff_browser):
    key = issue_token("bob")
    browser = signed_in_browser(bob)
    page = staff_browser.get("/users/?q=bob").content.decode()
    assert f'action="/users/{bob.pk}/revoke-tokens/"' in page and "Revoke API tokens" in page
    response = staff_browser.post(f"/users/{bob.pk}/revoke-tokens/", follow=True)
    assert b"Revoked 1 API token(s) of bob." in response.content
    assert not token_works(key)
    assert browser.get("/me/").status_code == 200  # tokens only: the console session stays
    assert revocations() == [("root-admin", "bob", {"reason": "revoked_by_platform_admin", "tokens": 1})]


def test_the_users_page_offers_revoking_to_platform_admins_only(k8s_world):
    w = k8s_world
    browser = Client()
    browser.force_login(w.people.dept_admin)
    assert "Revoke API tokens" not in browser.get("/users/").content.decode()


# ---------------------------------------------------------------------------------------------
# Permission matrix of the new endpoints: anonymous, member, tenant admin, platform admin.
# Refused calls change nothing (tokens, sessions, audit).


def world_state() -> tuple:
    return (
        sorted(AuthToken.objects.values_list("digest", "user_id")),
        sorted(Session.objects.values_list("session_key", flat=True)),
        AuditEvent.objects.count(),
    )


def persona(w, name: str):
    return {
        "anonymous": None,
        "member": w.bob,
        "tenant admin": w.people.dept_admin,
        "platform admin": w.admin,
    }[name]


def api_as(user) -> APIClient:
    client = APIClient()
    if user is not None:
        _, key = AuthToken.objects.create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


# Revoking tom's tokens: tom is a member of department1/dev2, which the tenant admin of department1
# administers, so they can see him (403); bob (dev1) cannot (404).
REVOKE_TOM = {"anonymous": 401, "member": 404, "tenant admin": 403, "platform admin": 200}
SIGN_OUT_SELF = {"anonymous": 401, "member": 200, "tenant admin": 200, "platform admin": 200}


@pytest.mark.parametrize("who", list(REVOKE_TOM))
def test_revoking_a_users_tokens_through_the_api_is_for_platform_admins(k8s_world, who):
    w = k8s_world
    _, tom_key = AuthToken.objects.create(user=w.tom)
    client = api_as(persona(w, who))
    before = world_state()
    response = client.post(f"/api/v1/users/{w.tom.pk}/revoke-tokens/")
    assert response.status_code == REVOKE_TOM[who], response.content
    if response.status_code == 200:
        assert response.json() == {"tokens": 1, "sessions": None}
        assert not token_works(tom_key)
        assert revocations() == [("root-admin", "tom", {"reason": "revoked_by_platform_admin", "tokens": 1})]
    else:
        assert world_state() == before and token_works(tom_key)
        assert b"tom" not in response.content


@pytest.mark.parametrize("who", list(REVOKE_TOM))
def test_revoking_a_users_tokens_on_the_console_is_for_platform_admins(k8s_world, who):
    w = k8s_world
    _, tom_key = AuthToken.objects.create(user=w.tom)
    browser = Client()
    if persona(w, who) is not None:
        browser.force_login(persona(w, who))
    before = world_state()
    response = browser.post(f"/users/{w.tom.pk}/revoke-tokens/")
    expected = {"anonymous": 302, "member": 404, "tenant admin": 403, "platform admin": 302}[who]
    assert response.status_code == expected
    if who == "platform admin":
        assert not token_works(tom_key)
    else:
        if who == "anonymous":
            assert response["Location"].startswith("/accounts/login/")
        assert world_state() == before and token_works(tom_key)


@pytest.mark.parametrize("who", list(SIGN_OUT_SELF))
def test_signing_out_everywhere_signs_out_only_the_caller(k8s_world, who):
    w = k8s_world
    _, tom_key = AuthToken.objects.create(user=w.tom)
    me = persona(w, who)
    client = api_as(me)
    before = world_state()
    response = client.post("/api/v1/auth/sign-out-everywhere/")
    assert response.status_code == SIGN_OUT_SELF[who], response.content
    assert token_works(tom_key)  # nobody else's token goes
    if me is None:
        assert world_state() == before
    else:
        assert not AuthToken.objects.filter(user=me).exists()
        [(actor, target, after)] = revocations()
        assert (actor, target, after["reason"]) == (me.username, me.username, "signed_out_everywhere")
