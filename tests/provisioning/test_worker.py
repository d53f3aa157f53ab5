"""A real Celery worker (with beat) against a real Redis: a change made while Redis is down is
applied once it is back, beat has the worker collect the cluster's usage, and a push that meets
API server errors is retried by the worker with backoff until the cluster has it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection

from portal.celery import app as celery_app
from provisioning.models import ClusterSyncStatus, ProvisioningIntent
from tenants import services as tenant_services
from tenants.models import Membership
from tests.clusters.processes import wait_until
from tests.clusters.redis import RedisServer
from tests.tenants.builders import spec, user
from usage.models import UsageCollection, UsageSample

pytestmark = [
    pytest.mark.kubernetes,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def redis(tmp_path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    yield server
    server.stop()


@pytest.fixture
def broker(redis, settings) -> Iterator[RedisServer]:
    """This process sends tasks to our Redis instead of running them in-process."""
    saved = {key: celery_app.conf[key] for key in ("broker_url", "task_always_eager")}
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CANOPY_PROVISIONING_REDRIVE_AFTER_SECONDS = 1  # when beat may send a pending intent again
    celery_app.conf.update(broker_url=redis.url, task_always_eager=False)
    # The connection and producer pools are made from the broker URL on first use and kept.
    celery_app._pool = celery_app.amqp._producer_pool = None
    yield redis
    celery_app.conf.update(saved)
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
    celery_app._pool = celery_app.amqp._producer_pool = None


@pytest.fixture
def worker(broker, tmp_path, settings) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    log = tmp_path / "worker.log"

    def start() -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings.test",
            "DATABASE_URL": _database_url(),
            "REDIS_URL": broker.url,
            "CANOPY_TEST_TASKS_EAGER": "0",
            "CANOPY_EXPORT_DIR": settings.CANOPY_EXPORT_DIR,
            # Beat every half second, and a pending intent is due at once: the test need not wait.
            "CANOPY_PROVISIONING_REDRIVE_SECONDS": "0.5",
            "CANOPY_PROVISIONING_REDRIVE_AFTER_SECONDS": "1",
            "CANOPY_PROVISIONING_RECONCILE_SECONDS": "3600",
            "CANOPY_USAGE_BEAT_SECONDS": "0.5",
            "CANOPY_PROVISIONING_RETRY_BASE_SECONDS": "0.5",
            "CANOPY_KUBERNETES_HTTP_RETRIES": "0",
        }
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "-B",
                "--pool=solo",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--schedule",
                str(tmp_path / "beat-schedule"),
            ],
            cwd=ROOT,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def synced(tenant) -> bool:
    return ClusterSyncStatus.objects.filter(sync__tenant_id=tenant.pk, state="synced").exists() and not (
        ProvisioningIntent.objects.filter(tenant_id=tenant.pk).exclude(state="done").exists()
    )


def test_a_change_made_while_redis_is_down_is_applied_by_the_worker_once_it_is_back(
    platform_admin, gpu_cluster, redis, worker, proxy, kube_admin
):
    from kubernetes import client

    cluster, pool = gpu_cluster
    core = client.CoreV1Api(kube_admin)

    # Redis is down: the change commits, its intent waits, the request is not held up for long.
    started = time.monotonic()
    tenant = tenant_services.tenant_create(
        acting_user=platform_admin,
        parent=None,
        name=f"t-{uuid.uuid4().hex[:6]}",
        allocations=[spec(pool, gpu=1)],
    )
    assert time.monotonic() - started < 5
    [intent] = ProvisioningIntent.objects.filter(tenant_id=tenant.pk)
    assert intent.state == "pending"
    namespace = ClusterSyncStatus.objects.get(sync__tenant_id=tenant.pk).sync.namespace

    # Redis is back and a worker with beat runs: beat sends the intent again, the worker applies it.
    redis.start()
    worker()
    wait_until(lambda: synced(tenant), "the worker to push the tenant")
    assert core.read_namespace(namespace).metadata.labels["canopy.io/tenant-id"] == str(tenant.pk)

    # Beat also has the worker read usage back: the new namespace's quota, as the API server has it.
    sample = wait_until(
        lambda: UsageSample.objects.filter(tenant=tenant, cluster=cluster, gpu_allocated=1).first(),
        "the worker to collect the cluster's usage",
    )
    assert sample.gpu_used == 0
    assert UsageCollection.objects.get(cluster=cluster).state == "ok"

    # With everything up, a change reaches the worker through Redis right after its commit; the
    # API server fails it twice and the worker's retries (with backoff) get it through.
    proxy.fail(500, times=2, method="PATCH", path="/rolebindings/")
    tenant_services.membership_grant(
        acting_user=platform_admin, tenant=tenant, user=user(f"u-{tenant.pk}"), role=Membership.Role.MEMBER
    )
    wait_until(lambda: synced(tenant), "the worker to push the new member")
    assert [e.fault for e in proxy.injected()] == ["status 500", "status 500"]
    binding = client.RbacAuthorizationV1Api(kube_admin).read_namespaced_role_binding(
        "canopy-member", namespace
    )
    assert [s.name for s in binding.subjects] == [f"u-{tenant.pk}"]
