"""The sign-in rate limit (django-axes): a user name is locked out from one address after
CANOPY_SIGN_IN_FAILURE_LIMIT failures (5) for CANOPY_SIGN_IN_COOLOFF_MINUTES (15), on the sign-in
page, the admin's and the API token endpoint alike, with LDAP as with local accounts; the lock-out
is audited once."""

import time
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client, override_settings
from rest_framework.test import APIClient

from tenants.models import AuditEvent
from tests.clusters.ldap import PASSWORDS
from tests.factories import PASSWORD
from tests.identity.helpers import configured

pytestmark = pytest.mark.django_db

LOCKED = "Too many failed sign-ins; try again in 15 minutes."
WRONG = "Your user name and password did not match"


def page_sign_in(client: Client, username: str, password: str, address: str = "127.0.0.1"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def token_sign_in(username: str, password: str, address: str = "127.0.0.1"):
    return APIClient().post(
        "/api/v1/auth/token/",
        {"username": username, "password": password},
        format="json",
        REMOTE_ADDR=address,
    )


def fail(times: int, username: str, address: str = "127.0.0.1") -> None:
    for _ in range(times):
        response = page_sign_in(Client(), username, "not-the-password", address)
        assert response.status_code == 200 and WRONG in response.content.decode()


def test_the_defaults_are_five_failures_and_fifteen_minutes():
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_TIME.total_seconds() == 15 * 60
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"


def test_the_sign_in_page_locks_the_user_name_out_from_that_address_after_five_failures(make_user):
    make_user("alice")
    make_user("carol")
    fail(4, "alice")

    fifth = page_sign_in(Client(), "alice", "not-the-password")
    assert fifth.status_code == 429
    page = fifth.content.decode()
    assert LOCKED in page and WRONG not in page
    assert 'id="id_username"' in page and 'value="alice"' in page  # the form stays, with the name

    # The right password no longer gets in from there, whatever the way in.
    browser = Client()
    right = page_sign_in(browser, "alice", PASSWORD)
    assert right.status_code == 429 and LOCKED in right.content.decode()
    assert "_auth_user_id" not in browser.session
    token = token_sign_in("alice", PASSWORD)
    assert token.status_code == 429 and token.json() == {"detail": LOCKED}
    admin = Client().post("/admin/login/", {"username": "alice", "password": PASSWORD})
    assert admin.status_code == 429 and LOCKED in admin.content.decode()

    # Another user name from the same address, and the same one from another address, get in.
    assert page_sign_in(Client(), "carol", PASSWORD).status_code == 302
    assert page_sign_in(Client(), "alice", PASSWORD, address="127.0.0.2").status_code == 302

    # One audit row for the lock-out, however often alice keeps trying.
    [event] = AuditEvent.objects.filter(action="SIGN_IN_LOCKED_OUT")
    assert (event.actor_name, event.target_type, event.target_repr, event.tenant_id) == (
        "system",
        "user",
        "alice",
        None,
    )
    assert event.after == {
        "username": "alice",
        "address": "127.0.0.1",
        "path": "/accounts/login/",
        "failures": 5,
        "cool_off_minutes": 15,
    }


def test_the_token_endpoint_counts_with_the_sign_in_page_and_answers_429(make_user):
    make_user("alice")
    fail(2, "alice")
    for _ in range(2):
        response = token_sign_in("alice", "not-the-password")
        assert response.status_code == 400
        assert response.json() == {"non_field_errors": ["Unable to log in with provided credentials."]}

    fifth = token_sign_in("alice", "not-the-password")
    assert fifth.status_code == 429 and fifth.json() == {"detail": LOCKED}
    assert token_sign_in("alice", PASSWORD).status_code == 429
    assert not AuditEvent.objects.filter(action="API_TOKEN_ISSUED").exists()
    [event] = AuditEvent.objects.filter(action="SIGN_IN_LOCKED_OUT")
    assert event.after["path"] == "/api/v1/auth/token/"


def test_an_unknown_user_name_is_locked_out_too_and_audited_without_a_user(db):
    fail(4, "mallory")
    assert page_sign_in(Client(), "mallory", "guess").status_code == 429
    [event] = AuditEvent.objects.filter(action="SIGN_IN_LOCKED_OUT")
    assert (event.target_type, event.target_id, event.target_repr) == ("", "", "")
    assert event.after["username"] == "mallory"


def test_a_successful_sign_in_resets_the_count(make_user):
    make_user("alice")
    fail(4, "alice")
    assert page_sign_in(Client(), "alice", PASSWORD).status_code == 302
    assert token_sign_in("alice", PASSWORD).status_code == 200  # a token counts as a sign-in too
    fail(4, "alice")  # four more: still below the limit, since the count started again
    assert page_sign_in(Client(), "alice", PASSWORD).status_code == 302
    assert not AuditEvent.objects.filter(action="SIGN_IN_LOCKED_OUT").exists()


def test_the_lock_out_ends_after_the_cool_off(make_user):
    make_user("alice")
    with override_settings(AXES_COOLOFF_TIME=timedelta(seconds=1)):
        fail(4, "alice")
        assert page_sign_in(Client(), "alice", "not-the-password").status_code == 429
        assert token_sign_in("alice", PASSWORD).status_code == 429
        time.sleep(1.2)
        assert token_sign_in("alice", PASSWORD).status_code == 200
        assert page_sign_in(Client(), "alice", PASSWORD).status_code == 302


def test_failed_sign_ins_are_recorded_without_the_password(make_user):
    make_user("alice")
    page_sign_in(Client(), "alice", "guess-number-one")
    token_sign_in("alice", "guess-number-two")
    [attempt] = AccessAttempt.objects.all()
    assert (attempt.username, attempt.ip_address, attempt.failures_since_start) == ("alice", "127.0.0.1", 2)
    assert "guess-number" not in attempt.post_data and "csrfmiddlewaretoken" not in attempt.post_data


def test_ldap_sign_ins_are_locked_out_the_same_way(ldap_server):
    with configured(ldap_server.env()):
        for _ in range(4):
            response = page_sign_in(Client(), "alice", "not-her-password")
            assert response.status_code == 200 and WRONG in response.content.decode()
        assert page_sign_in(Client(), "alice", "not-her-password").status_code == 429
        # The directory's right password is refused before the directory is asked.
        refused = page_sign_in(Client(), "alice", PASSWORDS["alice"])
        assert refused.status_code == 429 and LOCKED in refused.content.decode()
        assert token_sign_in("alice", PASSWORDS["alice"]).status_code == 429
        # bob, in the same directory, is not affected.
        assert page_sign_in(Client(), "bob", PASSWORDS["bob"]).status_code == 302
    [event] = AuditEvent.objects.filter(action="SIGN_IN_LOCKED_OUT")
    assert event.after["username"] == "alice" and event.target_repr == ""  # alice never signed in
