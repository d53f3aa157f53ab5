"""The OpenAPI document and the Swagger UI: complete, generated without a warning, and usable on an
air-gapped cluster (every asset from the installed sidecar package, nothing from a CDN)."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from django.contrib.staticfiles import finders
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from tenants.api.urls import router

COLLECTIONS = [
    "clusters",
    "pools",
    "tenants",
    "allocations",
    "storage",
    "volumes",
    "plans",
    "memberships",
    "users",
    "audit",
    "workloads",
]


@pytest.fixture
def schema(anonymous_api, db):
    response = anonymous_api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/vnd.oai.openapi+json")
    return json.loads(response.content)


def test_the_schema_is_an_openapi_3_document_about_canopy(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Canopy API" and schema["info"]["version"] == "1.0.0"
    validate_schema(schema)


def test_the_schema_is_served_as_yaml_by_default_with_the_same_content(anonymous_api, schema):
    response = anonymous_api.get("/api/schema/")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/vnd.oai.openapi")
    assert yaml.safe_load(response.content) == schema


def test_the_schema_lists_every_endpoint(schema):
    paths = schema["paths"]
    for name in COLLECTIONS:
        assert f"/api/v1/{name}/" in paths, name
        assert f"/api/v1/{name}/{{id}}/" in paths, name
        assert "get" in paths[f"/api/v1/{name}/"] and "get" in paths[f"/api/v1/{name}/{{id}}/"]
    assert "post" in paths["/api/v1/auth/token/"]
    # Every collection the router serves is documented, and nothing else under /api/v1/.
    assert sorted(prefix for prefix, _, _ in router.registry) == sorted(COLLECTIONS)
    documented = {re.match(r"/api/v1/([^/]+)/", path).group(1) for path in paths}
    assert documented == {
        *COLLECTIONS,
        "auth",
        "provisioning",
        "kubernetes-connections",
        "hadoop-connections",
    }
    for action in ("move", "suspend", "resume", "apply-plan", "deletion-impact", "usage"):
        assert f"/api/v1/tenants/{{id}}/{action}/" in paths, action
    # Provisioning (issue 5) adds its own endpoints beside the tenant's.
    for action in ("provisioning", "provisioning/push", "provisioning/preview", "kubeconfig"):
        assert f"/api/v1/tenants/{{id}}/{action}/" in paths, action


def test_the_schema_documents_what_each_endpoint_allows(schema):
    paths = schema["paths"]
    verbs = {"get", "post", "put", "patch", "delete"}

    def methods(path: str) -> set[str]:
        return set(paths[path]) & verbs

    assert methods("/api/v1/tenants/") == {"get", "post"}
    assert methods("/api/v1/tenants/{id}/") == {"get", "put", "patch", "delete"}
    # Users are deactivated, never deleted; the audit trail is read-only.
    assert methods("/api/v1/users/{id}/") == {"get", "put", "patch"}
    assert methods("/api/v1/audit/") == {"get"} and methods("/api/v1/audit/{id}/") == {"get"}
    # Tenant creation takes its own body (parent, allocations, storage), not the tenant's read shape.
    create = paths["/api/v1/tenants/"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert {"parent", "name", "allocations", "storage"} <= set(
        schema["components"]["schemas"][body]["properties"]
    )
    confirm = [
        p for p in paths["/api/v1/tenants/{id}/"]["delete"].get("parameters", []) if p["name"] == "confirm"
    ]
    assert len(confirm) == 1 and confirm[0]["in"] == "query"


def test_quantity_fields_are_documented_as_strings_or_numbers(schema):
    components = schema["components"]["schemas"]
    allocation = components["AllocationRequest"]["properties"]
    for name in ("gpu", "cpu", "memory"):
        assert {"type": "string"} in allocation[name]["oneOf"] and {"type": "number"} in allocation[name][
            "oneOf"
        ]
        assert allocation[name]["nullable"] is True
        assert "60Gi" in allocation[name]["description"]


def test_generating_the_schema_emits_no_warning_or_error(db):
    """What `manage.py spectacular --fail-on-warn` checks, in-process: the generator's counters."""
    GENERATOR_STATS.reset()
    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert dict(GENERATOR_STATS._warn_cache) == {}
    assert dict(GENERATOR_STATS._error_cache) == {}
    assert not GENERATOR_STATS
    assert "/api/v1/tenants/" in schema["paths"]


def test_swagger_ui_is_served_from_the_installed_sidecar_without_any_external_host(anonymous_api):
    response = anonymous_api.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()

    assert "cdn" not in page.lower()
    external = [
        url for url in re.findall(r"https?://[^\s\"'<>)]+", page) if not url.startswith("http://testserver")
    ]
    assert external == []

    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    assert any(asset.endswith("swagger-ui.css") for asset in assets)
    for asset in assets:
        assert asset.startswith("/static/drf_spectacular_sidecar/"), asset
        assert finders.find(asset.removeprefix("/static/")) is not None, f"{asset} is not in any static dir"
    assert '"/api/schema/"' in page
