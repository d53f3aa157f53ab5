"""The OpenAPI document and the Swagger UI: complete, generated without a warning, and usable on an
air-gapped cluster (every asset from the installed sidecar package, nothing from a CDN)."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
import yaml
from django.contrib.staticfiles import finders
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from provisioning.backends.export import HADOOP_FILES
from quotas.api.urls import router as quotas_router
from tenants.api.urls import router
from usage.api.urls import router as usage_router

COLLECTIONS = [
    "clusters",
    "pools",
    "tenants",
    "allocations",
    "allocation-grants",
    "storage",
    "tenant-services",
    "volumes",
    "nfs-shares",
    "plans",
    "memberships",
    "users",
    "audit",
    "workloads",
    "quota-requests",
    "notifications",
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
    # Every collection the routers serve is documented, and nothing else under /api/v1/.
    assert sorted(
        prefix for each in (router, usage_router, quotas_router) for prefix, _, _ in each.registry
    ) == sorted(COLLECTIONS)
    documented = {re.match(r"/api/v1/([^/]+)/", path).group(1) for path in paths}
    assert documented == {
        *COLLECTIONS,
        "auth",
        "provisioning",
        "kubernetes-connections",
        "hadoop-connections",
        "showback",
        "idle-quota",
    }
    # The showback (issue 19): a month's report, and the prices platform admins replace whole.
    assert set(paths["/api/v1/showback/"]) & {"get", "post", "put", "patch", "delete"} == {"get"}
    assert set(paths["/api/v1/showback/prices/"]) & {"get", "post", "put", "patch", "delete"} == {
        "get",
        "put",
    }
    # Idle-quota hints (issue 19, point 4): read only, the window and threshold documented.
    idle_quota = paths["/api/v1/idle-quota/"]
    assert set(idle_quota) & {"get", "post", "put", "patch", "delete"} == {"get"}
    parameters = {p["name"]: p["schema"] for p in idle_quota["get"]["parameters"]}
    assert parameters["threshold"]["minimum"] == 0 and parameters["threshold"]["maximum"] == 100
    assert parameters["window"]["enum"] == [1, 7, 30]
    # NFS shares (issue 15): granted to tenants and taken back, under the share.
    assert set(paths["/api/v1/nfs-shares/{id}/grants/"]) & {"get", "post", "delete"} == {"post"}
    assert set(paths["/api/v1/nfs-shares/{id}/grants/{tenant}/"]) & {"get", "post", "delete"} == {"delete"}
    for action in ("move", "suspend", "resume", "apply-plan", "deletion-impact", "usage"):
        assert f"/api/v1/tenants/{{id}}/{action}/" in paths, action
    # Provisioning (issue 5) adds its own endpoints beside the tenant's.
    for action in ("provisioning", "provisioning/push", "provisioning/preview", "kubeconfig"):
        assert f"/api/v1/tenants/{{id}}/{action}/" in paths, action
    # Quota requests (issue 19): decided and withdrawn by action; the inbox marked read.
    for action in ("quota-requests/{id}/decide", "quota-requests/{id}/withdraw", "notifications/{id}/read"):
        assert set(paths[f"/api/v1/{action}/"]) & {"get", "post", "put", "patch", "delete"} == {"post"}
    assert "post" in paths["/api/v1/notifications/read-all/"]


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


# ---------------------------------------------------------------------------------------------
# Errors are documented too (found by API fuzzing, tests/tenants/test_api_fuzz.py)

VERBS = {"get", "post", "put", "patch", "delete"}


def operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            if method in VERBS:
                yield path, method, operation


def json_schema_ref(response: dict) -> str:
    return response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]


def test_every_operation_documents_the_errors_it_can_answer_with_their_json_bodies(schema):
    for path, method, operation in operations(schema):
        responses = operation["responses"]
        where = f"{method.upper()} {path}"
        # The token endpoint is open to anyone (and answers 401 only if its view reads credentials).
        if path != "/api/v1/auth/token/":
            assert json_schema_ref(responses["401"]) == "Error", where
            assert json_schema_ref(responses["403"]) == "Error", where
        if "{" in path:
            assert json_schema_ref(responses["404"]) == "Error", where
        takes_input = method != "get" or any(p["in"] == "query" for p in operation.get("parameters", []))
        if takes_input:
            assert json_schema_ref(responses["400"]) == "ValidationError", where
        else:
            assert "400" not in responses, where
        if "requestBody" in operation:
            assert json_schema_ref(responses["415"]) == "Error", where
        else:
            assert "415" not in responses, where
    # Pages past the end of a list are 404s; an id in the query that names nothing visible too.
    assert json_schema_ref(schema["paths"]["/api/v1/tenants/"]["get"]["responses"]["404"]) == "Error"
    manifests = schema["paths"]["/api/v1/provisioning/manifests/"]["get"]["responses"]
    assert json_schema_ref(manifests["404"]) == "Error"
    kubeconfig = schema["paths"]["/api/v1/tenants/{id}/kubeconfig/"]["get"]["responses"]
    assert json_schema_ref(kubeconfig["409"]) == "Error"


def test_the_error_bodies_are_described_as_the_api_sends_them(schema, api, k8s_world):
    components = schema["components"]["schemas"]
    assert components["Error"]["required"] == ["detail"]
    field_errors = {"$ref": "#/components/schemas/FieldErrors"}
    assert components["ValidationError"]["anyOf"] == [field_errors, {"$ref": "#/components/schemas/Error"}]

    def conforms(body, component: str) -> None:
        jsonschema.validate(
            body, {"$ref": f"#/components/schemas/{component}", "components": schema["components"]}
        )

    client = api.as_user(k8s_world.admin)
    # A nested field's messages sit under its name, a list item's under its index.
    response = client.post(
        "/api/v1/tenants/",
        {"parent": None, "name": "x", "allocations": [{"pool": k8s_world.pool.pk, "gpu": "lots"}]},
        format="json",
    )
    assert response.status_code == 400
    assert list(response.json()["allocations"]["0"]) == ["gpu"]
    conforms(response.json(), "ValidationError")
    unreadable = client.post("/api/v1/tenants/", "{", content_type="application/json")
    assert unreadable.status_code == 400 and list(unreadable.json()) == ["detail"]
    conforms(unreadable.json(), "ValidationError")
    past_the_end = client.get("/api/v1/tenants/?page=99")
    assert past_the_end.status_code == 404 and past_the_end.json() == {"detail": "Invalid page."}
    conforms(past_the_end.json(), "Error")
    with pytest.raises(jsonschema.ValidationError):
        conforms({"detail": ["not", "a", "string"]}, "Error")


def test_an_api_url_that_matches_nothing_answers_json_and_a_console_url_the_page(api, k8s_world):
    client = api.as_user(k8s_world.admin)
    # The provisioning endpoints take integer ids in the URL itself: anything else matches no URL.
    for url in ("/api/v1/tenants/abc/provisioning/", "/api/v1/tenants/1.5/kubeconfig/", "/api/v1/nothing/"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.headers["Content-Type"] == "application/json", url
        assert response.json() == {"detail": "Not found."}, url
    page = client.get("/tenants/abc/")
    assert page.status_code == 404 and page.headers["Content-Type"].startswith("text/html")


def test_manifests_for_a_tenant_out_of_sight_are_a_documented_json_404(api, k8s_world):
    response = api.as_user(k8s_world.people.dev1_admin).get(
        "/api/v1/provisioning/manifests/", {"tenant": k8s_world.dev2.pk}
    )
    assert response.status_code == 404
    assert response.json() == {"detail": "No such tenant."}


def test_a_body_without_a_content_type_is_a_documented_json_415(api, k8s_world, schema):
    """What a client sends when it forgets the header (schemathesis sends a raw multipart body so)."""
    client = api.as_user(k8s_world.admin)
    response = client.generic(
        "PATCH", f"/api/v1/tenants/{k8s_world.dev1.pk}/", b"--x\r\nname--x--\r\n", content_type=""
    )
    assert response.status_code == 415
    assert response.json() == {"detail": 'Unsupported media type "" in request.'}
    assert "415" in schema["paths"]["/api/v1/tenants/{id}/"]["patch"]["responses"]


@pytest.mark.parametrize("name", HADOOP_FILES)
def test_hadoop_exports_are_documented_as_the_types_they_are_sent_as(schema, yarn_world, api, name):
    """Found by the long schemathesis run: hdfs-setup.sh came as text/x-shellscript, documented as
    application/octet-stream."""
    response = api.as_user(yarn_world.admin).get(
        "/api/v1/provisioning/hadoop-export/", {"cluster": yarn_world.cluster.pk, "file": name}
    )
    assert response.status_code == 200, response.content
    documented = schema["paths"]["/api/v1/provisioning/hadoop-export/"]["get"]["responses"]["200"]["content"]
    assert response.headers["Content-Type"].split(";")[0] in documented


def test_a_username_the_api_takes_is_valid_by_the_document_and_the_rule_is_said_in_words(
    schema, platform_admin, api
):
    """Found by the long schemathesis run: the API accepted the username "â", and the document's
    pattern (whose \\w is ASCII in JSON Schema) called the answer invalid. Since issue 15 a new
    username must be usable on the clusters (ASCII: tenants.cluster_names), and the document says so."""
    admin = api.as_user(platform_admin)
    refused = admin.post(
        "/api/v1/users/", {"username": "â-ñoño", "password": "a long enough passphrase"}, format="json"
    )
    assert refused.status_code == 400
    assert "cannot be used as a user or group name on the clusters" in refused.json()["username"][0]
    response = admin.post(
        "/api/v1/users/", {"username": "a-nono_2", "password": "a long enough passphrase"}, format="json"
    )
    assert response.status_code == 201, response.content
    username = schema["components"]["schemas"]["User"]["properties"]["username"]
    jsonschema.validate(response.json()["username"], username)
    assert "pattern" not in username and "letters a-z and A-Z, digits" in username["description"]
