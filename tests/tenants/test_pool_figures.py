"""What level-1 tenants hold of a pool, computed once (`tenants.pool_figures`, issue 18, point 3):
Kubernetes pools in absolute amounts, YARN pools as the guaranteed capacity in % of the root queue
and what that means at the pool's capacity. The Pools page and the API read it; the usage overview
too (tests/usage/test_pool_figures_agree.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tenants import pool_figures, selectors, services
from tenants.models import Cluster, ResourcePool
from tests.tenants.builders import GI, spec

pytestmark = pytest.mark.django_db


def test_a_share_of_a_yarn_pool_is_rounded_down_and_said_to_one_decimal_of_a_vcore():
    assert pool_figures.share_of(64_000, Decimal("0.9")) == 57_600
    assert pool_figures.share_of(10_000, Decimal(1) / 3) == 3_333  # never more than guaranteed
    assert pool_figures.vcores_human(57_600) == "57.6 vCores"
    assert pool_figures.vcores_human(64_000) == "64 vCores"
    assert pool_figures.vcores_human(3_333) == "3.3 vCores"
    assert pool_figures.yarn_share_human(Decimal("0.4"), 64_000, 256 * GI) == "≈ 25.6 vCores, 102.4 GiB"
    assert pool_figures.yarn_share_human(Decimal("0.4"), 0, 0) is None  # the cluster's size is not known


def _pool(world, name_path: str) -> ResourcePool:
    cluster, name = name_path.split("/")
    return selectors.pool_list(user=world.admin).get(cluster__name=cluster, name=name)


def test_a_yarn_pool_says_its_queue_capacity_and_what_it_means_at_the_pools_capacity(yarn_world):
    w = yarn_world  # t1 40 %, t2 30 %, t3 20 % of a 64 vCore, 256 GiB pool
    holding = pool_figures.pool_holding(_pool(w, "bigdata/default"))
    assert holding.yarn and holding.percent == Decimal(90)
    assert holding.held == {"gpu": 0, "cpu": 57_600, "memory": int(256 * GI * Decimal("0.9"))}
    assert holding.left["capacity"] == Decimal(10) and holding.left["cpu"] == 6_400
    lines = {f.resource: f for f in pool_figures.pool_figures(holding)}
    assert list(lines) == ["capacity", "cpu", "memory"]
    assert (lines["capacity"].capacity, lines["capacity"].allocated, lines["capacity"].left) == (
        "100 % of root queue",
        "90 %",
        "10 %",
    )
    assert lines["capacity"].meaning == "guaranteed capacity, % of root queue"
    assert (lines["cpu"].label, lines["cpu"].capacity, lines["cpu"].allocated, lines["cpu"].left) == (
        "vCores",
        "64 vCores",
        "≈ 57.6 vCores",
        "≈ 6.4 vCores",
    )
    assert lines["cpu"].meaning == "≈ cores at current cluster size"
    assert (lines["memory"].allocated, lines["memory"].left) == ("≈ 230.4 GiB", "≈ 25.6 GiB")

    # Without the pool's capacity, the percentage is all Canopy can say.
    services.pool_update(acting_user=w.admin, pool=w.pool, cpu_capacity_millicores=0, memory_capacity_bytes=0)
    lines = {
        f.resource: f
        for f in pool_figures.pool_figures(pool_figures.pool_holding(_pool(w, "bigdata/default")))
    }
    assert lines["capacity"].allocated == "90 %"
    assert (lines["cpu"].capacity, lines["cpu"].allocated, lines["cpu"].left) == ("not known", "—", "—")
    assert lines["cpu"].meaning == "cluster size not known: set the pool's capacity"


def test_a_kubernetes_pool_says_absolute_amounts_and_counts_unlimited_tenants_apart(k8s_world):
    # department1: 3 GPUs, CPU and memory unlimited, in a pool of 3 GPUs, 12 CPU, 90 GiB.
    holding = pool_figures.pool_holding(_pool(k8s_world, "gpu-cluster/default"))
    assert not holding.yarn and holding.percent is None
    assert holding.held == {"gpu": 3, "cpu": 0, "memory": 0}
    assert holding.unlimited == {"gpu": 0, "cpu": 1, "memory": 1}
    lines = {f.resource: f for f in pool_figures.pool_figures(holding)}
    assert (lines["gpu"].capacity, lines["gpu"].allocated, lines["gpu"].left) == (
        "3 GPUs",
        "3 GPUs",
        "0 GPUs",
    )
    assert (lines["cpu"].allocated, lines["cpu"].left) == ("0 CPU (+1 unlimited)", "12 CPU")
    assert lines["memory"].meaning == "absolute: level-1 tenants' limited amounts"
    # Two pools of a cluster together (the usage overview's cluster totals).
    total = pool_figures.holdings_total([holding, holding])
    assert total.capacity["gpu"] == 6 and total.held["gpu"] == 6 and total.unlimited["cpu"] == 2


def test_the_api_gives_a_yarn_pools_amounts_as_the_pages_do(api, yarn_world):
    w = yarn_world
    body = api.as_user(w.admin).get(f"/api/v1/pools/{w.pool.pk}/").json()
    # Before issue 18 the API said 0 CPU allocated and all 64 free in a pool whose queues hold 90 %.
    assert body["allocated"] == {
        "gpu": 0,
        "cpu": "57600m",
        "memory": body["allocated"]["memory"],
        "capacity": "90",
    }
    assert body["free"]["cpu"] == "6400m" and body["free"]["capacity"] == "10"


def test_the_pools_page_says_what_each_figure_is_in_a_fixed_number_of_queries(yarn_world):
    w = yarn_world
    k8s = services.cluster_create(acting_user=w.admin, name="gpu-cluster", kind=Cluster.Kind.KUBERNETES)
    pool = services.pool_update(
        acting_user=w.admin,
        pool=ResourcePool.objects.get(cluster=k8s),
        gpu_capacity=4,
        cpu_capacity_millicores=8000,
    )
    services.tenant_create(acting_user=w.admin, parent=None, name="gpus", allocations=[spec(pool, gpu=2)])
    client = Client()
    client.force_login(w.admin)
    with CaptureQueriesContext(connection) as queries:
        html = client.get("/pools/").content.decode()
    # Session and user, the pools with their sums, the clusters and their connections (Kubernetes,
    # Hadoop) for the connections section.
    assert len(queries) == 6, [q["sql"] for q in queries.captured_queries]
    assert "≈ 57.6 vCores" in html and "guaranteed capacity, % of root queue" in html
    assert "≈ cores at current cluster size" in html and 'title="≈ cores at current cluster size"' in html
    assert "2 GPUs" in html and "absolute: level-1 tenants&#x27; limited amounts" in html
