"""Bad or unusual input to the API is answered, never a 500: cases found by API fuzzing
(tests/tenants/test_api_fuzz.py), each kept here as a plain regression test."""

from __future__ import annotations

import datetime

import pytest
from django.db.models import Max, Min

from tenants.models import AuditEvent

pytestmark = pytest.mark.django_db

HOUR = datetime.timedelta(hours=1)
# Python takes offsets up to 23:59; PostgreSQL refuses any beyond 15:59.
FAR_WEST = datetime.timezone(-datetime.timedelta(hours=22, minutes=12))


def test_audit_since_and_until_in_an_offset_postgresql_refuses_are_read_as_the_same_instant(api, k8s_world):
    client = api.as_user(k8s_world.admin)
    span = AuditEvent.objects.aggregate(first=Min("created_at"), last=Max("created_at"))
    total = AuditEvent.objects.count()

    def count(**window) -> int:
        params = {name: (when.astimezone(FAR_WEST)).isoformat() for name, when in window.items()}
        response = client.get("/api/v1/audit/", {**params, "page_size": 500})
        assert response.status_code == 200, response.content
        return response.json()["count"]

    assert total > 1
    assert count(since=span["first"] - HOUR) == total
    assert count(since=span["last"] + HOUR) == 0
    assert count(until=span["first"]) == 0
    assert count(since=span["first"], until=span["last"] + HOUR) == total


def test_an_audit_instant_that_leaves_the_calendar_in_utc_is_a_field_error(api, k8s_world):
    response = api.as_user(k8s_world.admin).get("/api/v1/audit/", {"since": "0001-01-01T00:00:00+05:00"})
    assert response.status_code == 400
    assert response.json() == {"since": ["This instant is out of range."]}


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/provisioning/manifests/?cluster=²",
        "/api/v1/provisioning/hadoop-export/?cluster=²&file=hdfs-setup.sh",
        "/api/v1/tenants/{dev1}/kubeconfig/?cluster=²",
        "/api/v1/tenants/{dev1}/provisioning/preview/?cluster=²",
    ],
)
def test_a_cluster_id_that_is_a_digit_but_not_a_number_is_a_field_error(api, k8s_world, url):
    """`"²".isdigit()` is true, `int("²")` fails."""
    response = api.as_user(k8s_world.admin).get(url.format(dev1=k8s_world.dev1.pk))
    assert response.status_code == 400
    assert response.json() == {"cluster": ["No cluster with id ²."]}
