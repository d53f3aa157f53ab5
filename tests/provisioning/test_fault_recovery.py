"""Fault injection end to end: real Celery workers and a separate beat process against our own
redis-server, the test PostgreSQL database and the real kube-apiserver behind the fault proxy.

Each scenario breaks one part while changes are made and pushed (a worker killed with SIGKILL in
the middle of an apply, Redis restarted with and without its data, the worker's and the web
side's database connections cut, the API server answering errors, slowly or not at all), then
checks the same things once the system is left alone: the cluster holds exactly what the
database says, every change is there, nothing shows twice (object counts, audit rows, a push
with nothing to do writes nothing), no intent is left open, no lease held, no status stuck, and
the failure was shown and retried.

`CANOPY_SOAK=1` runs many rounds of random faults instead of one (`CANOPY_SOAK_ROUNDS`, default
25; `CANOPY_SOAK_SEED` replays a run): docs/testing.md.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from django.db import connection
from knox.models import AuthToken

from portal.celery import app as celery_app
from provisioning import services
from provisioning.backends.base import Scope
from provisioning.desired.kubernetes import tenant_objects
from provisioning.models import ClusterSyncStatus, ProvisioningIntent, TenantSync
from provisioning.selectors import tenant_targets
from tenants import services as tenant_services
from tenants.models import AuditEvent, Membership, Tenant
from tests.clusters import processes
from tests.clusters.fault_proxy import Fault, FaultProxy
from tests.clusters.ldap import free_port
from tests.clusters.processes import stop_process
from tests.clusters.redis import RedisServer
from tests.provisioning.conftest import GI
from tests.tenants.builders import spec, user

pytestmark = [
    pytest.mark.kubernetes,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]
ROOT = Path(__file__).resolve().parents[2]
CELERY = [sys.executable, "-m", "celery", "-A", "portal"]
SOAK = os.environ.get("CANOPY_SOAK") == "1"
# A push holds its tenant's lease this long. It must outlast the longest push, including a request
# the API server still has in hand when its worker dies (the held writes below last 1.5 s).
LEASE_SECONDS = 4
HOLD_SECONDS = 1.5


# Faults recover in seconds here: a shorter wait, asked more often.
wait_until = functools.partial(processes.wait_until, timeout=45, interval=0.1)


# --------------------------------------------------------------------------- processes


@pytest.fixture
def redis(tmp_path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", persistent=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def broker(redis, settings) -> Iterator[RedisServer]:
    """This process (the web side) sends tasks to our Redis instead of running them in-process."""
    saved = {key: celery_app.conf[key] for key in ("broker_url", "task_always_eager")}
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CANOPY_PROVISIONING_REDRIVE_AFTER_SECONDS = 1
    celery_app.conf.update(broker_url=redis.url, task_always_eager=False)
    forget_broker_connections()
    yield redis
    celery_app.conf.update(saved)
    forget_broker_connections()


def forget_broker_connections() -> None:
    """The connection pool and the producer pool are made from the broker URL on first use and
    kept: both must go, or this process keeps sending to an earlier test's Redis."""
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


class Canopy:
    """Worker, beat and web processes, each in its own process group (SIGKILL takes all of it), each
    with its own PostgreSQL application_name so the test can cut exactly its connections."""

    def __init__(self, workdir: Path, broker: RedisServer, export_dir: str) -> None:
        self.workdir = workdir
        self.broker = broker
        self.export_dir = export_dir
        self.tag = f"faults-{uuid.uuid4().hex[:8]}"
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: dict[int, Path] = {}
        self.names: dict[int, str] = {}

    def _start(self, name: str, command: list[str], **environment: str) -> subprocess.Popen[bytes]:
        db = connection.settings_dict
        application = f"{self.tag}-{name}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings.test",
            "DATABASE_URL": (
                f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}?application_name={application}"
            ),
            "REDIS_URL": self.broker.url,
            "CANOPY_TEST_TASKS_EAGER": "0",
            "CANOPY_EXPORT_DIR": self.export_dir,
            # Beat every half second, a lost intent is sent again after a second, retries within
            # 2 s: recovery takes seconds, not the production minutes.
            "CANOPY_PROVISIONING_REDRIVE_SECONDS": "0.5",
            "CANOPY_PROVISIONING_REDRIVE_AFTER_SECONDS": "1",
            "CANOPY_PROVISIONING_RETRY_BASE_SECONDS": "0.5",
            "CANOPY_PROVISIONING_RETRY_MAX_SECONDS": "2",
            "CANOPY_PROVISIONING_LEASE_SECONDS": str(LEASE_SECONDS),
            "CANOPY_PROVISIONING_RECONCILE_SECONDS": "3600",
            "CANOPY_USAGE_BEAT_SECONDS": "3600",
            "CANOPY_KUBERNETES_HTTP_RETRIES": "0",  # every fault reaches Canopy's own retries
            "CANOPY_KUBERNETES_TIMEOUT_SECONDS": "5",
            **environment,
        }
        log = self.workdir / f"{name}.log"
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        self.logs[process.pid] = log
        self.names[process.pid] = application
        return process

    def worker(self) -> subprocess.Popen[bytes]:
        name = f"worker{len(self.processes)}"
        process = self._start(
            name,
            [
                *CELERY,
                "worker",
                "--pool=solo",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"{name}@{self.tag}",
            ],
        )
        wait_until(lambda: "ready." in self.log(process), f"{name} to be ready", timeout=30)
        return process

    def beat(self) -> subprocess.Popen[bytes]:
        schedule = str(self.workdir / "beat-schedule")
        return self._start("beat", [*CELERY, "beat", "--loglevel=INFO", "--schedule", schedule])

    def web(self) -> str:
        """gunicorn serving the console and the API, keeping its database connection between
        requests as production does; returns its URL."""
        port = free_port()
        process = self._start(
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "portal.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--no-control-socket",  # its default path is shared by every gunicorn of the machine
            ],
            DJANGO_CONN_MAX_AGE="60",
        )
        self.web_process = process
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            with contextlib.suppress(requests.ConnectionError):
                return requests.get(f"{url}/accounts/login/", timeout=30).status_code == 200
            return False

        wait_until(answers, "gunicorn to answer", timeout=30)
        return url

    def log(self, process: subprocess.Popen[bytes]) -> str:
        return self.logs[process.pid].read_text(errors="replace")

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """kill -9, the whole process group: nothing of the worker gets to clean up."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def cut_database(self, process: subprocess.Popen[bytes]) -> int:
        """Terminate the PostgreSQL backends of this process (and of no one else): returns how many."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = %s",
                [self.names[process.pid]],
            )
            return int(cursor.fetchone()[0])

    def waits_for_a_lock(self, process: subprocess.Popen[bytes]) -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = %s AND wait_event_type = 'Lock'",
                [self.names[process.pid]],
            )
            return cursor.fetchone() is not None

    def stop(self, *processes: subprocess.Popen[bytes]) -> None:
        """Warm shutdown (SIGTERM): a task in progress finishes first. All when none is named."""
        for process in processes or self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
            stop_process(process, timeout=15)


@pytest.fixture
def canopy(broker, tmp_path, settings) -> Iterator[Canopy]:
    processes = Canopy(tmp_path, broker, settings.CANOPY_EXPORT_DIR)
    yield processes
    processes.stop()


# --------------------------------------------------------------------------- what must hold


@dataclass
class Watcher:
    """Polls every status from its own thread and database connection: what was shown while the
    faults happened (a failure is overwritten by `synced` once a retry succeeds)."""

    seen: set[tuple[int, str]] = field(default_factory=set)
    messages: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                rows = ClusterSyncStatus.objects.values_list("sync__tenant_id", "state", "message")
                for tenant_id, state, message in rows:
                    self.seen.add((tenant_id, state))
                    if state == ClusterSyncStatus.State.FAILED and message not in self.messages:
                        self.messages.append(message)
                time.sleep(0.05)
        finally:
            connection.close()

    def failed(self, tenant: Tenant) -> bool:
        return (tenant.pk, ClusterSyncStatus.State.FAILED) in self.seen


@pytest.fixture
def watcher() -> Iterator[Watcher]:
    watching = Watcher()
    thread = threading.Thread(target=watching._run, daemon=True)
    thread.start()
    yield watching
    watching._stop.set()
    thread.join(timeout=10)


def converged(tenants: list[Tenant]) -> bool:
    ids = [t.pk for t in tenants]
    statuses = list(ClusterSyncStatus.objects.filter(sync__tenant_id__in=ids).values_list("state", flat=True))
    return (
        len(statuses) == len(ids)
        and set(statuses) == {ClusterSyncStatus.State.SYNCED}
        and not ProvisioningIntent.objects.filter(tenant_id__in=ids, state__in=services.OPEN).exists()
        and not TenantSync.objects.filter(tenant_id__in=ids).exclude(lease_owner="").exists()
    )


def wait_converged(tenants: list[Tenant], timeout: float = 60) -> None:
    wait_until(lambda: converged(tenants), f"{[t.name for t in tenants]} to be pushed", timeout=timeout)


def assert_recovered(tenants: list[Tenant], proxy: FaultProxy, canopy: Canopy) -> None:
    """The cluster holds exactly what the database says, once, and nothing is left to do. The
    workers stop first (warm shutdown): retries still queued would only find nothing to do, but
    would hold the leases the last check needs."""
    canopy.stop()
    assert not ProvisioningIntent.objects.filter(state__in=services.OPEN).exists(), "no intent left open"
    assert not TenantSync.objects.exclude(lease_owner="").exists(), "no lease left held"
    assert not TenantSync.objects.filter(lease_until__isnull=False).exists()
    assert set(ClusterSyncStatus.objects.values_list("state", flat=True)) == {"synced"}, "no status stuck"
    for tenant in tenants:
        sync = TenantSync.objects.get(tenant_id=tenant.pk)
        [target] = tenant_targets(tenant_id=tenant.pk, sync=sync)
        desired = tenant_objects(target.settings, target.state)
        with services.backend_for(target.cluster, target.connection) as backend:
            scope = Scope(tenant.pk, sync.namespace)
            plan = backend.plan(scope, desired)
            assert plan.is_empty, f"{tenant.name}: {plan.describe()}"
            # Exactly the wanted objects, no leftover or extra one (counted per kind).
            live = sorted((o["kind"], o["metadata"]["name"]) for o in backend.list_owned(scope))
            wanted = sorted((o["kind"], o["metadata"]["name"]) for o in desired)
            assert live == wanted, tenant.name
    # A push with nothing to do writes nothing: nothing is applied again.
    proxy.clear()
    for tenant in tenants:
        services.tenant_reconcile(tenant_id=tenant.pk)
    assert proxy.writes() == []


def assert_audited_once(tenant: Tenant, *actions: str) -> None:
    recorded = sorted(
        AuditEvent.objects.filter(tenant_path=tenant.name_path).values_list("action", flat=True)
    )
    assert recorded == sorted(actions), tenant.name


def hold_write(proxy: FaultProxy, kind: str, seconds: float = HOLD_SECONDS) -> Fault:
    """The next apply of `kind` waits at the proxy for `seconds`: its push is known to be mid-apply
    once the fault is taken (`times` drops to 0). The request still reaches the API server then,
    even when its worker is gone meanwhile, as a request already sent would."""
    proxy.delay(seconds, times=1, method="PATCH", path=f"/{kind}/")
    return proxy.faults[-1]


def new_tenant(admin, pool, name: str, **amounts: Any) -> Tenant:
    return tenant_services.tenant_create(
        acting_user=admin, parent=None, name=name, allocations=[spec(pool, **amounts)]
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:5]}"


# --------------------------------------------------------------------------- the scenarios


def test_a_worker_killed_in_the_middle_of_an_apply_is_replaced_and_the_apply_finished(
    platform_admin, gpu_cluster, proxy, canopy, watcher
):
    cluster, pool = gpu_cluster
    canopy.beat()
    first = canopy.worker()
    held = hold_write(proxy, "resourcequotas")
    tenant = new_tenant(platform_admin, pool, unique("killed"), gpu=1)
    wait_until(lambda: held.times == 0, "the push to reach the quota")
    status = ClusterSyncStatus.objects.get(sync__tenant_id=tenant.pk)
    assert status.state == "applying"
    canopy.kill(first)
    # A change made while no worker runs waits in the database and in Redis.
    tenant_services.allocation_set(
        acting_user=platform_admin, tenant=tenant, spec=spec(pool, gpu=2, memory_bytes=8 * GI)
    )

    canopy.worker()
    wait_converged([tenant])
    # The dead worker's lease kept the new one out until it expired: its write still in flight at
    # the API server landed first, so it cannot undo the newer one.
    quota_writes = [e for e in proxy.log if e.method == "PATCH" and "/resourcequotas/" in e.path]
    assert quota_writes[0].fault == f"delay {HOLD_SECONDS}s"
    assert len(quota_writes) >= 2 and not quota_writes[-1].fault
    assert_recovered([tenant], proxy, canopy)
    assert_audited_once(tenant, "TENANT_CREATED", "ALLOCATION_CREATED", "ALLOCATION_UPDATED")
    assert (tenant.pk, "applying") in watcher.seen


def test_redis_restarted_with_and_without_its_data_while_changes_are_made_and_pushed(
    platform_admin, gpu_cluster, proxy, canopy, redis, watcher
):
    cluster, pool = gpu_cluster
    canopy.beat()
    worker = canopy.worker()
    tenants: list[Tenant] = []
    for lose_data in (False, True):
        # The worker is busy with one push when Redis goes away; a second push waits in the queue.
        held = hold_write(proxy, "resourcequotas")
        busy = new_tenant(platform_admin, pool, unique("busy"), gpu=1)
        wait_until(lambda: held.times == 0, "the worker to be mid-apply")  # noqa: B023
        queued = new_tenant(platform_admin, pool, unique("queued"), cpu_millicores=500)
        tenants += [busy, queued]
        redis.stop()
        if lose_data:
            # A change made while Redis is down commits at once; beat queues its push later.
            started = time.monotonic()
            tenants.append(new_tenant(platform_admin, pool, unique("down"), memory_bytes=GI))
            assert time.monotonic() - started < 5
        redis.restart(lose_data=lose_data)
        wait_converged(tenants)
    assert worker.poll() is None, "the worker reconnected instead of dying"
    assert_recovered(tenants, proxy, canopy)
    for tenant in tenants:
        assert_audited_once(tenant, "TENANT_CREATED", "ALLOCATION_CREATED")


def test_the_workers_database_connection_cut_in_the_middle_of_a_push_is_retried(
    platform_admin, gpu_cluster, proxy, canopy, watcher
):
    cluster, pool = gpu_cluster
    canopy.beat()
    worker = canopy.worker()
    # Cut while the push waits for the API server: it meets the dead connection when it records
    # the outcome. The task is retried on a new connection and takes back its own lease at once
    # (it could not release it on the dead connection).
    held = hold_write(proxy, "resourcequotas")
    tenant = new_tenant(platform_admin, pool, unique("cut"), gpu=1)
    wait_until(lambda: held.times == 0, "the worker to be mid-apply")
    assert canopy.cut_database(worker) >= 1
    wait_converged([tenant])
    log = canopy.log(worker)
    retried = re.search(r"apply_tenant\[([-\w]+)\] retry: Retry in .*(OperationalError|InterfaceError)", log)
    assert retried, log
    assert f"apply_tenant[{retried.group(1)}] succeeded" in log, log
    assert (tenant.pk, "applying") in watcher.seen
    assert_recovered([tenant], proxy, canopy)
    assert_audited_once(tenant, "TENANT_CREATED", "ALLOCATION_CREATED")


def test_the_web_sides_database_connection_cut_records_a_change_whole_or_not_at_all(
    platform_admin, gpu_cluster, proxy, canopy
):
    cluster, pool = gpu_cluster
    canopy.beat()
    canopy.worker()
    url = canopy.web()
    web = canopy.web_process
    session = requests.Session()
    _, key = AuthToken.objects.create(user=platform_admin)
    session.headers["Authorization"] = f"Token {key}"

    def create(name: str) -> requests.Response:
        body = {"parent": None, "name": name, "allocations": [{"pool": pool.pk, "gpu": 1}]}
        return session.post(f"{url}/api/v1/tenants/", json=body, timeout=30)

    # Cut between two requests: the kept connection is checked before use and replaced.
    first = create(unique("kept"))
    assert first.status_code == 201, first.text
    assert canopy.cut_database(web) == 1
    second = create(unique("checked"))
    assert second.status_code == 201, second.text

    # Cut in the middle of recording a change: another session holds the pool's row, so the
    # request stops inside its transaction, after the tenant row is written and before its
    # allocation, audit rows and intent are.
    db = connection.settings_dict
    blocker = psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"])
    blocker.execute("SELECT 1 FROM tenants_resourcepool WHERE id = %s FOR UPDATE", [pool.pk])
    name = unique("cut")
    answer: list[requests.Response] = []
    thread = threading.Thread(target=lambda: answer.append(create(name)))
    thread.start()
    wait_until(lambda: canopy.waits_for_a_lock(web), "the request to wait inside its transaction")
    assert canopy.cut_database(web) == 1
    thread.join(timeout=30)
    blocker.close()
    assert answer[0].status_code == 500
    # Refused whole: nothing of it was kept, nothing queued.
    assert not Tenant.objects.filter(name=name).exists()
    assert not TenantSync.objects.filter(tenant_path=name).exists()
    assert not AuditEvent.objects.filter(tenant_path=name).exists()
    assert ProvisioningIntent.objects.count() == 2  # the first two tenants'

    # Sent again, it is recorded whole and pushed.
    third = create(name)
    assert third.status_code == 201, third.text
    tenants = list(
        Tenant.objects.filter(pk__in=[first.json()["id"], second.json()["id"], third.json()["id"]])
    )
    wait_converged(tenants)
    assert_recovered(tenants, proxy, canopy)
    for tenant in tenants:
        assert_audited_once(tenant, "TENANT_CREATED", "ALLOCATION_CREATED")
        assert ProvisioningIntent.objects.filter(tenant_id=tenant.pk).count() == 1


@dataclass
class Changes:
    """Changes made through the services while faults happen, and the audit rows each must leave."""

    admin: Any
    pool: Any
    rng: random.Random
    tenants: list[Tenant] = field(default_factory=list)
    audited: dict[int, list[str]] = field(default_factory=dict)

    def create(self) -> Tenant:
        cpu, memory = self.rng.choice([500, 1000, 2000]), self.rng.choice([1, 2, 4]) * GI
        tenant = new_tenant(
            self.admin, self.pool, unique(f"t{len(self.tenants)}"), cpu_millicores=cpu, memory_bytes=memory
        )
        self.tenants.append(tenant)
        self.audited[tenant.pk] = ["TENANT_CREATED", "ALLOCATION_CREATED"]
        return tenant

    def change(self, tenant: Tenant) -> None:
        if self.rng.random() < 0.5:
            amounts = {"cpu_millicores": self.rng.choice([500, 1000, 2000]), "memory_bytes": 4 * GI}
            if tenant == self.tenants[0]:
                amounts["gpu"] = self.rng.choice([0, 1, 2])  # the pool's 3 GPUs: one tenant uses them
            tenant_services.allocation_set(
                acting_user=self.admin, tenant=tenant, spec=spec(self.pool, **amounts)
            )
            self.audited[tenant.pk].append("ALLOCATION_UPDATED")
        else:
            role = self.rng.choice(list(Membership.Role))
            tenant_services.membership_grant(
                acting_user=self.admin, tenant=tenant, user=user(unique("u")), role=role
            )
            self.audited[tenant.pk].append("MEMBERSHIP_GRANTED")

    def burst(self, size: int) -> None:
        for _ in range(size):
            if len(self.tenants) < 6 and self.rng.random() < 0.3:
                self.create()
            else:
                self.change(self.rng.choice(self.tenants))

    def assert_audited_once(self) -> None:
        for tenant in self.tenants:
            assert_audited_once(tenant, *self.audited[tenant.pk])


def api_faults(proxy: FaultProxy, rng: random.Random | None) -> None:
    """Errors, slow answers and dropped connections from the API server: each kind once in the
    default run (`rng` None), a random mix in the soak."""
    if rng is None:
        proxy.fail(500, times=3, method="PATCH")
        proxy.fail(503, times=2, method="PATCH", path="/rolebindings/")
        proxy.fail(429, times=2, method="PATCH", retry_after=1)
        proxy.fail(409, times=1, method="PATCH", path="/resourcequotas/")
        proxy.drop(times=2, method="PATCH")
        proxy.drop(times=1, method="GET")
        proxy.delay(1.5, times=2, method="PATCH", path="/limitranges/")
        return
    for _ in range(rng.randint(1, 6)):
        method = rng.choice(["PATCH", "GET"])
        kind = rng.choice([None, "/resourcequotas/", "/rolebindings/", "/limitranges/", "/serviceaccounts/"])
        fault = rng.choice(["500", "503", "429", "409", "drop", "delay"])
        if fault == "drop":
            proxy.drop(times=rng.randint(1, 3), method=method, path=kind)
        elif fault == "delay":
            proxy.delay(rng.choice([0.5, 1.5]), times=rng.randint(1, 2), method=method, path=kind)
        else:
            proxy.fail(int(fault), times=rng.randint(1, 3), method=method, path=kind, retry_after=1)


def test_bursts_of_changes_meet_api_server_errors_delays_and_dropped_connections(
    platform_admin, gpu_cluster, proxy, canopy, redis, watcher
):
    """One burst against every kind of API server fault; with CANOPY_SOAK=1, then many rounds of
    random faults of every kind in this module (kills, Redis restarts, cut connections too)."""
    cluster, pool = gpu_cluster
    seed = int(os.environ.get("CANOPY_SOAK_SEED") or random.randrange(1 << 32))
    rounds = int(os.environ.get("CANOPY_SOAK_ROUNDS", "25")) if SOAK else 0
    print(f"soak seed {seed}, {rounds} random rounds")  # shown when the test fails: replay with it
    rng = random.Random(seed)
    changes = Changes(platform_admin, pool, rng)
    canopy.beat()
    worker = canopy.worker()
    api_faults(proxy, None)
    for _ in range(3):
        changes.create()
    for tenant in changes.tenants:
        changes.change(tenant)
        changes.change(tenant)
    wait_converged(changes.tenants, timeout=90)
    assert all(fault.times == 0 for fault in proxy.faults), "every fault was met"
    assert any(watcher.failed(t) for t in changes.tenants), "a failure was shown"
    assert any("injected fault" in message for message in watcher.messages), watcher.messages
    assert ProvisioningIntent.objects.filter(attempts__gt=0).exists(), "failed pushes were retried"

    for round_number in range(rounds):
        fault = rng.choice(["api", "kill", "redis", "redis-lost", "database"])
        print(f"round {round_number}: {fault}")
        if fault == "api":
            api_faults(proxy, rng)
            changes.burst(rng.randint(1, 6))
        else:
            held = hold_write(proxy, rng.choice(["resourcequotas", "rolebindings", "limitranges"]))
            changes.burst(rng.randint(1, 4))
            with contextlib.suppress(AssertionError):  # the burst may not touch the held kind
                wait_until(lambda: held.times == 0, "the worker to be mid-apply", timeout=5)  # noqa: B023
            if fault == "kill":
                canopy.kill(worker)
                changes.burst(rng.randint(0, 2))
                worker = canopy.worker()
            elif fault.startswith("redis"):
                redis.restart(lose_data=fault == "redis-lost")
            else:
                canopy.cut_database(worker)
            held.times = 0
        wait_converged(changes.tenants, timeout=120)
        proxy.faults.clear()
    assert_recovered(changes.tenants, proxy, canopy)
    changes.assert_audited_once()
