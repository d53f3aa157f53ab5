"""The audit trail as people read it (issue 18, point 7): who reads which rows, and what of them."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.tenants.builders import TokenClient

pytestmark = pytest.mark.django_db


def api_rows(user, query: str = "") -> list[dict]:
    response = TokenClient().as_user(user).get(f"/api/v1/audit/?page_size=500{query}")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_a_member_and_a_viewer_read_the_changes_to_their_own_tenant(k8s_world):
    """Before: a member or a viewer read no audit row at all, not even of their own tenant."""
    w = k8s_world
    for who in (w.bob, w.people.dev1_viewer):
        rows = api_rows(who)
        assert {row["tenant_path"] for row in rows} == {"department1/dev1"}
        assert {row["action"] for row in rows} == {"TENANT_CREATED", "ALLOCATION_CREATED", "MEMBERSHIP_GRANTED"}
        client = Client()
        client.force_login(who)
        page = client.get("/audit/").content.decode()
        assert "Membership granted" in page and "department1/dev1" in page
    assert {row["tenant_path"] for row in api_rows(w.tom)} == {"department1/dev2"}
