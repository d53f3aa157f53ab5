"""The export backend: desired manifests as YAML files, a folder per tenant namespace, for GitOps
tools (Argo CD, Flux) or `kubectl apply -R -f`. The embedded default uses it, so the demo pushes
somewhere real without a cluster.

Layout under the backend's root (one root per cluster):

    <namespace>/00-namespace-<namespace>.yaml
    <namespace>/01-serviceaccount-bob.yaml
    ...
    <namespace>/07-persistentvolume-canopy-<namespace>-<claim>.yaml

The number keeps files in the order they must be applied.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from provisioning.backends.base import Backend, BackendError, ObjectRef, Scope, owner_tenant
from provisioning.desired.kubernetes import KIND_ORDER

HEADER = "# Rendered by Canopy from its tenant tree; changes made here are replaced on the next push.\n"


def folder_of(obj: dict[str, Any]) -> str:
    """The tenant folder an object belongs in: its namespace (a PV: the namespace of its claim)."""
    metadata = obj["metadata"]
    if obj["kind"] == "Namespace":
        return metadata["name"]
    if obj["kind"] == "PersistentVolume":
        return obj["spec"]["claimRef"]["namespace"]
    return metadata["namespace"]


def file_name(ref: ObjectRef) -> str:
    index = KIND_ORDER.index(ref.kind) if ref.kind in KIND_ORDER else 99
    return f"{index:02d}-{ref.kind.lower()}-{ref.name}.yaml"


def render(obj: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(obj, sort_keys=False, default_flow_style=False)


def manifest_files(objects: list[dict[str, Any]]) -> dict[str, str]:
    """Relative path -> YAML text for a list of objects (what the export API zips)."""
    return {f"{folder_of(obj)}/{file_name(ObjectRef.of(obj))}": render(obj) for obj in objects}


class ExportBackend(Backend):
    name = "export"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def describe(self) -> str:
        return f"manifests written to {self.root} (export backend: no cluster connected)"

    def _files(self, folder: str) -> list[Path]:
        directory = self.root / folder
        return sorted(directory.glob("*.yaml")) if directory.is_dir() else []

    def _load(self, path: Path) -> dict[str, Any] | None:
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            return None  # a file someone broke by hand is rewritten on the next push
        return data if isinstance(data, dict) and "kind" in data and "metadata" in data else None

    def list_owned(self, scope: Scope) -> list[dict[str, Any]]:
        objects = []
        for path in self._files(scope.namespace):
            obj = self._load(path)
            if obj is not None and owner_tenant(obj) == str(scope.tenant_id):
                objects.append(obj)
        return objects

    def _path(self, ref: ObjectRef, folder: str) -> Path:
        return self.root / folder / file_name(ref)

    def _find(self, ref: ObjectRef) -> Path | None:
        if ref.namespace:
            candidate = self._path(ref, ref.namespace)
            return candidate if candidate.is_file() else None
        matches = sorted(self.root.glob(f"*/{file_name(ref)}")) if self.root.is_dir() else []
        return matches[0] if matches else None

    def read(self, ref: ObjectRef) -> dict[str, Any] | None:
        path = self._find(ref)
        return self._load(path) if path else None

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        path = self._path(ObjectRef.of(obj), folder_of(obj))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename, so a GitOps tool never sees half a file.
            with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
                handle.write(render(obj))
            os.replace(handle.name, path)
        except OSError as error:
            raise BackendError(f"Cannot write {path}: {error.strerror or error}") from error
        return obj

    def delete(self, ref: ObjectRef) -> None:
        if ref.kind == "Namespace":
            # As on a cluster, deleting the namespace deletes everything in it.
            shutil.rmtree(self.root / ref.name, ignore_errors=True)
            return
        path = self._find(ref)
        if path is None:
            return
        try:
            path.unlink()
            if not any(path.parent.iterdir()):
                path.parent.rmdir()
        except FileNotFoundError:
            return
        except OSError as error:
            raise BackendError(f"Cannot delete {path}: {error.strerror or error}") from error
