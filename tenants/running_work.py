"""What running work holds of an allocation, as the app that measures usage says (issue 19).

`tenants` imports no other app, yet ending a time-bound grant must not take a tenant below what its
running work holds without saying so. The app that reads the clusters back (usage) registers one
reader here from its `AppConfig.ready()`, the way provisioning registers its `ChangeRecorder`
(`tenants/changes.py`) and usage its parts of the pages (`tenants/console.py`).

A reader gets a tenant id and a pool and returns what the tenant's subtree holds of the pool now,
keyed by the allocation's fields (`gpu` a count, `cpu_millicores`, `memory_bytes`), or None when
nothing was measured recently (then nothing is known to hold anything, and the end goes ahead
saying so). It runs inside the grant's transaction, for no user: a system read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tenants.models import ResourcePool

Held = dict[str, float]
HeldReader = Callable[[int, "ResourcePool"], "Held | None"]

_readers: list[HeldReader] = []


def held_reader_register(reader: HeldReader) -> None:
    """Set what reads the running work's hold on a pool (one reader: the app that measures usage)."""
    _readers[:] = [reader]


def held_reader_unregister() -> None:
    _readers.clear()


def held_of(tenant_id: int, pool: ResourcePool) -> Held | None:
    """What the tenant's running work holds of `pool` now; None: not measured (or no reader)."""
    if not _readers:
        return None
    return _readers[0](tenant_id, pool)
