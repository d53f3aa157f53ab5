"""The console and the API with 10,000 tenants (issue 8): `bash bench/run.sh scale`.

Builds, in a child process (so the memory figure below comes from a process that only served
requests, as a web worker does) and mostly in bulk statements:

- a 5-level tree of 10,000 tenants (the `default` one included): 20 level-1 tenants, 5 level-2
  under each, 6 level-3 under each of those, 5 level-4 under each, and the remaining 6,279 level-5
  leaves spread over the level-4 tenants; treebeard's path, depth and numchild exactly as treebeard
  lays them out (checked as treebeard's `find_problems` checks);
- 50 resource pools on 5 clusters (4 Kubernetes with 10 pools each, 1 Hadoop YARN with 10
  partitions), made through the services;
- allocations that keep the domain rules: each level-1 tenant has 2 Kubernetes pools and 1 YARN
  partition, each sub-tenant its parent's amounts divided by (its siblings + 1), so children never
  sum above their parent and every parent has room left for a new sub-tenant (checked); each
  tenant's namespace reservation and its audit events;
- 50,000 users: an admin on every level-1 to level-4 tenant, 4 members and a viewer on every leaf,
  100 groups of 10 people with a member role on level-3 tenants, and people without any role. The
  measured tenant admin administers a level-2 subtree (about 100 tenants), is a member of a leaf
  elsewhere and, through a group, a viewer of a third tenant.

Then, in this process, it times what a browser and an API client ask for, through Django's test
client in-process (server time without the network): the tree page, the tree search fragment and a
node's lazy children, a tenant page (Summary and Resources tabs), the first page of
`/api/v1/tenants/` and `POST /api/v1/tenants/` (each run rolled back, so the tree keeps its size),
as a platform admin and as a tenant admin. Each figure is the median of 30 runs after 3 warm-ups,
with the exact number of SQL queries, and the bare SQL: the statements captured from one request
run straight through a cursor (median of 30), so the ratio says how far the code is from the
database's own cost. Last, this process's resident memory. Writes a section of
docs/performance.md (replacing an older one) with the machine, the date and the data set.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess  # nosec B404 # runs only this benchmark's own build step, a fixed argument list
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from knox.models import AuthToken  # noqa: E402

from bench.report import section_write  # noqa: E402
from provisioning.desired.kubernetes import namespace_name  # noqa: E402
from provisioning.models import TenantSync  # noqa: E402
from tenants import services  # noqa: E402
from tenants.amounts import KUBERNETES_RESOURCES  # noqa: E402
from tenants.models import Allocation, AuditEvent, Cluster, Membership, ResourcePool, Tenant  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Web: pages, the tenant list API and creating a tenant (10,000 tenants)"
RUNS = int(os.environ.get("CANOPY_BENCH_RUNS", "30"))  # fewer for a quick look
WARM_UPS = 3

TENANTS = 10_000  # the migration's `default` tenant included
USERS = 50_000
FANOUT = (20, 5, 6, 5)  # level-1 tenants, then children per parent on levels 2 to 4; leaves fill up
LEVEL_NAMES = ("org", "dept", "team", "squad", "proj")
KUBERNETES_CLUSTERS = ("gpu-a", "gpu-b", "gpu-c", "cpu-d")
YARN_CLUSTER = "hadoop"
POOLS_PER_CLUSTER = 10
GROUPS, PEOPLE_PER_GROUP = 100, 10
MEMBERS_PER_LEAF = 4
GIB = 2**30
LEVEL1_AMOUNTS = {"gpu": 4096, "cpu_millicores": 16384 * 1000, "memory_bytes": 65536 * GIB}

ADMIN, TENANT_ADMIN, MEMBER = "bench-admin", "bench-tenant-admin", "bench-member"
# Where the measured people stand (name paths) and what they look at.
ADMINISTERED = "org03/dept2"
TENANT_PAGE = "org03/dept2/team1/squad1/proj1"
RESOURCES_PAGE = "org03/dept2/team1"
NEW_TENANT_PARENT = "org03/dept2/team1/squad1"
SEARCH = "squad3"

User = get_user_model()


def log(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------------------------------------
# The data set (child process)


def build_pools(admin) -> tuple[list[ResourcePool], list[ResourcePool]]:
    """50 pools through the services: each cluster's `default` plus 9 labelled ones. Capacities far
    above what the level-1 tenants hold."""
    capacity = {
        "gpu_capacity": 100_000,
        "cpu_capacity_millicores": 1_000_000 * 1000,
        "memory_capacity_bytes": 10_000_000 * GIB,
    }
    kubernetes: list[ResourcePool] = []
    yarn: list[ResourcePool] = []
    for name in (*KUBERNETES_CLUSTERS, YARN_CLUSTER):
        is_yarn = name == YARN_CLUSTER
        cluster = services.cluster_create(
            acting_user=admin, name=name, kind=Cluster.Kind.YARN if is_yarn else Cluster.Kind.KUBERNETES
        )
        default = ResourcePool.objects.get(cluster=cluster, name=ResourcePool.DEFAULT_NAME)
        capacity["gpu_capacity"] = 0 if is_yarn else 100_000  # YARN partitions count vCores and memory
        pools = [services.pool_update(acting_user=admin, pool=default, **capacity)]
        for index in range(1, POOLS_PER_CLUSTER):
            pools.append(
                services.pool_create(
                    acting_user=admin,
                    cluster=cluster,
                    name=f"pool{index}",
                    node_selector=f"label{index}" if is_yarn else f"pool=node{index}",
                    **capacity,
                )
            )
        (yarn if is_yarn else kubernetes).extend(pools)
    return kubernetes, yarn


def _spread(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


def build_tree() -> list[list[Tenant]]:
    """The tenants level by level: a child's treebeard path is its parent's plus four base-36
    digits for its position, and every parent's numchild is the number of children it gets."""
    default = Tenant.objects.get(depth=1, name=Tenant.DEFAULT_NAME)
    inner = [FANOUT[0]]
    for fanout in FANOUT[1:]:
        inner.append(inner[-1] * fanout)
    children_counts = [[FANOUT[0]]]  # per parent, level by level; the first "parent" is the root
    for depth in range(2, 5):
        children_counts.append([FANOUT[depth - 1]] * inner[depth - 2])
    children_counts.append(_spread(TENANTS - 1 - sum(inner), inner[-1]))

    levels: list[list[Tenant]] = []
    parents: list[Tenant | None] = [None]
    for depth in range(1, 6):
        numchild = children_counts[depth] if depth < 5 else None
        rows: list[Tenant] = []
        for parent, count in zip(parents, children_counts[depth - 1], strict=True):
            # Level-1 tenants come after `default`, which holds the first root position.
            first = int(default.path, 36) + 1 if parent is None else 1
            for number in range(1, count + 1):
                name = (
                    f"{LEVEL_NAMES[depth - 1]}{number:02d}"
                    if depth == 1
                    else f"{LEVEL_NAMES[depth - 1]}{number}"
                )
                rows.append(
                    Tenant(
                        name=name,
                        name_path=f"{parent.name_path}/{name}" if parent else name,
                        display_name=name.capitalize(),
                        path=Tenant._get_path(parent.path if parent else "", depth, first + number - 1),
                        depth=depth,
                        numchild=numchild[len(rows)] if numchild else 0,
                        leaf=depth == 5,
                    )
                )
        levels.append(Tenant.objects.bulk_create(rows, batch_size=2000))
        parents = levels[-1]
    return levels


def build_allocations(
    levels: list[list[Tenant]], kubernetes: list[ResourcePool], yarn: list[ResourcePool]
) -> list[Allocation]:
    """Each level-1 tenant: two Kubernetes pools and one YARN partition (two tenants a partition,
    40 % each). Each sub-tenant: its parent's pools, with the parent's amounts divided by the number
    of its children plus one."""
    by_tenant: dict[int, list[Allocation]] = {}
    rows: list[Allocation] = []
    for index, tenant in enumerate(levels[0]):
        own = [
            Allocation(tenant=tenant, pool=kubernetes[index], **LEVEL1_AMOUNTS),
            Allocation(tenant=tenant, pool=kubernetes[index + len(levels[0])], **LEVEL1_AMOUNTS),
            Allocation(tenant=tenant, pool=yarn[index // 2], capacity_percent=40, max_capacity_percent=100),
        ]
        by_tenant[tenant.pk] = own
        rows.extend(own)
    parents = {tenant.path: tenant for level in levels[:-1] for tenant in level}
    for level in levels[1:]:
        for tenant in level:
            parent = parents[tenant.parent_tree_path]
            share = parent.numchild + 1
            own = []
            for above in by_tenant[parent.pk]:
                if above.pool.is_yarn:
                    percent = int(10_000 / share) / 100  # rounded down to the cent of a percent
                    own.append(
                        Allocation(
                            tenant=tenant, pool=above.pool, capacity_percent=percent, max_capacity_percent=100
                        )
                    )
                else:
                    amounts = {r.field: getattr(above, r.field) // share for r in KUBERNETES_RESOURCES}
                    own.append(Allocation(tenant=tenant, pool=above.pool, **amounts))
            by_tenant[tenant.pk] = own
            rows.extend(own)
    return Allocation.objects.bulk_create(rows, batch_size=5000)


def check_tree() -> None:
    """What treebeard's `find_problems` checks (alphabet, path length against depth, orphans,
    numchild), from one read: `find_problems` asks per node and takes a minute at this size."""
    rows = list(Tenant.objects.values_list("path", "depth", "numchild"))
    paths = {path for path, _, _ in rows}
    children = Counter(path[: -Tenant.steplen] for path, depth, _ in rows if depth > 1)
    for path, depth, numchild in rows:
        if set(path) - set(Tenant.alphabet) or len(path) != depth * Tenant.steplen:
            raise SystemExit(f"bad tree path {path!r} at depth {depth}")
        if depth > 1 and path[: -Tenant.steplen] not in paths:
            raise SystemExit(f"tenant {path} has no parent")
        if numchild != children[path]:
            raise SystemExit(f"tenant {path} says {numchild} children and has {children[path]}")


def check_allocations() -> None:
    """The rules the services keep: children never sum above their parent in any pool, YARN
    siblings never above 100 %, level-1 tenants never above the pool."""
    rows = Allocation.objects.values_list(
        "tenant__path", "pool_id", "gpu", "cpu_millicores", "memory_bytes", "capacity_percent"
    )
    own = {(path, pool): amounts for path, pool, *amounts in rows}
    held: dict[tuple[str, int], list] = defaultdict(lambda: [0, 0, 0, 0])
    for (path, pool), amounts in own.items():
        totals = held[(path[: -Tenant.steplen], pool)]
        for index, amount in enumerate(amounts):
            totals[index] += amount or 0
    capacity = {
        pool.pk: [pool.gpu_capacity, pool.cpu_capacity_millicores, pool.memory_capacity_bytes, 100]
        for pool in ResourcePool.objects.all()
    }
    for (parent_path, pool), totals in held.items():
        limits = own[(parent_path, pool)][:3] + [100] if parent_path else capacity[pool]
        for total, limit in zip(totals, limits, strict=True):
            if limit is not None and total > limit:
                raise SystemExit(
                    f"allocations break the rules under {parent_path or 'the pool'} in pool {pool}"
                )


def build_people(admin, levels: list[list[Tenant]]) -> None:
    """50,000 users (no usable password: the benchmark signs them in directly), their roles, 100
    groups, and the three people the figures are measured as."""
    started = time.perf_counter()
    users = User.objects.bulk_create(
        [
            User(username=f"user{number:05d}", password=UNUSABLE_PASSWORD_PREFIX)
            for number in range(1, USERS - 2)
        ],
        batch_size=5000,
    )
    log(f"  {len(users):,} users in {time.perf_counter() - started:.1f} s")
    people = iter(users)
    memberships: list[Membership] = []
    for level in levels[:-1]:
        memberships += [Membership(user=next(people), tenant=t, role=Membership.Role.ADMIN) for t in level]
    for leaf in levels[-1]:
        memberships += [
            Membership(user=next(people), tenant=leaf, role=Membership.Role.MEMBER)
            for _ in range(MEMBERS_PER_LEAF)
        ]
        memberships.append(Membership(user=next(people), tenant=leaf, role=Membership.Role.VIEWER))
    groups = Group.objects.bulk_create([Group(name=f"group{number:03d}") for number in range(1, GROUPS + 1)])
    through = User.groups.through
    grouped = users[-GROUPS * PEOPLE_PER_GROUP :]  # people without a role of their own
    through.objects.bulk_create(
        [
            through(user_id=person.pk, group_id=groups[index // PEOPLE_PER_GROUP].pk)
            for index, person in enumerate(grouped)
        ]
    )
    memberships += [
        Membership(group=group, tenant=tenant, role=Membership.Role.MEMBER)
        for group, tenant in zip(groups, levels[2][:: len(levels[2]) // GROUPS], strict=False)
    ]

    by_name = {tenant.name_path: tenant for level in levels for tenant in level}
    tenant_admin = User.objects.create_user(TENANT_ADMIN)
    member = User.objects.create_user(MEMBER)
    viewers = Group.objects.create(name="bench-viewers")
    tenant_admin.groups.add(viewers)
    memberships += [
        Membership(user=tenant_admin, tenant=by_name[ADMINISTERED], role=Membership.Role.ADMIN),
        Membership(
            user=tenant_admin, tenant=by_name["org07/dept1/team1/squad1/proj1"], role=Membership.Role.MEMBER
        ),
        Membership(group=viewers, tenant=by_name["org11/dept3"], role=Membership.Role.VIEWER),
        Membership(user=member, tenant=by_name[TENANT_PAGE], role=Membership.Role.MEMBER),
        Membership(
            user=member, tenant=by_name["org05/dept1/team2/squad3/proj1"], role=Membership.Role.MEMBER
        ),
    ]
    memberships = Membership.objects.bulk_create(memberships, batch_size=5000)
    log(f"  {len(memberships):,} roles, {GROUPS + 1} groups")
    audit_rows = [
        AuditEvent(
            actor=admin,
            actor_name=admin.username,
            action="MEMBERSHIP_GRANTED",
            tenant_id=m.tenant_id,
            tenant_path=m.tenant.name_path,
            target_type="membership",
            target_id=str(m.pk),
            target_repr=f"{m.role} of {m.tenant.name_path}",
            after={
                "user" if m.user_id else "group": m.user.username if m.user_id else m.group.name,
                "role": m.role,
            },
        )
        for m in memberships
    ]
    AuditEvent.objects.bulk_create(audit_rows, batch_size=5000)


def build() -> None:
    started = time.perf_counter()
    admin = User.objects.create_user(ADMIN, is_staff=True, is_superuser=True)
    kubernetes, yarn = build_pools(admin)
    log(f"  {len(kubernetes) + len(yarn)} pools on {len(KUBERNETES_CLUSTERS) + 1} clusters")
    with transaction.atomic():
        levels = build_tree()
        log(f"  {Tenant.objects.count():,} tenants, levels {[len(level) for level in levels]}")
        allocations = build_allocations(levels, kubernetes, yarn)
        log(f"  {len(allocations):,} allocations")
        TenantSync.objects.bulk_create(
            [
                TenantSync(tenant_id=t.pk, tenant_path=t.name_path, namespace=namespace_name(t.name_path))
                for level in levels
                for t in level
            ],
            batch_size=5000,
        )
        by_tenant: dict[int, list[dict]] = defaultdict(list)
        for a in allocations:
            by_tenant[a.tenant_id].append(
                {"pool": str(a.pool), **{f: getattr(a, f) for f in services.ALLOCATION_FIELDS}}
            )
        events = []
        for level in levels:
            for t in level:
                snapshot = {field: getattr(t, field) for field in services.TENANT_FIELDS}
                events.append(
                    AuditEvent(
                        actor=admin,
                        actor_name=admin.username,
                        action="TENANT_CREATED",
                        tenant=t,
                        tenant_path=t.name_path,
                        target_type="tenant",
                        target_id=str(t.pk),
                        target_repr=t.name_path,
                        after={**snapshot, "allocations": by_tenant[t.pk]},
                    )
                )
        AuditEvent.objects.bulk_create(events, batch_size=5000)
        build_people(admin, levels)
    log(f"  rows written in {time.perf_counter() - started:.1f} s; checking")
    check_tree()
    check_allocations()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    log(f"built in {time.perf_counter() - started:.1f} s")


# ---------------------------------------------------------------------------------------------
# The figures (this process)


@dataclass
class Figure:
    what: str
    who: str
    server_ms: float
    cpu_ms: float
    queries: int
    bare_ms: float
    target_ms: float
    target_queries: int | None
    response_bytes: int = 0  # the body's size, from one run

    @property
    def passed(self) -> bool:
        return self.server_ms <= self.target_ms and (
            self.target_queries is None or self.queries <= self.target_queries
        )


def median_ms(action: Callable[[], object]) -> tuple[float, float]:
    """Median wall time and median CPU time of this process, in ms. On a busy machine the wall time
    grows with the load; the CPU time much less, which tells noise from a slower code path."""
    for _ in range(WARM_UPS):
        action()
    wall, cpu = [], []
    for _ in range(RUNS):
        started, started_cpu = time.perf_counter(), time.process_time()
        action()
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def rolled_back(action: Callable[[], HttpResponse]) -> Callable[[], HttpResponse]:
    """Run a write and undo it, so every run meets the same tree. Time includes the rollback, which
    costs what the commit would; the push queued on commit is never sent."""

    def run() -> HttpResponse:
        with transaction.atomic():
            response = action()
            transaction.set_rollback(True)
        return response

    return run


def measure(
    what: str,
    who: str,
    request: Callable[[], HttpResponse],
    *,
    expect: int = 200,
    target_ms: float,
    target_queries: int | None = None,
    write: bool = False,
) -> Figure:
    run = rolled_back(request) if write else request

    def checked() -> None:
        response = run()
        if response.status_code != expect:
            raise SystemExit(f"{what} as {who}: HTTP {response.status_code}: {response.content[:500]!r}")

    response_bytes = len(run().content)
    with CaptureQueriesContext(connection) as captured:
        checked()
    statements = [query["sql"] for query in captured.captured_queries]
    server, cpu = median_ms(checked)

    def bare() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)
                if cursor.description is not None:
                    cursor.fetchall()
            transaction.set_rollback(True)

    figure = Figure(
        what, who, server, cpu, len(statements), median_ms(bare)[0], target_ms, target_queries, response_bytes
    )
    log(
        f"{what}, {who}: {figure.server_ms:.1f} ms (CPU {figure.cpu_ms:.1f} ms), {figure.queries} queries, "
        f"bare SQL {figure.bare_ms:.1f} ms "
        f"({figure.server_ms / figure.bare_ms:.1f}x){'' if figure.passed else '  ABOVE TARGET'}"
    )
    return figure


def resident_memory() -> dict[str, float]:
    """This process's resident set now (VmRSS) and at its peak (VmHWM), in MiB."""
    figures = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            figures[key] = int(value.split()[0]) / 1024
    return figures


def measure_all() -> list[Figure]:
    admin = User.objects.get(username=ADMIN)
    tenant_admin = User.objects.get(username=TENANT_ADMIN)
    tenant = Tenant.objects.get(name_path=TENANT_PAGE)
    resources = Tenant.objects.get(name_path=RESOURCES_PAGE)
    opened = Tenant.objects.get(name_path=ADMINISTERED)
    new_parent = Tenant.objects.get(name_path=NEW_TENANT_PARENT)
    new_pools = list(
        Allocation.objects.filter(tenant=new_parent).select_related("pool__cluster").order_by("pool_id")
    )
    new_tenant = {
        "parent": new_parent.pk,
        "name": "bench-new",
        "allocations": [
            {"pool": a.pool_id, "capacity": "10"}
            if a.pool.is_yarn
            else {"pool": a.pool_id, "gpu": 1, "cpu": "2", "memory": "8Gi"}
            for a in (new_pools[0], new_pools[-1])  # a Kubernetes pool and the YARN partition
        ],
    }
    htmx = {"HX-Request": "true"}
    figures = []
    for who, person in (("platform admin", admin), ("tenant admin", tenant_admin)):
        browser = Client(HTTP_HOST="localhost")
        browser.force_login(person)
        _, key = AuthToken.objects.create(user=person)  # only its hash is stored: made here, where it is used
        api = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Token {key}")
        page = {"target_ms": 100, "target_queries": 15}
        figures += [
            measure("Tree page `/tenants/`", who, lambda b=browser: b.get("/tenants/"), **page),
            measure(
                f"Tree search fragment (`?q={SEARCH}`, htmx)",
                who,
                lambda b=browser: b.get(f"/tenants/?q={SEARCH}&fragment=tree", headers=htmx),
                **page,
            ),
            measure(
                "Tree node's lazy children (htmx)",
                who,
                lambda b=browser: b.get(f"/tenants/{opened.pk}/children/", headers=htmx),
                **page,
            ),
            measure(
                "Tenant page, level 5 (Summary tab)",
                who,
                lambda b=browser: b.get(f"/tenants/{tenant.pk}/"),
                **page,
            ),
            measure(
                "Tenant page, level 3 (Resources tab)",
                who,
                lambda b=browser: b.get(f"/tenants/{resources.pk}/?tab=resources"),
                **page,
            ),
            measure(
                "Tenant list API, first page (50)",
                who,
                lambda a=api: a.get("/api/v1/tenants/"),
                target_ms=80,
            ),
            measure(
                "Create a tenant, `POST /api/v1/tenants/` (Kubernetes + YARN allocations)",
                who,
                lambda a=api: a.post("/api/v1/tenants/", new_tenant, content_type="application/json"),
                expect=201,
                target_ms=150,
                write=True,
            ),
        ]
    return figures


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0].split()[0]
    return (
        f"{platform.node() or 'this machine'}: {os.cpu_count()} cores ({cpu}), Python {sys.version.split()[0]}, "
        f"Django {django.get_version()}, PostgreSQL {postgres} on loopback (fsync off, as the tests run it)"
    )


def data_set() -> str:
    levels = [Tenant.objects.filter(depth=depth).count() for depth in range(1, 6)]
    return (
        f"{sum(levels):,} tenants on 5 levels ({' / '.join(f'{n:,}' for n in levels)}), "
        f"{User.objects.count():,} users, {Membership.objects.count():,} roles, "
        f"{ResourcePool.objects.count()} pools on {Cluster.objects.count()} clusters, "
        f"{Allocation.objects.count():,} allocations, {AuditEvent.objects.count():,} audit events"
    )


def figure_table(figures: list[Figure]) -> list[str]:
    """The figures as a Markdown table, a row each."""
    lines = [
        "| What | As | Server time | CPU | SQL queries | Bare SQL | Ratio | Target | Result |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for f in figures:
        target = f"≤ {f.target_ms:.0f} ms" + (f", ≤ {f.target_queries} queries" if f.target_queries else "")
        lines.append(
            f"| {f.what} | {f.who} | {f.server_ms:.1f} ms | {f.cpu_ms:.1f} ms | {f.queries} | {f.bare_ms:.1f} ms | "
            f"{f.server_ms / f.bare_ms:.1f}x | {target} | {'pass' if f.passed else 'FAIL'} |"
        )
    return lines


def write_report(
    figures: list[Figure], build_seconds: float, memory: dict[str, float], load: tuple[float, float]
) -> None:
    subtree_size = Tenant.objects.filter(
        path__startswith=Tenant.objects.get(name_path=ADMINISTERED).path
    ).count()
    lines = [
        SECTION,
        "",
        f"Measured {datetime.date.today():%Y-%m-%d} on {machine()}; `bash bench/run.sh scale`. "
        f"Medians of {RUNS} runs after {WARM_UPS} warm-ups. Server time is the request through Django's "
        "test client in-process (middleware, session or token, views, templates or serializers; no "
        "network); the create runs are rolled back so the tree keeps its size. Bare SQL is the same "
        "statements, captured from one request, run straight through a cursor. CPU is this process's "
        "own CPU time per request (Python: views, ORM, templates, serializers): when the machine is "
        "busy the server time grows with the load and the CPU time hardly at all. Load average "
        f"{load[0]:.1f} when measuring started, {load[1]:.1f} when it ended.",
        "",
        f"Data: {data_set()}; built in {build_seconds:.0f} s (bulk inserts; the tree checked as "
        "treebeard's `find_problems` checks it, the allocations against the rules). The tenant admin "
        f"administers a level-2 subtree of {subtree_size} tenants, holds a member role on a leaf "
        "elsewhere and a viewer role through a group.",
        "",
        *figure_table(figures),
        "",
        f"Memory: the process that served every request above has {memory['VmRSS']:.0f} MB resident "
        f"after the run (peak {memory['VmHWM']:.0f} MB; target ≤ 300 MB). The data set was built in a "
        "separate process.",
        "",
    ]
    log(f"written to {section_write(SECTION, lines)}")


def main() -> None:
    if sys.argv[1:] == ["build"]:
        build()
        return
    if sys.argv[1:] == ["measure"]:
        build_seconds = 0.0  # measuring an existing data set again
    else:
        started = time.perf_counter()
        log("building the data set")
        subprocess.run([sys.executable, "-m", "bench.scale", "build"], check=True, cwd=ROOT)  # nosec B603 # fixed arguments, no input
        build_seconds = time.perf_counter() - started
    os.sync()  # the build's writes are written back now, not while requests are timed
    load_before = os.getloadavg()[0]
    figures = measure_all()
    load = (load_before, os.getloadavg()[0])
    memory = resident_memory()
    log(f"resident memory {memory['VmRSS']:.0f} MB, peak {memory['VmHWM']:.0f} MB")
    if build_seconds:
        write_report(figures, build_seconds, memory, load)


if __name__ == "__main__":
    main()
