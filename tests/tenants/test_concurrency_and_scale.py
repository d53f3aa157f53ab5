"""Two admins racing for the last GPU on real PostgreSQL transactions, and query counts that do not
grow with the number of tenants."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tenants import services
from tenants.models import Allocation, Tenant
from tests.tenants.builders import TokenClient, build_k8s_world, spec


def _in_thread(target, results: dict, key: str):
    def run():
        try:
            results[key] = target()
        except Exception as exc:  # the race's loser is an expected ValidationError
            results[key] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_admins_racing_for_the_last_gpu_cannot_both_win(platform_admin):
    assert connection.vendor == "postgresql"
    w = build_k8s_world(platform_admin)
    services.allocation_set(acting_user=w.admin, tenant=w.dev2, spec=spec(w.pool, gpu=1))  # 1 GPU left
    first_holds_lock = threading.Event()
    results: dict = {}

    def first():
        with transaction.atomic():
            tenant = services.tenant_create(
                acting_user=w.people.dept_admin,
                parent=w.department1,
                name="team-a",
                allocations=[spec(w.pool, gpu=1)],
            )
            first_holds_lock.set()
            time.sleep(0.6)  # still uncommitted: the second admin must wait for us, then see our GPU taken
        return tenant

    def second():
        first_holds_lock.wait(10)
        started = time.monotonic()
        try:
            return services.tenant_create(
                acting_user=w.admin, parent=w.department1, name="team-b", allocations=[spec(w.pool, gpu=1)]
            )
        finally:
            results["second_waited"] = time.monotonic() - started

    threads = [_in_thread(first, results, "first"), _in_thread(second, results, "second")]
    for thread in threads:
        thread.join(30)

    assert isinstance(results["first"], Tenant)
    assert isinstance(results["second"], ValidationError), results["second"]
    assert "so 0 GPUs is left." in " ".join(results["second"].message_dict["gpu"])
    assert results["second_waited"] >= 0.4, "the second writer did not wait for the pool lock"
    children_gpus = sum(a.gpu for a in Allocation.objects.filter(tenant__depth=2, pool=w.pool))
    assert children_gpus == 3
    assert not Tenant.objects.filter(name="team-b").exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_simultaneous_requests_for_the_last_gpu_have_exactly_one_winner(platform_admin):
    w = build_k8s_world(platform_admin)
    services.allocation_set(acting_user=w.admin, tenant=w.dev2, spec=spec(w.pool, gpu=1))
    for round_ in range(5):
        barrier = threading.Barrier(2)
        results: dict = {}

        def racer(name: str, barrier: threading.Barrier = barrier):
            def go():
                barrier.wait(10)
                return services.tenant_create(
                    acting_user=w.admin, parent=w.department1, name=name, allocations=[spec(w.pool, gpu=1)]
                )

            return go

        names = (f"r{round_}-a", f"r{round_}-b")
        threads = [_in_thread(racer(name), results, name) for name in names]
        for thread in threads:
            thread.join(30)
        winners = [name for name in names if isinstance(results[name], Tenant)]
        assert len(winners) == 1, results
        loser = next(name for name in names if name not in winners)
        assert isinstance(results[loser], ValidationError)
        services.tenant_delete(acting_user=w.admin, tenant=results[winners[0]])


def _bulk_children(parent: Tenant, count: int, pool, gpu: int = 0) -> None:
    """Add `count` sub-tenants in a few statements: data for the query-count test, laid out exactly as
    treebeard lays out children (checked below with treebeard's own find_problems)."""
    parent.refresh_from_db()
    start = parent.numchild + 1
    rows = [
        Tenant(
            name=f"bulk{i}",
            name_path=f"{parent.name_path}/bulk{i}",
            path=Tenant._get_path(parent.path, parent.depth + 1, i),
            depth=parent.depth + 1,
        )
        for i in range(start, start + count)
    ]
    created = Tenant.objects.bulk_create(rows)  # PostgreSQL returns the new ids
    Tenant.objects.filter(pk=parent.pk).update(numchild=parent.numchild + count)
    Allocation.objects.bulk_create([Allocation(tenant=t, pool=pool, gpu=gpu) for t in created])


def _list_queries(client, url: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries), len(response.json()["results"])


@pytest.mark.parametrize("who", ["platform admin", "department admin"])
def test_listing_tenants_costs_the_same_queries_for_10_as_for_1000(k8s_world, who):
    w = k8s_world
    user = w.admin if who == "platform admin" else w.people.dept_admin
    client = TokenClient().as_user(user)
    client.get("/api/v1/tenants/")  # the token lookup's first use warms nothing we count below

    _bulk_children(w.dev1, 8, w.pool)
    small_queries, small_rows = _list_queries(client, "/api/v1/tenants/?page_size=500")
    _bulk_children(w.dev1, 990, w.pool)
    large_queries, large_rows = _list_queries(client, "/api/v1/tenants/?page_size=500")

    assert Tenant.objects.find_problems() == ([], [], [], [], [])
    assert small_rows >= 10 and large_rows == 500
    assert Tenant.objects.count() >= 1000
    assert small_queries == large_queries, (small_queries, large_queries)
    # Token, (grants,) count, page, own allocations, sub-tenant sums.
    assert large_queries == (5 if who == "platform admin" else 6)


# ---------------------------------------------------------------------------------------------
# The console at scale (bench/scale.py measures the same pages with 10,000 tenants).

TREE_PAGES = {
    "tree page": "/tenants/",
    "tenant page": "/tenants/{dev1}/",
    "resources tab": "/tenants/{dev1}/?tab=resources",
    "sub-tenants tab": "/tenants/{department1}/?tab=subtenants",
    "tree search": "/tenants/{dev1}/?fragment=tree&q=dev",
    "lazy children": "/tenants/{department1}/children/",
    "new tenant form": "/tenants/new/?parent={department1}",
    "move page": "/tenants/{dev1}/move/",
}
# Exact queries for each page: session and user, then (tenant admins only) the grants, once. The
# Resources tab reads the latest figures twice: per cluster, and per pool of a Kueue cluster, the
# allocations' time-bound grants once and the tenant's open quota requests once. A whole page of a tenant the reader manages counts its sub-tenants once (the suspend dialog says
# how many go with it): platform admins on every page here, the department admin on dev1's. The new
# tenant form reads the parent, its pools, the Hadoop clusters, what the parent's sub-tenants hold
# (two), the parents to choose from and the plans; a form that must name a parent reads the first of
# those once more (Django's select asks whether it is empty). The move page reads the tenant, the
# shape of its subtree (one aggregate) and where it may go.
TREE_PAGE_QUERIES = {
    "platform admin": {
        "tree page": 7,
        "tenant page": 9,
        "resources tab": 13,
        "sub-tenants tab": 10,
        "tree search": 7,
        "lazy children": 4,
        "new tenant form": 9,
        "move page": 5,
    },
    "department admin": {
        "tree page": 7,
        "tenant page": 10,
        "resources tab": 14,
        "sub-tenants tab": 10,
        "tree search": 8,
        "lazy children": 5,
        "new tenant form": 11,
        "move page": 6,
    },
}


def _page_queries(client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, headers={"HX-Request": "true"} if "fragment=" in url else {})
    assert response.status_code == 200, url
    return [query["sql"] for query in queries.captured_queries]


@pytest.mark.parametrize("who", ["platform admin", "department admin"])
def test_tree_and_tenant_pages_cost_the_same_queries_for_a_small_and_a_large_tree(k8s_world, who):
    w = k8s_world
    client = Client()
    client.force_login(w.admin if who == "platform admin" else w.people.dept_admin)
    urls = {
        name: url.format(dev1=w.dev1.pk, department1=w.department1.pk) for name, url in TREE_PAGES.items()
    }
    small = {name: _page_queries(client, url) for name, url in urls.items()}

    # 1,000 more tenants: 900 sub-tenants of department1 (visible to its admin, matched by the
    # search) and 100 other level-1 tenants (what a platform admin's tree starts with).
    _bulk_children(w.department1, 900, w.pool)
    last_root = Tenant.objects.filter(depth=1).order_by("-path").first()
    start = int(last_root.path, 36) + 1
    Tenant.objects.bulk_create(
        Tenant(name=f"org{i}", name_path=f"org{i}", path=Tenant._get_path("", 1, start + i), depth=1)
        for i in range(100)
    )
    assert Tenant.objects.find_problems() == ([], [], [], [], [])
    assert Tenant.objects.count() >= 1000
    large = {name: _page_queries(client, url) for name, url in urls.items()}

    assert {name: len(q) for name, q in large.items()} == {name: len(q) for name, q in small.items()}
    assert {name: len(q) for name, q in large.items()} == TREE_PAGE_QUERIES[who]
    for queries in large.values():
        # The grants are read at most once per page, however many querysets it restricts.
        assert sum("UNION ALL" in sql for sql in queries) == (0 if who == "platform admin" else 1)
        assert len(queries) <= 15
