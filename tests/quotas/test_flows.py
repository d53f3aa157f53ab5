"""Quota requests end to end through the services, on PostgreSQL: a request goes to the admins of
the tenant that would give it (told in their inbox and by e-mail), and approving it changes the
allocations through the allocation service (its rules, its audit rows, its provisioning intents)."""

from __future__ import annotations

import datetime

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.test import override_settings
from django.utils import timezone

from provisioning.models import ProvisioningIntent
from quotas import services
from quotas.models import Notification, QuotaRequest
from tenants import services as tenant_services
from tenants.models import AllocationGrant, AuditEvent, Tenant
from tests.embedded import free_port
from tests.quotas.conftest import gpus

pytestmark = pytest.mark.django_db


def ask(w, who, tenant, **asked):
    return services.quota_request_create(
        acting_user=who, tenant=tenant, pool=w.pool, asked=asked, reason="Training runs for the new model."
    )


def test_a_request_goes_to_the_nearest_tenant_with_room_and_its_admins_are_told(
    world, django_capture_on_commit_callbacks
):
    w = world
    with django_capture_on_commit_callbacks(execute=True):
        request = ask(w, w.bob, w.dev1, gpu=2)
    assert request.deciding_tenant == w.department1
    assert request.state == QuotaRequest.State.OPEN
    assert request.held == {"gpu": 1}
    inbox = Notification.objects.filter(quota_request=request)
    assert [n.recipient.username for n in inbox] == ["dept-admin"]
    assert "bob asks for GPUs: 2 GPUs (has 1 GPU)" in inbox.get().body
    assert [message.to for message in mail.outbox] == [["dept-admin@example.com"]]
    assert mail.outbox[0].subject == "Quota request: department1/dev1 asks for more in gpu-cluster/default"
    assert f"/requests/{request.pk}/" in mail.outbox[0].body
    event = AuditEvent.objects.get(action="QUOTA_REQUEST_CREATED")
    assert (event.actor, event.tenant, event.after["gpu"]) == (w.bob, w.dev1, 2)


def test_approval_changes_the_allocation_through_the_same_service(world, django_capture_on_commit_callbacks):
    w = world
    request = ask(w, w.bob, w.dev1, gpu=2)
    intents = ProvisioningIntent.objects.filter(tenant_id=w.dev1.pk).count()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        outcome = services.quota_request_decide(
            acting_user=w.people.dept_admin, quota_request=request, decision="approve", comment="Go ahead."
        )
    assert outcome.applied
    request.refresh_from_db()
    assert (request.state, request.decided_by, request.granted) == (
        "approved",
        w.people.dept_admin,
        {"gpu": 2},
    )
    assert gpus(w.dev1) == 2
    changed = AuditEvent.objects.get(action="ALLOCATION_UPDATED", tenant=w.dev1)
    assert (changed.actor, changed.before["gpu"], changed.after["gpu"]) == (w.people.dept_admin, 1, 2)
    assert AuditEvent.objects.filter(action="QUOTA_REQUEST_APPROVED", tenant=w.dev1).exists()
    assert ProvisioningIntent.objects.filter(tenant_id=w.dev1.pk).count() > intents
    assert [message.to for message in mail.outbox] == [["bob@example.com"]]
    assert "approved: GPUs: 2 GPUs" in mail.outbox[0].body and "Comment: Go ahead." in mail.outbox[0].body
    assert Notification.objects.filter(recipient=w.bob, quota_request=request).exists()


def test_where_the_parent_lacks_room_its_own_parent_gives_and_both_are_raised(world):
    """team (1 GPU) under dev1 (1 GPU: nothing left) asks for 2: dev1 must get 1 more, which
    department1 (1 left) has: department1's admins decide, and approving raises dev1 and team."""
    w = world
    team = tenant_services.tenant_create(
        acting_user=w.admin,
        parent=w.dev1,
        name="team",
        allocations=[tenant_services.AllocationSpec(pool=w.pool, gpu=1)],
    )
    request = ask(w, w.admin, team, gpu=2)
    assert request.deciding_tenant == w.department1
    services.quota_request_decide(acting_user=w.people.dept_admin, quota_request=request, decision="approve")
    assert (gpus(w.dev1), gpus(team), gpus(w.department1)) == (2, 2, 4)


def test_a_request_until_a_time_is_granted_until_then_and_beat_goes_back_deepest_first(world):
    """team asks for 2 GPUs until tomorrow: approving raises dev1 and team as time-bound grants
    ending then; when they end, both go back (team first: dev1 going back first would break the
    rules while team still holds 2)."""
    w = world
    team = tenant_services.tenant_create(
        acting_user=w.admin,
        parent=w.dev1,
        name="team",
        allocations=[tenant_services.AllocationSpec(pool=w.pool, gpu=1)],
    )
    until = timezone.now() + datetime.timedelta(days=1)
    request = services.quota_request_create(
        acting_user=w.admin,
        tenant=team,
        pool=w.pool,
        asked={"gpu": 2},
        reason="A week of tuning.",
        until=until,
    )
    services.quota_request_decide(acting_user=w.people.dept_admin, quota_request=request, decision="approve")
    assert (gpus(w.dev1), gpus(team)) == (2, 2)
    grants = AllocationGrant.objects.filter(state=AllocationGrant.State.ACTIVE)
    assert sorted((grant.tenant.name_path, grant.ends_at) for grant in grants) == [
        ("department1/dev1", until),
        ("department1/dev1/team", until),
    ]
    assert tenant_services.allocation_grants_end_due(now=until + datetime.timedelta(seconds=1))
    assert (gpus(w.dev1), gpus(team)) == (1, 1)
    assert set(AllocationGrant.objects.values_list("state", flat=True)) == {AllocationGrant.State.ENDED}


def test_with_no_room_anywhere_in_the_tree_platform_admins_decide_and_give_from_the_pool(
    world, django_capture_on_commit_callbacks
):
    w = world
    with django_capture_on_commit_callbacks(execute=True):
        request = ask(w, w.tom, w.dev2, gpu=4)  # +2: department1 has 1 left, the pool 2
    assert request.deciding_tenant is None
    assert [message.to for message in mail.outbox] == [["root-admin@example.com"]]
    with pytest.raises(Http404):  # not theirs to give: they do not read it
        services.quota_request_decide(
            acting_user=w.people.dept_admin, quota_request=request, decision="approve"
        )
    services.quota_request_decide(acting_user=w.admin, quota_request=request, decision="approve")
    assert (gpus(w.department1), gpus(w.dev2)) == (5, 4)


def test_change_grants_other_amounts_and_says_so(world):
    w = world
    request = ask(w, w.tom, w.dev2, cpu_millicores=12_000)  # department1's CPU is unlimited
    assert request.deciding_tenant == w.department1
    with pytest.raises(ValidationError) as refused:
        services.quota_request_decide(
            acting_user=w.people.dept_admin,
            quota_request=request,
            decision="change",
            asked={"cpu_millicores": 10_000},
        )
    assert refused.value.message_dict == {"comment": ["Say why: the admins who decide read it."]}
    outcome = services.quota_request_decide(
        acting_user=w.people.dept_admin,
        quota_request=request,
        decision="change",
        comment="10 CPU is what we can spare.",
        asked={"cpu_millicores": 10_000},
    )
    assert outcome.applied and outcome.quota_request.state == "changed"
    assert (
        AuditEvent.objects.get(action="ALLOCATION_UPDATED", tenant=w.dev2).after["cpu_millicores"] == 10_000
    )
    note = Notification.objects.filter(recipient=w.tom).latest("created_at")
    assert "approved with changes: CPU: 10 CPU" in note.body and "10 CPU is what we can spare." in note.body


def test_refusal_changes_nothing_and_tells_the_requester_why(world):
    w = world
    request = ask(w, w.bob, w.dev1, gpu=2)
    services.quota_request_decide(
        acting_user=w.people.dept_admin, quota_request=request, decision="refuse", comment="Not this quarter."
    )
    request.refresh_from_db()
    assert (request.state, gpus(w.dev1)) == ("refused", 1)
    assert (
        "Comment: Not this quarter." in Notification.objects.filter(recipient=w.bob).latest("created_at").body
    )
    with pytest.raises(ValidationError, match="refused already"):
        services.quota_request_decide(acting_user=w.admin, quota_request=request, decision="approve")


def test_a_request_that_no_longer_fits_is_refused_with_the_rules_reason(world):
    w = world
    request = ask(w, w.bob, w.dev1, gpu=2)
    # Meanwhile department1's last GPU goes to dev2.
    tenant_services.allocation_set(
        acting_user=w.people.dept_admin,
        tenant=w.dev2,
        spec=tenant_services.AllocationSpec(pool=w.pool, gpu=3, cpu_millicores=8000, memory_bytes=60 * 2**30),
    )
    outcome = services.quota_request_decide(
        acting_user=w.people.dept_admin, quota_request=request, decision="approve"
    )
    assert not outcome.applied
    request.refresh_from_db()
    assert request.state == "refused"
    assert request.refusal_reason == (
        "It no longer fits: department1 has 4 GPUs in pool gpu-cluster/default; its sub-tenants hold 4 GPUs, "
        "so 0 GPUs is left and department1/dev1 may have at most 1 GPU."
    )
    assert gpus(w.dev1) == 1
    assert request.refusal_reason in Notification.objects.filter(recipient=w.bob).latest("created_at").body
    assert (
        AuditEvent.objects.get(action="QUOTA_REQUEST_REFUSED").after["refusal_reason"]
        == request.refusal_reason
    )


def test_who_may_ask_withdraw_and_decide(world):
    w = world
    with pytest.raises(PermissionDenied):
        ask(w, w.people.dev1_viewer, w.dev1, gpu=2)
    with pytest.raises(Http404):
        ask(w, w.people.outsider, w.dev1, gpu=2)
    request = ask(w, w.bob, w.dev1, gpu=2)
    with pytest.raises(PermissionDenied):  # Bob reads his request but does not decide it
        services.quota_request_decide(acting_user=w.bob, quota_request=request, decision="approve")
    for stranger in (w.people.dev1_admin, w.people.dev2_admin, w.tom):
        with pytest.raises(Http404):
            services.quota_request_decide(acting_user=stranger, quota_request=request, decision="approve")
        with pytest.raises(Http404):
            services.quota_request_withdraw(acting_user=stranger, quota_request=request)
    with pytest.raises(PermissionDenied):  # the decider reads it, but only Bob takes it back
        services.quota_request_withdraw(acting_user=w.people.dept_admin, quota_request=request)
    services.quota_request_withdraw(acting_user=w.bob, quota_request=request)
    request.refresh_from_db()
    assert request.state == "withdrawn" and gpus(w.dev1) == 1
    assert AuditEvent.objects.filter(action="QUOTA_REQUEST_WITHDRAWN", actor=w.bob).exists()


def test_a_dept_admin_asking_for_a_sub_tenant_decides_it_as_the_admin_above(world):
    w = world
    request = ask(w, w.people.dept_admin, w.dev1, gpu=2)
    assert not Notification.objects.filter(quota_request=request).exists()  # nobody else to tell
    services.quota_request_decide(acting_user=w.people.dept_admin, quota_request=request, decision="approve")
    assert gpus(w.dev1) == 2


def test_bad_input_is_refused_by_field(world):
    w = world
    with pytest.raises(ValidationError) as refused:
        services.quota_request_create(
            acting_user=w.bob,
            tenant=w.dev1,
            pool=w.pool,
            asked={"gpu": 1, "capacity_percent": 40},
            reason=" ",
            until=timezone.now() - datetime.timedelta(days=1),
        )
    assert refused.value.message_dict == {
        "capacity": ["Capacity percentages apply to YARN pools only: ask for gpu, cpu or memory."],
        "reason": ["Say why: the admins who decide read it."],
        "until": ["Give a time in the future, or leave it empty."],
    }
    with pytest.raises(ValidationError) as same:
        ask(w, w.bob, w.dev1, gpu=1)
    assert same.value.message_dict == {
        "gpu": ["department1/dev1 has 1 GPU in pool gpu-cluster/default already."]
    }
    with pytest.raises(ValidationError) as nothing:
        ask(w, w.bob, w.dev1)
    assert nothing.value.message_dict == {"non_field_errors": ["Ask for at least one amount."]}
    assert not QuotaRequest.objects.exists()


def test_a_mail_server_that_fails_loses_neither_the_request_nor_the_inbox(
    world, django_capture_on_commit_callbacks, caplog
):
    w = world
    with (
        override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=free_port(),
            EMAIL_TIMEOUT=2,
        ),
        django_capture_on_commit_callbacks(execute=True),
    ):
        request = ask(w, w.bob, w.dev1, gpu=2)
    assert QuotaRequest.objects.filter(pk=request.pk).exists()
    assert Notification.objects.filter(quota_request=request, recipient=w.people.dept_admin).exists()
    assert "Could not send 1 notification e-mail(s)" in caplog.text


def test_group_admins_are_told(world, django_capture_on_commit_callbacks):
    from django.contrib.auth.models import Group

    w = world
    group = Group.objects.create(name="dept-leads")
    lead = w.people.outsider
    lead.groups.add(group)
    tenant_services.membership_grant(acting_user=w.admin, tenant=w.department1, group=group, role="admin")
    with django_capture_on_commit_callbacks(execute=True):
        ask(w, w.bob, w.dev1, gpu=2)
    assert sorted(to for message in mail.outbox for to in message.to) == [
        "dept-admin@example.com",
        "outsider@example.com",
    ]


def test_tenants_deleted_take_their_requests(world):
    w = world
    ask(w, w.tom, w.dev2, gpu=3)
    tenant_services.tenant_delete(acting_user=w.admin, tenant=Tenant.objects.get(pk=w.dev2.pk), confirm=True)
    assert not QuotaRequest.objects.exists()
