"""Issue 15, point 11: a query parameter that takes the id of a tenant, cluster, pool or user is
answered the same for an id that names a row the caller may not see as for an id that names
nothing: an existence oracle otherwise. Canopy's choice: a list filtered by such an id is an
empty page (tenants/api/filters.py); parameters that pick one object to act on answer 404 or 400
the same for both. Every such parameter of every GET operation in the OpenAPI document is tried,
as a user who sees nothing and as a tenant admin."""

from __future__ import annotations

import django_filters
import pytest
from django.contrib.auth import get_user_model
from django.db.models import Max, Model
from django.test import Client
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.generators import SchemaGenerator
from rest_framework.views import APIView

from tenants.models import Allocation, Cluster, NfsShare, ResourcePool, Tenant
from tenants.permissions import Action, restrict_users
from tests.factories import UserFactory
from tests.tenants import builders
from tests.test_csrf import url_patterns

pytestmark = pytest.mark.django_db

User = get_user_model()
# Query parameters that take an id, and what the id names.
ID_PARAMETERS: dict[str, type[Model]] = {
    "tenant": Tenant,
    "parent": Tenant,
    "cluster": Cluster,
    "pool": ResourcePool,
    "user": User,
    "share": NfsShare,
    "allocation": Allocation,
}


def get_operations() -> list[tuple[str, dict]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted((path, methods["get"]) for path, methods in schema["paths"].items() if "get" in methods)


# Whole-number query parameters that name no row.
NOT_IDS = {"page", "page_size", "level", "step", "window", "threshold"}


def test_every_query_parameter_that_takes_an_id_is_known_here():
    """An id parameter under a new name would escape the test below: every whole-number query
    parameter is an id known here or one of NOT_IDS. Not only IdFilter's (documented with the
    largest id as its maximum): a filter declared another way (django-filter's ModelChoiceFilter,
    the existence oracle of the probe, is documented as a plain integer) must be caught too."""
    unknown = []
    for path, operation in get_operations():
        for parameter in operation.get("parameters", []):
            name, schema = parameter["name"], parameter["schema"]
            integer = parameter["in"] == "query" and schema.get("type") == "integer"
            if integer and name not in ID_PARAMETERS and name not in NOT_IDS:
                unknown.append((path, name, schema))
    assert not unknown, unknown


def test_no_list_filter_checks_an_id_against_the_whole_table():
    """django-filter's ModelChoiceFilter (its default for a foreign key) refuses an id that names no
    row with a 400 and filters by an invisible one: the existence oracle of the probe. No filter of
    any API view is one, whatever its name (the test above finds parameters by name)."""
    oracle_filters = (django_filters.ModelChoiceFilter, django_filters.ModelMultipleChoiceFilter)
    checked, oracles = [], []
    for route, _, callback in url_patterns():
        view = getattr(callback, "cls", None)
        if not (isinstance(view, type) and issubclass(view, APIView)):
            continue
        for backend in getattr(view, "filter_backends", []):
            if not issubclass(backend, DjangoFilterBackend):
                continue
            declared = getattr(view, "filterset_class", None)
            serializer = getattr(view, "serializer_class", None)
            meta = declared._meta if declared else getattr(serializer, "Meta", None)
            model = getattr(meta, "model", None)
            if model is None:
                continue
            filterset = backend().get_filterset_class(view(), model._default_manager.none())
            if filterset is None:
                continue
            checked.append(route)
            oracles += [
                (route, name)
                for name, one in filterset.base_filters.items()
                if isinstance(one, oracle_filters)
            ]
    assert len(checked) >= 10, checked
    assert not oracles, oracles


def visible(model: type[Model], user) -> list[int]:
    rows = (
        restrict_users(User.objects.all(), user, Action.VIEW)
        if model is User
        else model.objects.restrict(user, "view")
    )
    return list(rows.values_list("pk", flat=True))


def invisible_and_missing(model: type[Model], user) -> tuple[int | None, int]:
    """A row the user may not see (None when they see every row: pools, for instance) and an id
    that names no row."""
    hidden = model.objects.exclude(pk__in=visible(model, user)).order_by("pk").first()
    return (hidden.pk if hidden else None), model.objects.aggregate(last=Max("pk"))["last"] + 1000


def answer(client: Client, path: str, parameters: dict[str, str], hidden_id: int) -> tuple[int, str]:
    response = client.get(path, parameters)
    body = response.content.decode(errors="replace") if response.status_code >= 300 else ""
    if response.status_code == 200 and response["Content-Type"] == "application/json":
        body = str(response.json().get("results", response.json()))
    return response.status_code, body.replace(str(hidden_id), "<id>")


@pytest.fixture
def world(platform_admin):
    k8s = builders.build_k8s_world(platform_admin)
    builders.build_yarn_world(platform_admin)
    return k8s


@pytest.mark.parametrize("who", ["sees-nothing", "tenant-admin"])
def test_an_invisible_id_and_a_missing_id_get_the_same_answer(world, who):
    user = UserFactory(username="nobody") if who == "sees-nothing" else world.people.dept_admin
    client = Client()
    client.force_login(user)
    own_tenant = str(world.department1.pk)
    tried, compared, differ, lists_not_empty = [], [], [], []
    for path, operation in get_operations():
        if "{id}" in path and who == "sees-nothing":
            continue  # the tenant in the path is already a 404
        url = path.replace("{id}", own_tenant)
        query = [p for p in operation.get("parameters", []) if p["in"] == "query"]
        required = {p["name"]: str(p["schema"].get("enum", ["1"])[0]) for p in query if p.get("required")}
        for parameter in query:
            model = ID_PARAMETERS.get(parameter["name"])
            if model is None:
                continue
            hidden_id, missing_id = invisible_and_missing(model, user)
            missing = answer(client, url, {**required, parameter["name"]: missing_id}, missing_id)
            tried.append(f"{path}?{parameter['name']}")
            if hidden_id is not None:
                hidden = answer(client, url, {**required, parameter["name"]: hidden_id}, hidden_id)
                compared.append(tried[-1])
                if hidden != missing:
                    differ.append((path, parameter["name"], hidden, missing))
            if "page" in {p["name"] for p in query} and missing != (200, "[]"):
                lists_not_empty.append((path, parameter["name"], missing))
    assert not differ, differ
    assert not lists_not_empty, lists_not_empty
    assert len(tried) >= 17, tried
    assert len(compared) >= 9, compared  # pools (and, to tenant admins, clusters) hide nothing


def test_a_visible_id_still_filters_and_what_is_no_id_is_a_400(world):
    client = Client()
    client.force_login(world.people.dept_admin)
    mine = client.get("/api/v1/allocations/", {"tenant": world.dev1.pk}).json()["results"]
    assert {row["tenant"] for row in mine} == {world.dev1.pk} and mine
    for value in ("abc", "1.5", str(2**63), "-1"):
        refused = client.get("/api/v1/allocations/", {"tenant": value})
        assert refused.status_code == 400 and list(refused.json()) == ["tenant"], (value, refused.json())


def test_the_console_answers_a_parent_that_is_invisible_or_missing_alike(world):
    client = Client()
    client.force_login(world.people.dept_admin)
    hidden_id, missing_id = invisible_and_missing(Tenant, world.people.dept_admin)
    assert hidden_id is not None
    assert client.get("/tenants/new/", {"parent": hidden_id}).status_code == 404
    assert client.get("/tenants/new/", {"parent": missing_id}).status_code == 404


def test_a_tenant_id_in_a_body_is_refused_alike_when_invisible_or_missing(world):
    """The writes that name a tenant in their body, as a tenant admin: the same field error."""
    client = Client()
    client.force_login(world.people.dept_admin)
    hidden_id, missing_id = invisible_and_missing(Tenant, world.people.dept_admin)
    assert hidden_id is not None
    writes = [
        ("/api/v1/tenants/", lambda tenant: {"parent": tenant, "name": "dev9"}),
        (f"/api/v1/tenants/{world.dev2.pk}/move/", lambda tenant: {"parent": tenant}),
        ("/api/v1/allocations/", lambda tenant: {"tenant": tenant, "pool": world.pool.pk, "gpu": 0}),
        ("/api/v1/memberships/", lambda tenant: {"tenant": tenant, "username": "bob", "role": "viewer"}),
        (
            "/api/v1/storage/",
            lambda tenant: {"tenant": tenant, "cluster": world.cluster.pk, "space_quota": "1Gi"},
        ),
    ]
    for path, body in writes:
        hidden = client.post(path, body(hidden_id), content_type="application/json")
        missing = client.post(path, body(missing_id), content_type="application/json")
        assert hidden.status_code == missing.status_code == 400, path
        assert hidden.content.decode().replace(str(hidden_id), "<id>") == missing.content.decode().replace(
            str(missing_id), "<id>"
        ), path
