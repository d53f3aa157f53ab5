"""The OpenAPI document tells the whole truth about errors too: drf-spectacular documents only the
success answer of each operation, so this schema class adds the errors DRF and our exception handler
(tenants/api/errors.py) give, each with its JSON body. API fuzzing (tests/tenants/test_api_fuzz.py)
holds every answer to the document."""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.plumbing import ResolvedComponent, get_view_model
from drf_spectacular.utils import OpenApiResponse
from rest_framework.schemas.utils import get_pk_description

ERROR = "Error"
VALIDATION_ERROR = "ValidationError"
FIELD_ERRORS = "FieldErrors"

COMPONENTS: dict[str, dict[str, Any]] = {
    ERROR: {
        "type": "object",
        "description": "Why the request was refused.",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    },
    FIELD_ERRORS: {
        "type": "object",
        "description": (
            "Messages per field (`non_field_errors` for the request as a whole); a nested object or "
            "list holds a nested field's or a list item's own messages."
        ),
        "additionalProperties": {
            "anyOf": [
                {
                    "type": "array",
                    "items": {
                        "anyOf": [{"type": "string"}, {"$ref": f"#/components/schemas/{FIELD_ERRORS}"}]
                    },
                },
                {"$ref": f"#/components/schemas/{FIELD_ERRORS}"},
            ]
        },
    },
    VALIDATION_ERROR: {
        "description": "Field errors, or a `detail` when the body could not be read at all.",
        "anyOf": [
            {"$ref": f"#/components/schemas/{FIELD_ERRORS}"},
            {"$ref": f"#/components/schemas/{ERROR}"},
        ],
    },
}

READS_ONLY_ITS_PATH = {"GET", "HEAD"}


class AutoSchema(openapi.AutoSchema):
    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        self._register_error_components()
        responses = operation["responses"]
        for status, description in self._error_responses(operation).items():
            responses.setdefault(status, {"description": description})
        # Every error the API answers has a JSON body, also one a view documents by its description only.
        for status, response in responses.items():
            if status.startswith("4") and "content" not in response:
                component = VALIDATION_ERROR if status == "400" else ERROR
                response["content"] = {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}
                }
        return operation

    def _resolve_path_parameters(self, variables: list[str]) -> list[dict[str, Any]]:
        """Ids in paths are typed by their converter (tenants/converters.py: integers up to the
        largest id); the one a viewset looks its rows up by keeps the model's description."""
        parameters = super()._resolve_path_parameters(variables)
        model = get_view_model(self.view, emit_warnings=False)
        lookup = getattr(self.view, "lookup_url_kwarg", None) or getattr(self.view, "lookup_field", "pk")
        for parameter in parameters:
            if model is not None and "description" not in parameter and parameter["name"] in ("id", lookup):
                parameter["description"] = get_pk_description(model, model._meta.pk)
        return parameters

    def _insert_field_validators(self, field: Any, schema: dict[str, Any]) -> None:
        """A regex validator becomes the field's `pattern`, but Python's `\\w` and `\\d` match any
        script's letters and digits while JSON Schema's (ECMA-262) match ASCII only: the document
        would refuse what the API accepts (a username "â"). Such a pattern is said in words."""
        super()._insert_field_validators(field, schema)
        pattern = schema.get("pattern", "")
        if "\\w" in pattern or "\\d" in pattern:
            del schema["pattern"]
            rule = f"Matches `{pattern}`, where \\w and \\d are letters and digits of any script."
            schema["description"] = f"{schema['description']} {rule}" if schema.get("description") else rule

    def _error_responses(self, operation: dict[str, Any]) -> dict[str, str]:
        """The errors this operation can answer: status -> description (the bodies follow the status)."""
        parameters = operation.get("parameters", [])
        errors: dict[str, str] = {}
        # Query parameters and bodies are validated; every write also checks the domain's rules.
        reads_query = any(parameter["in"] == "query" for parameter in parameters)
        if self.method not in READS_ONLY_ITS_PATH or "requestBody" in operation or reads_query:
            errors["400"] = "Invalid input: the messages per field."
        if "requestBody" in operation:
            errors["415"] = "The body is not in one of the documented media types (or has none)."
        if self.view.get_authenticators():
            errors["401"] = "No credentials, or credentials that are not valid."
        if self.view.get_permissions():
            errors["403"] = "Not allowed to do this here."
        # An object the caller may not see is not found, never forbidden; a page past the end too.
        if any(parameter["in"] == "path" for parameter in parameters) or self._is_paginated_list():
            errors["404"] = "Not found, or not visible to you."
        if self.view.get_throttles():
            errors["429"] = "Too many requests; try again later."
        return errors

    def _is_paginated_list(self) -> bool:
        return self._is_list_view() and self._get_paginator() is not None

    def _register_error_components(self) -> None:
        for name, schema in COMPONENTS.items():
            self.registry.register_on_missing(
                ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, schema=schema, object=name)
            )


def error_response(description: str) -> OpenApiResponse:
    """One more error answer for an operation's `extend_schema(responses=...)`, e.g. a 404 for an
    id given in the query rather than the path."""
    return OpenApiResponse(response={"$ref": f"#/components/schemas/{ERROR}"}, description=description)
