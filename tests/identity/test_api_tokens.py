"""API tokens (django-rest-knox): handed out for a password at /api/v1/auth/token/, stored only as a
digest, expiring, checked in one query, and every hand-out audited (who, when, from where, never the
token)."""

import hashlib
import importlib
import io
from datetime import timedelta

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from tenants.models import AuditEvent
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
legacy = importlib.import_module("identity.migrations.0001_legacy_api_tokens_hashed")


def issue(username: str, address: str = "127.0.0.1") -> dict:
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": username, "password": PASSWORD}, REMOTE_ADDR=address
    )
    assert response.status_code == 200, response.content
    return response.json()


def as_token(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_handing_out_a_token_is_audited_with_who_when_and_where_but_not_the_token(make_user):
    bob = make_user("bob")
    before = timezone.now()
    body = issue("bob", address="192.0.2.7")

    token = AuthToken.objects.get(user=bob)
    [event] = AuditEvent.objects.all()
    assert (event.actor_id, event.actor_name, event.action, event.tenant_id) == (
        bob.pk,
        "bob",
        "API_TOKEN_ISSUED",
        None,
    )
    assert (event.target_type, event.target_id, event.target_repr) == ("user", str(bob.pk), "bob")
    assert event.after == {"address": "192.0.2.7", "expires_at": token.expiry.isoformat()}
    assert event.before is None and before <= event.created_at <= timezone.now()
    assert body == {"token": body["token"], "expiry": token.expiry.isoformat().replace("+00:00", "Z")}
    row = AuditEvent.objects.filter(pk=event.pk).values().get()
    assert body["token"] not in str(row) and body["token"][:15] not in str(row)


def test_a_refused_request_hands_out_nothing_and_audits_nothing(make_user):
    make_user("bob")
    response = APIClient().post("/api/v1/auth/token/", {"username": "bob", "password": "wrong"})
    assert response.status_code == 400
    assert not AuthToken.objects.exists() and not AuditEvent.objects.exists()


def test_only_a_digest_of_the_token_is_stored(make_user):
    bob = make_user("bob")
    key = issue("bob")["token"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT digest, token_key, user_id FROM knox_authtoken")
        [(digest, prefix, user_id)] = cursor.fetchall()
    assert digest == hashlib.sha512(key.encode()).hexdigest()
    assert (prefix, user_id) == (key[:15], bob.pk)  # the lookup prefix: 15 of 64 characters
    assert key not in digest


def test_a_token_works_until_it_expires_and_expired_ones_are_deleted(make_user):
    bob = make_user("bob")
    key = issue("bob")["token"]
    assert as_token(key).get("/api/v1/tenants/").status_code == 200
    token = AuthToken.objects.get(user=bob)
    assert timedelta(hours=9, minutes=59) < token.expiry - timezone.now() <= timedelta(hours=10)

    AuthToken.objects.filter(pk=token.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    response = as_token(key).get("/api/v1/tenants/")
    assert response.status_code == 401 and response.json() == {"detail": "Invalid token."}
    assert not AuthToken.objects.filter(pk=token.pk).exists()

    # The user's other expired tokens go when a new one is handed out.
    stale, _ = AuthToken.objects.create(user=bob, expiry=timedelta(seconds=-1))
    issue("bob")
    assert not AuthToken.objects.filter(pk=stale.pk).exists()
    assert AuthToken.objects.filter(user=bob).count() == 1


def test_checking_a_token_costs_one_query(make_user):
    make_user("bob")
    client = as_token(issue("bob")["token"])
    with CaptureQueriesContext(connection) as token_queries:
        assert client.get("/api/v1/tenants/").status_code == 200
    first = token_queries.captured_queries[0]["sql"]
    assert "knox_authtoken" in first and "auth_user" in first  # the token and its user, joined
    assert sum("knox_authtoken" in q["sql"] for q in token_queries.captured_queries) == 1


def test_a_deactivated_users_token_is_refused(make_user):
    bob = make_user("bob")
    client = as_token(issue("bob")["token"])
    bob.is_active = False
    bob.save()  # deactivating revokes the tokens (tests/identity/test_token_revocation.py)
    response = client.get("/api/v1/tenants/")
    assert response.status_code == 401 and response.json() == {"detail": "Invalid token."}

    # A user deactivated behind Canopy's back (no save()) keeps their token row, which knox refuses.
    carol = make_user("carol")
    client = as_token(issue("carol")["token"])
    type(carol).objects.filter(pk=carol.pk).update(is_active=False)
    response = client.get("/api/v1/tenants/")
    assert response.status_code == 401 and response.json() == {"detail": "User inactive or deleted."}


def test_clear_text_tokens_of_drf_authtoken_become_digests_and_keep_working(make_user):
    """The migration for a database that used rest_framework.authtoken before."""
    bob = make_user("bob")
    old_key = "0123456789abcdef0123456789abcdef01234567"
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamptz NOT NULL, "
            "user_id integer NOT NULL UNIQUE REFERENCES auth_user (id))"
        )
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, now(), %s)", [old_key, bob.pk])
    with connection.schema_editor() as editor:
        legacy.hash_legacy_tokens(apps, editor)

    assert "authtoken_token" not in connection.introspection.table_names()
    token = AuthToken.objects.get(user=bob)
    assert token.digest == hashlib.sha512(old_key.encode()).hexdigest() and token.expiry is not None
    assert as_token(old_key).get("/api/v1/tenants/").status_code == 200


def test_a_platform_admin_makes_a_token_for_someone_without_a_password(make_user):
    carol = make_user("carol")
    carol.set_unusable_password()  # an OpenID Connect user
    carol.save()
    out, err = io.StringIO(), io.StringIO()
    call_command("api_token", "carol", stdout=out, stderr=err)
    key = out.getvalue().strip()
    assert as_token(key).get("/api/v1/tenants/").status_code == 200
    assert err.getvalue().startswith("Expires: ")
    [event] = AuditEvent.objects.filter(action="API_TOKEN_ISSUED")
    assert (event.actor_name, event.after["address"]) == ("carol", "manage.py api_token")
    with pytest.raises(CommandError, match="no active user named nobody"):
        call_command("api_token", "nobody")
