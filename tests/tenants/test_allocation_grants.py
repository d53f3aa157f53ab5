"""Time-bound grants (issue 19, point 2): an allocation change with an end time, ended by beat
through the same allocation service; waiting while running work holds more than it goes back to
(usage recorded through usage's own service, as the collectors do), refused when the rules break,
superseded by a later change, kept or ended early by an admin; every step audited."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone

from provisioning.models import ProvisioningIntent
from tenants import services
from tenants.models import Allocation, AllocationGrant, AuditEvent
from tests.tenants.builders import spec
from usage import measures
from usage.services import usage_record

pytestmark = pytest.mark.django_db

HOUR = datetime.timedelta(hours=1)


@pytest.fixture
def world(k8s_world):
    """The Arena world on a pool of 8 GPUs: department1 has 3 (dev1 1, dev2 2)."""
    k8s_world.pool = services.pool_update(acting_user=k8s_world.admin, pool=k8s_world.pool, gpu_capacity=8)
    return k8s_world


def _allocation(tenant, pool) -> Allocation:
    return Allocation.objects.get(tenant=tenant, pool=pool)


def _grant(world, gpu=6, until=None, tenant=None, user=None) -> AllocationGrant:
    tenant = tenant or world.department1
    ends_at = until or timezone.now() + HOUR
    services.allocation_set(
        acting_user=user or world.admin, tenant=tenant, spec=spec(world.pool, gpu=gpu), ends_at=ends_at
    )
    return AllocationGrant.objects.get(allocation__tenant=tenant, state="active")


def _running_work(world, tenant, gpus: float) -> None:
    """What the collectors would record: the tenant's namespace quota usage on the cluster now."""
    usage_record(
        cluster=world.cluster,
        time=timezone.now(),
        readings=[measures.UsageReading(tenant_id=tenant.pk, figures={"gpu_used": gpus})],
    )


def _actions(tenant) -> list[str]:
    return list(AuditEvent.objects.filter(tenant=tenant).order_by("pk").values_list("action", flat=True))


def test_a_grant_records_what_to_go_back_to_and_beat_reverts_it_at_its_end(world):
    grant = _grant(world, gpu=6)
    assert _allocation(world.department1, world.pool).gpu == 6
    assert grant.back_to["gpu"] == 3 and grant.granted["gpu"] == 6
    assert grant.granted_by_name == world.admin.username
    change = AuditEvent.objects.filter(tenant=world.department1, action="ALLOCATION_UPDATED").latest("pk")
    assert change.after["gpu"] == 6 and change.after["until"] == grant.ends_at.isoformat()

    # Not due yet: nothing happens.
    assert services.allocation_grants_end_due(now=timezone.now()) == {}
    ProvisioningIntent.objects.all().delete()
    before = len(_actions(world.department1))

    outcome = services.allocation_grants_end_due(now=grant.ends_at)
    assert outcome == {grant.pk: "ended"}
    assert _allocation(world.department1, world.pool).gpu == 3
    grant.refresh_from_db()
    assert grant.state == "ended" and grant.finished_at is not None
    assert "not checked" in grant.status  # nothing measured: it says so
    # The usual change row (by the system) and the grant's own row; the clusters get it pushed.
    assert _actions(world.department1)[before:] == ["ALLOCATION_UPDATED", "ALLOCATION_GRANT_ENDED"]
    change = AuditEvent.objects.filter(tenant=world.department1, action="ALLOCATION_UPDATED").latest("pk")
    assert (change.actor_name, change.before["gpu"], change.after["gpu"]) == ("system", 6, 3)
    assert ProvisioningIntent.objects.filter(tenant_id=world.department1.pk).exists()
    # A second pass finds nothing to do.
    assert services.allocation_grants_end_due(now=grant.ends_at + HOUR) == {}


def test_the_end_waits_while_running_work_holds_more_then_goes_ahead(world):
    grant = _grant(world, gpu=6)
    _running_work(world, world.department1, 5)

    assert services.allocation_grants_end_due(now=grant.ends_at) == {grant.pk: "waiting"}
    grant.refresh_from_db()
    assert grant.state == "waiting"
    assert grant.status == "Waiting: running work holds 5 GPUs; back to 3 GPUs when it holds 3 GPUs or fewer."
    assert _allocation(world.department1, world.pool).gpu == 6
    # Every pass tries again; the waiting is audited once.
    services.allocation_grants_end_due(now=grant.ends_at + HOUR)
    assert _actions(world.department1).count("ALLOCATION_GRANT_WAITING") == 1

    _running_work(world, world.department1, 2)
    assert services.allocation_grants_end_due(now=grant.ends_at + HOUR) == {grant.pk: "ended"}
    assert _allocation(world.department1, world.pool).gpu == 3
    grant.refresh_from_db()
    assert grant.status == "Ended: back to the amounts before."


def test_an_admin_ends_a_waiting_grant_below_running_work_and_it_says_so(world):
    grant = _grant(world, gpu=6)
    _running_work(world, world.department1, 5)
    services.allocation_grants_end_due(now=grant.ends_at)

    ended = services.allocation_grant_end(acting_user=world.admin, grant=grant)
    assert ended.state == "ended"
    assert ended.status == (
        f"Ended early by {world.admin.username}, below what running work holds: 5 GPUs held, back to 3 GPUs."
    )
    assert _allocation(world.department1, world.pool).gpu == 3
    row = AuditEvent.objects.get(action="ALLOCATION_GRANT_ENDED")
    assert row.actor == world.admin and row.after["status"] == ended.status
    with pytest.raises(ValidationError):
        services.allocation_grant_end(acting_user=world.admin, grant=grant)


def test_an_end_the_rules_refuse_is_refused_with_the_rules_words(world):
    grant = _grant(world, gpu=6)
    # Meanwhile department1 gives its sub-tenants more of it: 1 + 4 = 5 GPUs, above the 3 before.
    services.allocation_set(acting_user=world.admin, tenant=world.dev2, spec=spec(world.pool, gpu=4))

    assert services.allocation_grants_end_due(now=grant.ends_at) == {grant.pk: "refused"}
    grant.refresh_from_db()
    assert grant.state == "refused"
    assert grant.status.startswith("End refused, the allocation keeps the granted amounts: ")
    assert "department1" in grant.status and "5 GPUs" in grant.status
    assert _allocation(world.department1, world.pool).gpu == 6
    assert AuditEvent.objects.get(action="ALLOCATION_GRANT_REFUSED").after["status"] == grant.status
    # Refused for good: later passes leave it.
    assert services.allocation_grants_end_due(now=grant.ends_at + HOUR) == {}


def test_a_later_change_supersedes_the_grant_and_is_never_reverted(world):
    grant = _grant(world, gpu=6)
    services.allocation_set(acting_user=world.admin, tenant=world.department1, spec=spec(world.pool, gpu=5))
    grant.refresh_from_db()
    assert grant.state == "superseded"
    assert "the allocation keeps it" in grant.status
    assert AuditEvent.objects.get(action="ALLOCATION_GRANT_SUPERSEDED").before["state"] == "active"
    assert services.allocation_grants_end_due(now=grant.ends_at) == {}
    assert _allocation(world.department1, world.pool).gpu == 5


def test_the_same_amounts_again_keep_the_grant_and_a_new_end_time_extends_it(world):
    grant = _grant(world, gpu=6)
    services.allocation_set(acting_user=world.admin, tenant=world.department1, spec=spec(world.pool, gpu=6))
    grant.refresh_from_db()
    assert grant.state == "active"

    later = grant.ends_at + 24 * HOUR
    services.allocation_set(
        acting_user=world.admin, tenant=world.department1, spec=spec(world.pool, gpu=7), ends_at=later
    )
    grant.refresh_from_db()
    assert grant.state == "superseded"
    extended = AllocationGrant.objects.get(state="active")
    # Still back to what it had before the first grant, not to the first grant's 6.
    assert (extended.back_to["gpu"], extended.granted["gpu"], extended.ends_at) == (3, 7, later)


def test_an_admin_keeps_the_granted_amounts(world):
    grant = _grant(world, gpu=6)
    kept = services.allocation_grant_cancel(acting_user=world.admin, grant=grant)
    assert kept.state == "cancelled" and kept.status.startswith(f"Kept by {world.admin.username}")
    assert AuditEvent.objects.filter(action="ALLOCATION_GRANT_CANCELLED").count() == 1
    assert services.allocation_grants_end_due(now=grant.ends_at) == {}
    assert _allocation(world.department1, world.pool).gpu == 6


def test_removing_the_allocation_supersedes_its_grant(world):
    grant = _grant(world, gpu=2, tenant=world.dev2)
    services.allocation_delete(acting_user=world.admin, allocation=_allocation(world.dev2, world.pool))
    assert not AllocationGrant.objects.filter(pk=grant.pk).exists()
    row = AuditEvent.objects.get(action="ALLOCATION_GRANT_SUPERSEDED")
    assert "removed the allocation" in row.after["status"]


@pytest.mark.parametrize(
    "ends_at, message",
    [
        (timezone.now() - HOUR, "The end time must be in the future."),
        (datetime.datetime(2099, 1, 1, 12, 0), "Give the end time with its time zone"),
    ],
)
def test_a_bad_end_time_is_a_field_error_and_changes_nothing(world, ends_at, message):
    with pytest.raises(ValidationError) as refused:
        services.allocation_set(
            acting_user=world.admin, tenant=world.department1, spec=spec(world.pool, gpu=6), ends_at=ends_at
        )
    assert message in refused.value.message_dict["ends_at"][0]
    assert _allocation(world.department1, world.pool).gpu == 3
    assert not AllocationGrant.objects.exists()


def test_an_end_time_needs_a_change_and_an_allocation_to_go_back_to(world, platform_admin):
    with pytest.raises(ValidationError) as same:
        _grant(world, gpu=3)
    assert "change an amount" in same.value.message_dict["ends_at"][0]
    services.allocation_delete(acting_user=world.admin, allocation=_allocation(world.dev1, world.pool))
    with pytest.raises(ValidationError) as new:
        _grant(world, gpu=1, tenant=world.dev1)
    assert "allocate first" in new.value.message_dict["ends_at"][0]


def test_who_may_grant_end_or_keep_is_who_may_change_the_allocation(world):
    people = world.people
    # A tenant's own admin may not grant itself more, nor end or keep its grant; its parent's may.
    with pytest.raises(PermissionDenied):
        _grant(world, gpu=2, tenant=world.dev2, user=people.dev2_admin)
    with pytest.raises(Http404):
        _grant(world, gpu=2, tenant=world.dev2, user=people.outsider)
    grant = _grant(world, gpu=1, tenant=world.dev2, user=people.dept_admin)  # a grant may lower too
    for denied in (people.dev2_admin, world.tom):
        with pytest.raises(PermissionDenied):
            services.allocation_grant_end(acting_user=denied, grant=grant)
        with pytest.raises(PermissionDenied):
            services.allocation_grant_cancel(acting_user=denied, grant=grant)
    with pytest.raises(Http404):
        services.allocation_grant_cancel(acting_user=people.dev1_admin, grant=grant)
    grant.refresh_from_db()
    assert (
        grant.state == "active"
        and not AuditEvent.objects.filter(action__startswith="ALLOCATION_GRANT").exists()
    )
    assert services.allocation_grant_end(acting_user=people.dept_admin, grant=grant).state == "ended"
