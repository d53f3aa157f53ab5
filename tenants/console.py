"""The parts of the console's pages that other apps add. `tenants` imports no other app, so its pages
show what was registered here; the registering app's own views and URLs serve those parts.

An app registers from its `AppConfig.ready()` (provisioning does: the Clusters tab, the cluster
connections on the Pools page, the kubeconfig links on My access):

- `TenantTab`: a tab of the tenant page. `context(request, tenant)` is merged into the page's
  context like the page's own tabs'; `template` renders the tab (also alone, as the htmx fragment
  `?tab=<key>` swaps in); `before` puts it in front of one of the page's own tabs.
- `PageSection`: a part of a page, rendered with its template where the page shows its sections,
  the context its `context` returns bound to `section`:
  - `POOLS`: under the pools table; `context(request) -> dict`.
  - `MY_ACCESS_TENANT`: in each tenant of My access, after its allocations;
    `context(request, roles) -> {tenant id: dict}` gets the person's roles (`selectors.EffectiveRole`,
    one per tenant) and reads for all of them at once (the page costs the same for any number).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

POOLS = "pools"
MY_ACCESS_TENANT = "my_access_tenant"


@dataclass(frozen=True)
class TenantTab:
    key: str
    label: str
    template: str
    context: Callable[..., dict[str, Any]]
    before: str | None = None  # the key of the tab it goes in front of; None: last


@dataclass(frozen=True)
class PageSection:
    page: str
    template: str
    context: Callable[..., Any]


_tabs: dict[str, TenantTab] = {}
_sections: dict[tuple[str, str], PageSection] = {}


def tab_register(tab: TenantTab) -> None:
    """Add (or replace) the tenant page's tab `tab.key`."""
    _tabs[tab.key] = tab


def section_register(section: PageSection) -> None:
    """Add (or replace) a section of `section.page`, known by its template."""
    _sections[(section.page, section.template)] = section


def tab_get(key: str) -> TenantTab | None:
    return _tabs.get(key)


def tabs_with(own: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The tenant page's tabs, (key, label): its `own` ones with the registered ones in place."""
    merged = list(own)
    for tab in _tabs.values():
        keys = [key for key, _ in merged]
        at = keys.index(tab.before) if tab.before in keys else len(merged)
        merged.insert(at, (tab.key, tab.label))
    return merged


def sections(page: str) -> list[PageSection]:
    return [section for (name, _), section in _sections.items() if name == page]
