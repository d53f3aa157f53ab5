"""The parts of the console's pages that other apps add. `tenants` imports no other app, so its pages
show what was registered here; the registering app's own views and URLs serve those parts.

An app registers from its `AppConfig.ready()` (provisioning does: the Clusters tab, each cluster's
connection on the Pools page and in its deletion's confirmation, the kubeconfig links on My access;
usage: the Monitoring tab, what is used of each pool, the person's jobs on My access; quotas: "Ask
for more" on the Resources tab and My access; tenants itself: the Services tab, from
`tenants/views/service_pages.py`):

- `TenantTab`: a tab of the tenant page. `context(request, tenant)` is merged into the page's
  context like the page's own tabs'; `template` renders the tab (also alone, as the htmx fragment
  `?tab=<key>` swaps in); `before` puts it in front of one of the page's own tabs; `shown(user,
  tenant)`, when given, hides it from whom it is not for; the page loads its `scripts` (static paths).
- `PageSection`: a part of a page, rendered with its template where the page shows its sections,
  the context its `context` returns bound to `section`:
  - `POOLS`: under the pools table; `context(request) -> dict`.
  - `POOLS_CLUSTER`: in each cluster of the Pools page's cluster list (platform admins only);
    `context(request, clusters, **given) -> {cluster id: dict}` reads for all of them at once;
    `given` is what a refused form of the section's own views hands back (`pools_page(given=)`).
  - `CLUSTER_DELETE`: in the confirmation of a cluster's deletion, what else goes with it;
    `context(request, cluster) -> dict`.
  - `MY_ACCESS_TENANT`: in each tenant of My access, after its allocations;
    `context(request, roles) -> {tenant id: dict}` gets the person's roles (`selectors.EffectiveRole`,
    one per tenant) and reads for all of them at once (the page costs the same for any number).
  - `RESOURCES_TAB`: at the top of a tenant page's Resources tab (quotas: "Ask for more" and the
    tenant's quota requests); `context(request, tenant) -> dict`.
- A pool usage reader (one: the app that measures usage): what tenants use of each pool now, shown
  on the Resources tab and My access beside what they are allocated. `reader(request, tenant ids)`
  reads for all of them at once and returns `of(tenant id, pool) -> PoolUse | None`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.http import HttpRequest

    from tenants.models import ResourcePool, Tenant

POOLS = "pools"
POOLS_CLUSTER = "pools_cluster"
CLUSTER_DELETE = "cluster_delete"
MY_ACCESS_TENANT = "my_access_tenant"
RESOURCES_TAB = "resources_tab"


@dataclass(frozen=True)
class TenantTab:
    key: str
    label: str
    template: str
    context: Callable[..., dict[str, Any]]
    before: str | None = None  # the key of the tab it goes in front of; None: last
    shown: Callable[[Any, Tenant], bool] | None = None  # None: shown to whoever sees the tenant
    scripts: tuple[str, ...] = ()  # static paths the page loads for it


@dataclass(frozen=True)
class PageSection:
    page: str
    template: str
    context: Callable[..., Any]


@dataclass(frozen=True)
class PoolUse:
    """What a tenant's subtree uses of one pool now: per resource ("gpu" a count, "cpu" millicores,
    "memory" bytes), None where nothing was measured recently; `borrowed`, where the cluster lends
    idle quota (Kueue), what it uses above its guaranteed amount."""

    used: dict[str, float | None]
    borrowed: dict[str, float] = field(default_factory=dict)


PoolUseOf = Callable[[int, "ResourcePool"], "PoolUse | None"]
PoolUsageReader = Callable[["HttpRequest", list[int]], PoolUseOf]

_tabs: dict[str, TenantTab] = {}
_sections: dict[tuple[str, str], PageSection] = {}
_pool_usage: list[PoolUsageReader] = []


def tab_register(tab: TenantTab) -> None:
    """Add (or replace) the tenant page's tab `tab.key`."""
    _tabs[tab.key] = tab


def section_register(section: PageSection) -> None:
    """Add (or replace) a section of `section.page`, known by its template."""
    _sections[(section.page, section.template)] = section


def pool_usage_register(reader: PoolUsageReader) -> None:
    """Set what reads the tenants' use of their pools (one reader: the app that measures usage)."""
    _pool_usage[:] = [reader]


def tab_get(key: str) -> TenantTab | None:
    return _tabs.get(key)


def tabs_with(own: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The tenant page's tabs, (key, label): its `own` ones with the registered ones in place."""
    merged = list(own)
    # A tab may go in front of another registered tab (provisioning's Clusters in front of usage's
    # Monitoring, whichever registered first): each is placed once the tab it names is.
    waiting = list(_tabs.values())
    while waiting:
        keys = [key for key, _ in merged]
        ready = [tab for tab in waiting if tab.before is None or tab.before in keys] or waiting[:1]
        for tab in ready:
            waiting.remove(tab)
            keys = [key for key, _ in merged]
            at = keys.index(tab.before) if tab.before in keys else len(merged)
            merged.insert(at, (tab.key, tab.label))
    return merged


def tab_shown(key: str, user: Any, tenant: Tenant | None) -> bool:
    """Whether the tab `key` is for `user` on `tenant` (the page's own tabs are for all who see it)."""
    tab = _tabs.get(key)
    if tab is None or tab.shown is None:
        return True
    return tenant is not None and tab.shown(user, tenant)


def tab_scripts() -> list[str]:
    """The static scripts the registered tabs need, each once, in the order they registered."""
    return list(dict.fromkeys(script for tab in _tabs.values() for script in tab.scripts))


def sections(page: str) -> list[PageSection]:
    return [section for (name, _), section in _sections.items() if name == page]


def _nothing_measured(tenant_id: int, pool: ResourcePool) -> PoolUse | None:
    return None


def pool_usage(request: HttpRequest, tenant_ids: list[int]) -> PoolUseOf:
    """What these tenants use of each pool, as the registered reader says (none: nothing measured)."""
    if not _pool_usage:
        return _nothing_measured
    return _pool_usage[0](request, tenant_ids)
