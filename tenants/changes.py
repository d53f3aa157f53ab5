"""What a write to the domain tells the apps built on it, inside the write's own transaction.

`tenants` is upstream: it imports no other app, so it cannot call the ones that follow its changes
(provisioning pushes them to the clusters). Instead each service describes what it changed as a
`TenantChange` and hands it to `change_record` before its transaction commits; every registered
`ChangeRecorder` writes what it needs in that same transaction (provisioning: an intent row per
tenant to push). The change and what follows from it commit or roll back together: a recorder
that raises undoes the change. This is a plain, ordered call, not a Django signal: a service's
effects stay visible from the service, and nothing runs after the commit unless a recorder asks
for it (`transaction.on_commit`).

Two questions are asked of the recorders too, for the same reason:

- `name_check`: may a new tenant take its name? (provisioning: its Kubernetes namespace must be
  one no other tenant holds; it fixes the name in the transaction.)
- `deletion_impact`: what goes with these tenants outside Canopy's database (namespaces, with the
  pods still running in them)? Shown before a deletion is confirmed.

Apps register their recorder in their `AppConfig.ready()` (`recorder_register`), the way NetBox
registers backends and Wagtail hooks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tenants.models import Tenant


@dataclass(frozen=True)
class TenantChange:
    """One write's effect on the tenants, as the services record it.

    `reason` names the change (`TENANT_CREATED`, `ALLOCATION_SET`, ...). The tenants it touches are
    `tenants` and `tenant_ids`; `subtree` adds everything below each of `tenants` (labels, inherited
    admin rights), `parents` each one's parent (its own share is what its children do not hold),
    `users` every tenant where those people hold a role. The sequences are kept as tuples."""

    reason: str
    tenants: Sequence[Tenant] = ()
    tenant_ids: Sequence[int] = ()
    users: Sequence[Any] = ()
    subtree: bool = False
    parents: bool = False

    def __post_init__(self) -> None:
        for name in ("tenants", "tenant_ids", "users"):
            object.__setattr__(self, name, tuple(getattr(self, name)))


@dataclass(frozen=True)
class NamespaceImpact:
    """A namespace a deletion takes with it on one cluster, with the pods still running there
    (`active_pods` None: not asked, `note` says why)."""

    cluster: str
    namespace: str
    active_pods: int | None
    note: str = ""

    def describe(self) -> str:
        if self.active_pods:
            return (
                f"namespace {self.namespace} on {self.cluster} with {self.active_pods} pod(s) still running"
            )
        if self.active_pods is None:
            return f"namespace {self.namespace} on {self.cluster} (running pods not checked: {self.note})"
        return f"namespace {self.namespace} on {self.cluster}"


class ChangeRecorder:
    """What an app that follows the tenants implements (each method may be left as it is here).

    Every method runs inside the calling service's transaction, synchronously: raising
    `ValidationError` refuses the change with that message, any other exception rolls it back."""

    def change_record(self, change: TenantChange) -> None:
        """Record what `change` means for this app (provisioning: the tenants to push again)."""

    def name_check(self, tenant: Tenant) -> None:
        """Refuse a new tenant's name with a `ValidationError` keyed by field, or claim what the
        name needs; `tenant` is saved, in the open transaction."""

    def deletion_impact(self, *, tenant_ids: list[int], ask_clusters: bool) -> list[NamespaceImpact]:
        """What deleting these tenants takes with it outside the database. `ask_clusters` False:
        from the database only (the caller may hold row locks, so no network calls)."""
        return []


_recorders: dict[str, ChangeRecorder] = {}


def recorder_register(name: str, recorder: ChangeRecorder) -> None:
    """Register (or replace) the recorder an app calls `name`; from its `AppConfig.ready()`."""
    _recorders[name] = recorder


def recorder_unregister(name: str) -> None:
    _recorders.pop(name, None)


def recorders() -> list[ChangeRecorder]:
    return list(_recorders.values())


def change_record(change: TenantChange) -> None:
    """Tell every recorder what a service changed; call it inside the service's transaction."""
    for recorder in recorders():
        recorder.change_record(change)


def name_check(*, tenant: Tenant) -> None:
    """Ask every recorder whether the new `tenant` may keep its name (see `ChangeRecorder`)."""
    for recorder in recorders():
        recorder.name_check(tenant)


def deletion_impact(*, tenant_ids: Iterable[int], ask_clusters: bool = True) -> list[NamespaceImpact]:
    """Everything the recorders say deleting these tenants takes with it."""
    ids = list(tenant_ids)
    return [
        impact
        for recorder in recorders()
        for impact in recorder.deletion_impact(tenant_ids=ids, ask_clusters=ask_clusters)
    ]
