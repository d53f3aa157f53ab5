"""Time-bound grants end for real: a Celery worker with beat, through Redis, on PostgreSQL, runs
`provisioning.allocation_grants_end_due`; one grant goes back to the amounts before (its push
recorded), another waits while running work (recorded as the collectors do) holds more."""

from __future__ import annotations

import datetime
import shutil

import pytest
from django.utils import timezone

from provisioning.models import ProvisioningIntent
from tenants import services
from tenants.models import Allocation, AllocationGrant, AuditEvent
from tests.clusters.processes import wait_until
from tests.provisioning.test_worker import broker, redis, worker  # noqa: F401 (fixtures)
from tests.tenants.builders import GI, build_k8s_world, spec
from usage import measures
from usage.services import usage_record

pytestmark = [
    # serialized_rollback: the flush after this test leaves the content types as the next
    # transactional test (which restores them) expects.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]


def test_beat_ends_a_due_grant_through_celery_and_a_grant_over_running_work_waits(
    platform_admin,
    redis,  # noqa: F811
    worker,  # noqa: F811
    monkeypatch,
):
    monkeypatch.setenv("CANOPY_ALLOCATION_GRANTS_BEAT_SECONDS", "0.5")
    world = build_k8s_world(platform_admin)
    pool = services.pool_update(acting_user=platform_admin, pool=world.pool, gpu_capacity=8)
    services.allocation_set(acting_user=platform_admin, tenant=world.department1, spec=spec(pool, gpu=6))
    soon = timezone.now() + datetime.timedelta(seconds=3)
    admin = world.people.dept_admin
    services.allocation_set(acting_user=admin, tenant=world.dev1, spec=spec(pool, gpu=2), ends_at=soon)
    dev2 = {"cpu_millicores": 8000, "memory_bytes": 60 * GI}
    services.allocation_set(
        acting_user=admin, tenant=world.dev2, spec=spec(pool, gpu=3, **dev2), ends_at=soon
    )
    usage_record(
        cluster=world.cluster,
        time=timezone.now(),
        readings=[measures.UsageReading(tenant_id=world.dev2.pk, figures={"gpu_used": 3})],
    )
    ProvisioningIntent.objects.all().delete()

    redis.start()
    worker()
    ended = wait_until(
        lambda: AllocationGrant.objects.filter(tenant=world.dev1, state="ended").first(),
        "beat to end dev1's grant",
    )
    assert Allocation.objects.get(tenant=world.dev1, pool=pool).gpu == 1
    assert ended.status.startswith("Ended: back to the amounts before.")
    assert ProvisioningIntent.objects.filter(tenant_id=world.dev1.pk).exists()
    assert AuditEvent.objects.filter(tenant=world.dev1, action="ALLOCATION_GRANT_ENDED").count() == 1

    waiting = wait_until(
        lambda: AllocationGrant.objects.filter(tenant=world.dev2, state="waiting").first(),
        "beat to find dev2's running work",
    )
    assert (
        waiting.status == "Waiting: running work holds 3 GPUs; back to 2 GPUs when it holds 2 GPUs or fewer."
    )
    assert Allocation.objects.get(tenant=world.dev2, pool=pool).gpu == 3
