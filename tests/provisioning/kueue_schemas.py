"""Validating rendered objects as the API server will: Kueue's kinds against the openAPIV3Schema of
Kueue's own CRDs (v1beta2, from the module `tests/clusters/kueue/build.sh` copies them out of),
Kubernetes' kinds (and the metadata of Kueue's) with kubernetes-validate for the pinned version.

The CRD schemas are made strict as the API server's pruning is silent: a field the schema does not
know would be dropped without an error, so here it is one. CEL rules (x-kubernetes-validations) are
the API server's to check; the tests on the real Kueue cluster send every object there.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from tests.clusters.kueue import KUEUE_API_VERSION, KUEUE_GROUP, ensure_build

KUBERNETES_VERSION = "1.37"


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    closed = "additionalProperties" in schema or schema.get("x-kubernetes-preserve-unknown-fields")
    if schema.get("type") == "object" and "properties" in schema and not closed:
        schema["additionalProperties"] = False
    for value in (schema.get("properties") or {}).values():
        _strict(value)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            _strict(schema[key])
    for key in ("anyOf", "allOf", "oneOf"):
        for value in schema.get(key) or []:
            _strict(value)
    return schema


@functools.cache
def kueue_schemas() -> dict[str, dict[str, Any]]:
    """Kind -> the strict openAPIV3Schema of its v1beta2 version, from Kueue's CRDs."""
    schemas = {}
    for path in sorted((ensure_build() / "manifests" / "crd").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["group"] != KUEUE_GROUP:
            continue
        for version in crd["spec"]["versions"]:
            if version["name"] == KUEUE_API_VERSION:
                schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                schemas[crd["spec"]["names"]["kind"]] = _strict(schema)
    return schemas


def validate(obj: dict[str, Any]) -> None:
    """Raise if the API server would refuse `obj` by its schema (or silently drop part of it)."""
    if obj["apiVersion"] == f"{KUEUE_GROUP}/{KUEUE_API_VERSION}":
        jsonschema.validate(obj, kueue_schemas()[obj["kind"]])
        # A CRD's schema says only `metadata: {type: object}`; check it as Kubernetes' ObjectMeta.
        shell = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj["metadata"]}
        kubernetes_validate.validate(shell, KUBERNETES_VERSION, strict=True)
        return
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
