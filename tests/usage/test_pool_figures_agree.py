"""Issue 18, point 3: the Resource pools page and the usage overview show the same allocated and
capacity figures for the same data (testers saw Pools say 0 CPU allocated in the YARN pool bigdata
while the overview said 57.6 cores), and say what each is. Over the demo's world, with the demo's
usage figures, as the embedded default shows it. The same in Chromium: tests/browser/test_figures_and_kubeconfig.py."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.html import Element, parse_html
from django.test.utils import CaptureQueriesContext

from tenants.demo import load_demo
from tenants.models import ResourcePool

pytestmark = pytest.mark.django_db


def _text(node) -> str:
    if isinstance(node, str):
        return node
    return " ".join(_text(child) for child in node.children).strip()


def _elements(node, found: list[Element] | None = None) -> list[Element]:
    """Every element under `node`, in document order."""
    found = [] if found is None else found
    if isinstance(node, Element):
        found.append(node)
        for child in node.children:
            _elements(child, found)
    return found


def _cells(row: Element) -> dict[str, str]:
    """A row's figures by their class: figure-capacity, figure-allocated, ..."""
    cells = {}
    for element in _elements(row):
        for css_class in dict(element.attributes).get("class", "").split():
            if css_class.startswith("figure-"):
                cells[css_class.removeprefix("figure-")] = _text(element)
    return cells


def pools_page_figures(html: str) -> dict[tuple[str, str], dict[str, str]]:
    """(cluster/pool, resource) -> the Pools page's figures of that line."""
    return {
        (attrs["data-pool"], attrs["data-resource"]): _cells(row)
        for row in _elements(parse_html(html))
        if row.name == "tr" and "data-pool" in (attrs := dict(row.attributes))
    }


def overview_figures(html: str) -> dict[tuple[str, str], dict[str, str]]:
    """(cluster/pool, resource) -> the overview's figures, for the cluster totals of one pool."""
    figures = {}
    for article in _elements(parse_html(html)):
        attrs = dict(article.attributes)
        if article.name != "article" or "data-pools" not in attrs:
            continue
        pools = attrs["data-pools"].split()
        for row in _elements(article):
            if row.name == "tr" and "data-resource" in dict(row.attributes) and len(pools) == 1:
                figures[(f"{attrs['data-cluster']}/{pools[0]}", dict(row.attributes)["data-resource"])] = (
                    _cells(row)
                )
    return figures


def _page(client: Client, url: str) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return response.content.decode(), len(queries)


def test_the_pools_page_and_the_overview_show_the_same_figures_for_the_demo(settings, django_user_model):
    load_demo()
    settings.CANOPY_DEMO_USAGE = True
    call_command("demo_usage")  # DEMO ONLY figures: what the overview shows as used
    client = Client()
    client.force_login(django_user_model.objects.get(username="admin"))

    pools_html, pools_queries = _page(client, "/pools/")
    overview_html, overview_queries = _page(client, "/overview/")
    on_pools, on_overview = pools_page_figures(pools_html), overview_figures(overview_html)

    # Every line of every pool is on both pages, with the same capacity and the same allocation (the
    # overview adds HDFS's quotas, which are no pool's).
    hdfs = {line for line in on_overview if line[1].startswith("hdfs_")}
    assert hdfs == {("bigdata/default", "hdfs_space"), ("bigdata/default", "hdfs_files")}
    assert set(on_pools) == set(on_overview) - hdfs, set(on_pools) ^ set(on_overview)
    assert len({pool for pool, _ in on_pools}) == ResourcePool.objects.count() == 3
    for line, figures in on_pools.items():
        assert (figures["capacity"], figures["allocated"]) == (
            on_overview[line]["capacity"],
            on_overview[line]["allocated"],
        ), line
        assert figures["meaning"] == on_overview[line]["meaning"], line

    # bigdata's default pool: t1, t2, t3 hold 40 + 30 + 20 % of the root queue of 64 vCores, 256 GiB.
    assert on_pools[("bigdata/default", "capacity")] == {
        "meaning": "guaranteed capacity, % of root queue",
        "capacity": "100 % of root queue",
        "allocated": "90 %",
        "left": "10 %",
    }
    assert on_pools[("bigdata/default", "cpu")] == {
        "meaning": "≈ cores at current cluster size",
        "capacity": "64 vCores",
        "allocated": "≈ 57.6 vCores",
        "left": "≈ 6.4 vCores",
    }
    assert on_pools[("bigdata/default", "memory")]["allocated"] == "≈ 230.4 GiB"
    assert on_pools[("bigdata/highmem", "capacity")]["allocated"] == "100 %"
    # The Kubernetes pool in absolute amounts: department1 holds all 3 GPUs, CPU and memory unlimited.
    assert on_pools[("gpu-cluster/default", "gpu")]["allocated"] == "3 GPUs"
    assert on_pools[("gpu-cluster/default", "cpu")]["allocated"] == "0 CPU (+1 unlimited)"
    assert on_pools[("gpu-cluster/default", "cpu")]["meaning"] == "absolute: level-1 tenants' limited amounts"
    # The overview adds what is used, in the pool's unit.
    assert on_overview[("bigdata/default", "cpu")]["used"].endswith(" vCores")
    assert on_overview[("bigdata/default", "capacity")]["used"] == "-"

    # Session and user, pools with their sums, clusters, connections (Kubernetes, Hadoop).
    assert pools_queries == 6
    # Session and user, tenants, their latest figures, clusters, pools with their sums.
    assert overview_queries == 6
