"""Usage's parts of the tenants' pages come from what usage registers (tenants/console.py): the
Monitoring tab, what each pool uses, the person's jobs. The tenants' pages stand without them."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tenants import console, views
from tests.usage.test_dashboards import client_as, record
from usage.measures import WorkloadReading

pytestmark = pytest.mark.django_db

TABS = [
    "summary",
    "resources",
    "storage",
    "services",
    "subtenants",
    "members",
    "clusters",
    "monitoring",
    "audit",
]


def test_the_tabs_stand_in_place_whichever_app_registers_first(monkeypatch):
    # Provisioning's Clusters tab goes in front of usage's Monitoring, registered after it.
    assert [key for key, _ in views.tenant_tabs()] == TABS
    monkeypatch.setattr(console, "_tabs", dict(reversed(list(console._tabs.items()))))
    assert [key for key, _ in views.tenant_tabs()] == TABS


def test_the_monitoring_tab_is_for_members_and_admins_only(k8s_world):
    w = k8s_world
    member = client_as(w, "tom").get(f"/tenants/{w.dev2.pk}/").content.decode()
    assert f'href="/tenants/{w.dev2.pk}/?tab=monitoring"' in member and "js/usage_charts.js" in member
    viewer = client_as(w, "dev1_viewer").get(f"/tenants/{w.dev1.pk}/?tab=monitoring").content.decode()
    dev1 = f"/tenants/{w.dev1.pk}/"
    assert f'href="{dev1}?tab=monitoring"' not in viewer and f'href="{dev1}?tab=clusters"' in viewer
    assert f'href="{dev1}?tab=summary" aria-selected="true"' in viewer  # what was asked for is not there


def test_without_usage_registered_the_pages_show_allocations_and_no_figures(k8s_world, monkeypatch):
    w = k8s_world
    record(
        w,
        timezone.now(),
        workloads=[
            WorkloadReading(w.dev2.pk, "Pod", "dev2", "train-b", "canopy-tom", "running", username="tom")
        ],
    )
    client = client_as(w, "tom")
    resources = f"/tenants/{w.dev2.pk}/?tab=resources"
    assert "Used: 2 GPUs (100 %)" in client.get(resources).content.decode()
    assert "train-b" in client.get("/me/").content.decode()

    monkeypatch.setattr(console, "_pool_usage", [])
    monkeypatch.setattr(console, "_tabs", {k: t for k, t in console._tabs.items() if k != "monitoring"})
    monkeypatch.setattr(
        console,
        "_sections",
        {k: s for k, s in console._sections.items() if not s.template.startswith("usage/")},
    )

    page = client.get(resources).content.decode()
    assert page.count("no usage collected recently") == 3 and "Used: 2 GPUs" not in page
    assert f'href="/tenants/{w.dev2.pk}/?tab=monitoring"' not in page and "js/usage_charts.js" not in page
    assert f'href="/tenants/{w.dev2.pk}/?tab=resources"' in page
    mine = client.get("/me/").content.decode()
    assert "dev2" in mine and "My jobs" not in mine and "train-b" not in mine
