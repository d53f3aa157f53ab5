"""The small interface every provisioning backend implements, its result types and our exceptions.

A backend knows how to read, apply and delete manifests somewhere (a Kubernetes API server, a
folder of YAML files). Everything above that is shared and lives here: comparing desired objects
with live ones (`diff_object`), planning what to create, change and delete for one tenant
(`Backend.plan`) and carrying the plan out (`Backend.execute`).

Backends never touch the ORM or the request: they get plain values and dicts, and translate their
client's errors into `BackendError`.
"""

from __future__ import annotations

import datetime
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from kubernetes.utils.quantity import parse_quantity

from provisioning.desired.kubernetes import (
    KIND_ORDER,
    LABEL_PREFIX,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    TENANT_ID_LABEL,
)
from provisioning.desired.kueue import ADMISSION_KINDS, APPLY_ORDER, KUEUE_KINDS
from tenants.quantities import QUANTITY  # Kubernetes' grammar: ASCII digits, whole string

# ---------------------------------------------------------------------------------------------
# Exceptions


# Why a cluster could not be reached at all (`BackendError.reach`): nothing answered (refused,
# timed out, no such host), or the TLS handshake failed (a certificate the CA does not sign).
UNREACHABLE = "unreachable"
TLS = "tls"
SIGN_IN = "sign_in"  # Kerberos: no ticket for the cluster (the KDC, the keytab, the principal)


class BackendError(Exception):
    """A backend could not do what was asked. `message` is shown to people as it is (for a
    Kubernetes API server, its own message); `transient` errors are worth retrying soon; `reach`
    says why the cluster was not reached at all (UNREACHABLE, TLS, SIGN_IN), "" when it answered."""

    def __init__(
        self, message: str, *, status: int | None = None, transient: bool = False, reach: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.transient = transient
        self.reach = reach


class NotSupported(BackendError):
    """The backend cannot do this at all (e.g. mint a token into a folder of files)."""


class ObjectMissing(BackendError):
    """The object an operation needs does not exist (e.g. the person's ServiceAccount)."""


# ---------------------------------------------------------------------------------------------
# Result types


@dataclass(frozen=True, order=True)
class ObjectRef:
    kind: str
    name: str
    namespace: str | None = None
    api_version: str = "v1"

    @classmethod
    def of(cls, obj: dict[str, Any]) -> ObjectRef:
        metadata = obj.get("metadata") or {}
        return cls(
            kind=obj["kind"],
            name=metadata["name"],
            namespace=metadata.get("namespace") or None,
            api_version=obj.get("apiVersion", "v1"),
        )

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "api_version": self.api_version,
            "namespace": self.namespace,
            "name": self.name,
        }


@dataclass(frozen=True)
class FieldChange:
    """One field that differs: `live` is None when it is missing, `desired` None when it goes."""

    path: tuple[str, ...]
    live: Any
    desired: Any

    def to_dict(self) -> dict[str, Any]:
        return {"path": ".".join(self.path), "live": self.live, "desired": self.desired}


@dataclass
class Change:
    action: str  # "create", "update" or "delete"
    ref: ObjectRef
    fields: list[FieldChange] = field(default_factory=list)
    desired: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**self.ref.to_dict(), "action": self.action, "fields": [f.to_dict() for f in self.fields]}


@dataclass(frozen=True)
class Scope:
    """What one plan covers: the objects of one tenant (found by its labels) in its namespace, of
    these kinds. The cluster's own objects (Kueue's flavors, ...) are a scope too: owner id 0, no
    namespace (`provisioning.desired.kueue.CLUSTER_OWNER_ID`).

    `by_name`: cluster-wide kinds of which the tenant has at most one object, named as its
    namespace (Kueue's ClusterQueue and Cohort), read by that name rather than listed."""

    tenant_id: int
    namespace: str
    kinds: tuple[str, ...] = KIND_ORDER
    by_name: tuple[str, ...] = ()

    def covers(self, obj: dict[str, Any]) -> bool:
        """Whether a push of this scope reads `obj` (one of this owner's, from a list of the whole
        cluster): of its kinds, in its namespace, or named as it when read by name."""
        metadata = obj.get("metadata") or {}
        kind = obj.get("kind")
        if kind not in self.kinds:
            return False
        if kind == "Namespace" or kind in self.by_name:
            return metadata.get("name") == self.namespace
        return metadata.get("namespace") in (None, "", self.namespace)


@dataclass
class Reading:
    """What planning a scope read: the owner's objects, and every object read by name on the way
    (None: it does not exist), whoever's it is, so the plan never asks for one twice."""

    owned: list[dict[str, Any]]
    by_name: dict[ObjectRef, dict[str, Any] | None] = field(default_factory=dict)


@dataclass
class Plan:
    scope: Scope
    changes: list[Change] = field(default_factory=list)
    unchanged: list[ObjectRef] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not self.changes

    def count(self, action: str) -> int:
        return sum(1 for change in self.changes if change.action == action)

    def summary(self) -> dict[str, int]:
        return {
            "create": self.count("create"),
            "update": self.count("update"),
            "delete": self.count("delete"),
            "unchanged": len(self.unchanged),
        }

    def describe(self) -> str:
        """'ResourceQuota dev1/canopy-quota: spec.hard.requests.nvidia.com/gpu is 4, wanted 1; ...'"""
        parts = []
        for change in self.changes:
            if change.action == "update":
                fields = ", ".join(
                    f"{'.'.join(f.path)} is {f.live!r}, wanted {f.desired!r}" for f in change.fields[:5]
                )
                parts.append(f"{change.ref}: {fields}")
            else:
                parts.append(f"{change.ref}: {'missing' if change.action == 'create' else 'not wanted'}")
        return "; ".join(parts)


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime.datetime


@dataclass(frozen=True)
class Endpoint:
    """How people reach the cluster: its API server URL and CA certificate (PEM)."""

    server: str
    ca_data: bytes | None


# ---------------------------------------------------------------------------------------------
# Comparing desired and live objects

# Maps whose every key is ours: a key present on the cluster but not wanted is a difference.
_QUEUE_RESOURCE = ("spec", "resourceGroups", "*", "flavors", "*", "resources", "*")
_EXACT_MAPS: dict[str, tuple[tuple[str, ...], ...]] = {
    "ResourceQuota": (("spec", "hard"),),
    "LimitRange": (("spec", "limits", "*", "default"), ("spec", "limits", "*", "defaultRequest")),
    # A borrowing limit no longer sent (the burst became unlimited) is a difference too.
    "ClusterQueue": (_QUEUE_RESOURCE,),
    "Cohort": (_QUEUE_RESOURCE,),
    "ResourceFlavor": (("spec", "nodeLabels"),),
}
# Cluster-wide objects with names anyone could take (Kueue's, the admission policy): an existing one
# that is not this owner's is refused rather than taken over, as a namespace is.
_GUARDED_KINDS = {"Namespace", *ADMISSION_KINDS, *(kind for kind in KUEUE_KINDS if kind != "LocalQueue")}
_MISSING = object()


def _same_scalar(desired: Any, live: Any) -> bool:
    if desired == live:
        return True
    if (
        isinstance(desired, str)
        and isinstance(live, str)
        and QUANTITY.fullmatch(desired)
        and QUANTITY.fullmatch(live)
    ):
        # The API server may write a quantity in another form ("1000m" for "1").
        try:
            return parse_quantity(desired) == parse_quantity(live)
        except (ValueError, InvalidOperation, TypeError):
            return False
    if isinstance(desired, int | float | Decimal) and isinstance(live, str):
        return _same_scalar(str(desired), live)
    return False


def _is_exact(kind: str, path: tuple[str, ...]) -> bool:
    for pattern in _EXACT_MAPS.get(kind, ()):
        if len(pattern) == len(path) and all(p in ("*", q) for p, q in zip(pattern, path, strict=True)):
            return True
    return False


def _ours(key: str) -> bool:
    return key.startswith(LABEL_PREFIX) or key == MANAGED_BY_LABEL


def _walk(kind: str, desired: Any, live: Any, path: tuple[str, ...], out: list[FieldChange]) -> None:
    if live is _MISSING and desired in ("", 0, False, [], {}) and desired is not None:
        return  # the API server leaves out empty values (omitempty)
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            out.append(FieldChange(path, None if live is _MISSING else live, desired))
            return
        for key, value in desired.items():
            _walk(kind, value, live.get(key, _MISSING), (*path, key), out)
        if _is_exact(kind, path):
            extra = [key for key in live if key not in desired]
        elif path in (("metadata", "labels"), ("metadata", "annotations")):
            extra = [key for key in live if key not in desired and _ours(key)]
        else:
            extra = []
        out.extend(FieldChange((*path, key), live[key], None) for key in extra)
    elif isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            out.append(FieldChange(path, None if live is _MISSING else live, desired))
            return
        for index, (want, have) in enumerate(zip(desired, live, strict=True)):
            _walk(kind, want, have, (*path, str(index)), out)
    elif live is _MISSING or not _same_scalar(desired, live):
        out.append(FieldChange(path, None if live is _MISSING else live, desired))


def diff_object(desired: dict[str, Any], live: dict[str, Any]) -> list[FieldChange]:
    """The fields where `live` is not what `desired` says.

    Fields the server adds (status, defaults, managedFields) are not differences; keys we own
    that are present but no longer wanted are (our labels, quota keys, LimitRange defaults), so
    both a changed and a hand-added quota count as drift.
    """
    out: list[FieldChange] = []
    for key, value in desired.items():
        if key in ("apiVersion", "kind"):
            continue
        _walk(desired["kind"], value, live.get(key, _MISSING), (key,), out)
    return out


def is_terminating(obj: dict[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def owner_tenant(obj: dict[str, Any]) -> str | None:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
        return None
    return labels.get(TENANT_ID_LABEL)


def _apply_order(change: Change) -> tuple[int, int, str]:
    index = APPLY_ORDER.index(change.ref.kind) if change.ref.kind in APPLY_ORDER else len(APPLY_ORDER)
    if change.action == "delete":
        return (1, -index, str(change.ref))
    return (0, index, "")


def plans_joined(first: Plan, second: Plan) -> Plan:
    """Two plans as one, in apply order (the cluster's own objects and a tenant's): `second`'s scope."""
    return Plan(
        scope=second.scope,
        changes=sorted([*first.changes, *second.changes], key=_apply_order),
        unchanged=[*first.unchanged, *second.unchanged],
    )


# ---------------------------------------------------------------------------------------------
# The interface


@dataclass
class SyncResult:
    plan: Plan
    writes: int = 0

    def summary(self) -> dict[str, int]:
        return {**self.plan.summary(), "writes": self.writes}


class Backend(ABC):
    """Where desired manifests go. Subclasses implement the five primitives; `plan` and `execute`
    are shared."""

    name: ClassVar[str]

    @abstractmethod
    def describe(self) -> str:
        """A sentence for people: where this backend writes."""

    @abstractmethod
    def list_owned(self, scope: Scope) -> list[dict[str, Any]]:
        """Every object Canopy owns for the scope's tenant (labels), with apiVersion and kind."""

    @abstractmethod
    def read(self, ref: ObjectRef) -> dict[str, Any] | None:
        """One object, or None when it does not exist."""

    @abstractmethod
    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or update an object to match `obj` (fields it no longer names go); return it."""

    @abstractmethod
    def delete(self, ref: ObjectRef) -> None:
        """Delete an object; one that is already gone is not an error."""

    # Optional abilities -----------------------------------------------------------------------

    def read_scope(self, scope: Scope) -> Reading:
        """The scope's objects (`list_owned`) and what was read by name to find them."""
        return Reading(self.list_owned(scope))

    def list_owned_by_tenant(
        self, kinds: tuple[str, ...] = KIND_ORDER
    ) -> dict[int, list[dict[str, Any]]] | None:
        """Every object Canopy owns on the cluster, by tenant id, in a few paged reads for the whole
        cluster (the full reconcile compares every tenant at once); None when the backend cannot,
        and each tenant is then planned with its own `list_owned`."""
        return None

    def server_version(self) -> str:
        raise NotSupported(f"The {self.name} backend has no server to ask.")

    def active_pods(self, namespace: str) -> int | None:
        """Pods in the namespace that have not finished; None when the backend cannot tell."""
        return None

    def issue_token(self, *, namespace: str, service_account: str, seconds: int) -> IssuedToken:
        raise NotSupported(f"The {self.name} backend cannot issue tokens: connect the cluster first.")

    def user_endpoint(self) -> Endpoint:
        raise NotSupported(f"The {self.name} backend has no API server for people to reach.")

    def close(self) -> None:  # noqa: B027 - optional: most backends hold nothing open
        """Release connections."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Shared ------------------------------------------------------------------------------------

    def plan(self, scope: Scope, desired: list[dict[str, Any]]) -> Plan:
        """Compare what the tenant should have with what it has; reads only.

        Objects being deleted count as gone. A namespace that exists but is not this tenant's
        (made by hand, or another tenant's still being removed) is refused rather than taken over,
        since deleting the tenant later would delete it.
        """
        reading = self.read_scope(scope)
        return self.plan_against(scope, desired, reading.owned, read=reading.by_name)

    def plan_against(
        self,
        scope: Scope,
        desired: list[dict[str, Any]],
        owned: list[dict[str, Any]],
        *,
        read: dict[ObjectRef, dict[str, Any] | None] | None = None,
    ) -> Plan:
        """`plan` with the tenant's objects already read (`list_owned`, or its part of
        `list_owned_by_tenant`); `read`: objects already read by name (None: absent)."""
        live = {ObjectRef.of(obj): obj for obj in owned if not is_terminating(obj)}
        plan = Plan(scope=scope)
        for obj in desired:
            ref = ObjectRef.of(obj)
            current = live.pop(ref, None)
            if current is None and ref.kind in _GUARDED_KINDS and ref.namespace is None:
                current = self._existing_to_adopt(ref, scope, read or {})
            if current is None:
                plan.changes.append(Change("create", ref, [], obj))
                continue
            fields = diff_object(obj, current)
            if fields:
                plan.changes.append(Change("update", ref, fields, obj))
            else:
                plan.unchanged.append(ref)
        going = {ref.name for ref in live if ref.kind == "Namespace"}
        for ref in sorted(live):
            if ref.namespace in going:
                continue  # deleting the namespace deletes what is in it
            plan.changes.append(Change("delete", ref))
        plan.changes.sort(key=_apply_order)
        return plan

    def _existing_to_adopt(
        self, ref: ObjectRef, scope: Scope, read: dict[ObjectRef, dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        """A cluster-wide object about to be created that exists already: this owner's (made by a
        push whose labels were lost, or still being deleted), or refused. Read unless it was."""
        existing = read[ref] if ref in read else self.read(ref)
        if existing is None:
            return None
        if is_terminating(existing):
            raise BackendError(
                f"{ref} is still being deleted on the cluster; it is created again once it is gone.",
                transient=True,
            )
        owner = owner_tenant(existing)
        if owner != str(scope.tenant_id):
            whose = "another Canopy tenant" if owner else "someone outside Canopy"
            if ref.kind == "Namespace":
                raise BackendError(
                    f"Namespace {ref.name} already exists on the cluster and belongs to {whose}; "
                    f"Canopy does not take it over. Delete or rename it there."
                )
            raise BackendError(
                f"{ref} already exists on the cluster and belongs to {whose}; Canopy does not take it "
                f"over. Delete it there."
            )
        return existing

    def execute(self, plan: Plan) -> SyncResult:
        """Carry out a plan in order (namespace first, deletions last). Stops at the first error;
        running it again is safe."""
        result = SyncResult(plan=plan)
        for change in plan.changes:
            try:
                if change.action == "delete":
                    self.delete(change.ref)
                else:
                    assert change.desired is not None  # nosec B101 # narrows the type; only deletes have no desired object
                    self.apply(change.desired)
            except BackendError as error:
                raise type(error)(
                    f"{change.ref}: {error.message}", status=error.status, transient=error.transient
                ) from error
            result.writes += 1
        return result

    def sync(self, scope: Scope, desired: list[dict[str, Any]]) -> SyncResult:
        return self.execute(self.plan(scope, desired))
