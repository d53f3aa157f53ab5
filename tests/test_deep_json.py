"""Issue 15, point 6: a body nested too deep for Python's recursive JSON parser is a 400 with a
clear message, on every API operation that takes a body (read from the OpenAPI document), for
anonymous callers too; never a 500 (RecursionError). The same for a kubeconfig upload's YAML.
Form and multipart bodies do not nest: checked too."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from rest_framework.parsers import JSONParser
from rest_framework.views import APIView

from tenants.api.parsers import MAX_DEPTH, StrictJSONParser, nesting_deeper_than
from tenants.models import AuditEvent, Cluster
from tests.factories import PASSWORD, UserFactory
from tests.tenants.test_api_fuzz import PATH_COLLECTION, REAL_IDS, build_fuzz_world
from tests.test_csrf import url_patterns

TOO_DEEP = {"detail": f"JSON nested deeper than {MAX_DEPTH} levels is refused."}


def nested(levels: int, leaf: object = 1) -> str:
    """`levels` arrays and objects inside each other, written without recursion."""
    return '{"a": [' * (levels // 2) + json.dumps(leaf) + "]}" * (levels // 2)


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ("[]", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('["[[[[", "]]]]", "\\"[[["]', 1),  # brackets and escaped quotes inside strings do not count
        ('["\\\\", [[]]]', 3),  # an escaped backslash ends before the quote
        ("[{}, {}, [], [[]]]", 3),
        (nested(1000), 1000),
    ],
)
def test_the_scan_counts_nesting_as_json_does(text, depth):
    assert not nesting_deeper_than(text, depth)
    assert depth == 0 or nesting_deeper_than(text, depth - 1)


def test_a_million_levels_are_refused_in_one_pass_without_recursion():
    assert nesting_deeper_than("[" * 1_000_000, MAX_DEPTH)


@pytest.mark.django_db
@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 1_000, 100_000])
def test_the_token_endpoint_refuses_a_deep_body_without_signing_in(levels):
    """What the probe sent: about 1,000 levels to POST /api/v1/auth/token/, no sign-in needed."""
    user = UserFactory(username="alice")
    body = f'{{"username": "alice", "password": "{PASSWORD}", "extra": {nested(levels)}}}'
    answer = Client().post("/api/v1/auth/token/", body, content_type="application/json")
    assert (answer.status_code, answer.json()) == (400, TOO_DEEP)
    assert not AuditEvent.objects.filter(actor=user).exists()  # no token handed out
    # As deep as allowed, the same body is read and the token handed out.
    body = f'{{"username": "alice", "password": "{PASSWORD}", "extra": {nested(MAX_DEPTH - 2)}}}'
    assert Client().post("/api/v1/auth/token/", body, content_type="application/json").status_code == 200


def operations_with_a_body() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(
        (method.upper(), path)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
        if "requestBody" in operation
    )


@pytest.mark.django_db
def test_every_operation_that_takes_a_body_refuses_a_deep_one_and_changes_nothing(platform_admin):
    build_fuzz_world(platform_admin)
    client = Client()
    client.force_login(platform_admin)
    operations = operations_with_a_body()
    assert len(operations) >= 37, operations  # every POST, PUT and PATCH of the document
    audit_rows = AuditEvent.objects.count()
    answers = {}
    try:
        for method, path in operations:
            match = PATH_COLLECTION.match(path)
            url = path.replace(f"{{{match.group(2)}}}", str(REAL_IDS[match.group(1)][0])) if match else path
            answer = client.generic(method, url, nested(1_000), content_type="application/json")
            answers[f"{method} {path}"] = (answer.status_code, answer.json())
    finally:
        REAL_IDS.clear()
    assert answers == {operation: (400, TOO_DEEP) for operation in answers}
    assert AuditEvent.objects.count() == audit_rows


@pytest.mark.django_db
def test_a_body_over_djangos_upload_limit_is_refused_before_it_is_scanned(platform_admin, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    client = Client()
    client.force_login(platform_admin)
    body = json.dumps({"name": "big", "description": "x" * 2_000})
    answer = client.post("/api/v1/clusters/", body, content_type="application/json")
    detail = "The request body is larger than the server takes (DATA_UPLOAD_MAX_MEMORY_SIZE)."
    assert (answer.status_code, answer.json()) == (400, {"detail": detail})


@pytest.mark.django_db
def test_form_and_multipart_bodies_do_not_nest(k8s_world):
    """Field names such as a[0][0][0]... and JSON-looking values stay flat strings: field errors."""
    client = Client()
    client.force_login(k8s_world.admin)
    deep_key = "allocations" + "[0]" * 200 + "pool"
    fields = {"parent": str(k8s_world.department1.pk), "name": nested(1_000), deep_key: nested(1_000)}
    for encoding in ("form", "multipart"):
        if encoding == "form":
            answer = client.post(
                "/api/v1/tenants/",
                "&".join(f"{key}={value}" for key, value in fields.items()),
                content_type="application/x-www-form-urlencoded",
            )
        else:
            answer = client.post("/api/v1/tenants/", fields)
        assert answer.status_code == 400, (encoding, answer.content[:300])
        assert "name" in answer.json(), answer.json()
    console = client.post("/tenants/new/", fields)
    assert console.status_code == 200 and "errorlist" in console.content.decode()


@pytest.mark.django_db
def test_a_deeply_nested_kubeconfig_is_a_field_error(k8s_world):
    client = Client()
    client.force_login(k8s_world.admin)
    kubeconfig = "clusters: " + "[" * 5_000 + "]" * 5_000
    answer = client.post(
        "/api/v1/kubernetes-connections/",
        {"cluster": k8s_world.cluster.pk, "mode": "kubeconfig", "kubeconfig": kubeconfig},
        content_type="application/json",
    )
    assert answer.status_code == 400
    assert answer.json() == {"kubeconfig": ["A kubeconfig nested deeper than 32 levels is refused."]}


def test_every_api_view_reads_json_only_through_the_depth_limited_parser():
    views = [
        callback.cls for _, _, callback in url_patterns() if isinstance(getattr(callback, "cls", None), type)
    ]
    api_views = [view for view in views if issubclass(view, APIView)]
    assert len(api_views) > 20
    for view in api_views:
        json_parsers = [parser for parser in view.parser_classes if issubclass(parser, JSONParser)]
        assert json_parsers and all(issubclass(p, StrictJSONParser) for p in json_parsers), view


@pytest.mark.django_db
def test_an_object_naming_a_key_twice_is_refused_without_signing_in():
    """Python's json keeps the last of two equal keys silently; a proxy or a reader may take the first."""
    user = UserFactory(username="alice")
    body = f'{{"username": "alice", "password": "wrong", "password": "{PASSWORD}"}}'
    answer = Client().post("/api/v1/auth/token/", body, content_type="application/json")
    assert (answer.status_code, answer.json()) == (
        400,
        {"detail": "JSON parse error - the key 'password' is given more than once in one object."},
    )
    assert not AuditEvent.objects.filter(actor=user).exists()  # no token handed out


@pytest.mark.django_db
def test_a_key_given_twice_in_a_nested_object_changes_nothing(platform_admin):
    client = Client()
    client.force_login(platform_admin)
    twice = '{"name": "c1", "kind": "kubernetes", "description": "x", "description": "y"}'
    answer = client.post("/api/v1/clusters/", twice, content_type="application/json")
    assert answer.status_code == 400, answer.content
    assert "'description' is given more than once" in answer.json()["detail"]
    assert not Cluster.objects.filter(name="c1").exists()
    nested_twice = '{"name": "c1", "kind": "kubernetes", "x": [{"a": 1, "a": 2}]}'
    assert client.post("/api/v1/clusters/", nested_twice, content_type="application/json").status_code == 400
    once = '{"name": "c1", "kind": "kubernetes", "description": "y"}'
    assert client.post("/api/v1/clusters/", once, content_type="application/json").status_code == 201
