"""Every read of quota requests and the inbox, given the user, restricted through the one permission
helper (`tenants.permissions`): a person reads the requests they made and those they may decide
(platform admins: all; tenant admins: those whose deciding tenant they administer, it or a tenant
above it); anything else does not exist for them. Each reads only their own inbox."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeGuard

from django.db.models import Q, QuerySet
from django.http import Http404

from quotas.models import Notification, QuotaRequest
from tenants.permissions import Action, AnyUser, is_platform_admin, visible_tenants

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def _signed_in(user: AnyUser | None) -> TypeGuard[User]:
    return user is not None and user.is_authenticated and user.is_active


def quota_request_list(*, user: AnyUser | None) -> QuerySet[QuotaRequest]:
    rows = QuotaRequest.objects.select_related("tenant", "pool__cluster", "deciding_tenant")
    if not _signed_in(user):
        return rows.none()
    if is_platform_admin(user):
        return rows
    return rows.filter(
        Q(requester_id=user.pk) | Q(deciding_tenant__in=visible_tenants(user, Action.ADMINISTER))
    )


def quota_request_to_decide(*, user: AnyUser | None) -> QuerySet[QuotaRequest]:
    """The open requests `user` may decide (platform admins: every open one)."""
    rows = quota_request_list(user=user).filter(state=QuotaRequest.State.OPEN)
    if is_platform_admin(user):
        return rows
    return rows.filter(deciding_tenant__in=visible_tenants(user, Action.ADMINISTER))


def quota_request_mine(*, user: AnyUser | None) -> QuerySet[QuotaRequest]:
    if not _signed_in(user):
        return QuotaRequest.objects.none()
    return quota_request_list(user=user).filter(requester_id=user.pk)


def quota_request_get(*, user: AnyUser | None, pk: Any) -> QuotaRequest:
    try:
        return quota_request_list(user=user).get(pk=pk)
    except (QuotaRequest.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such quota request.") from exc


def quota_request_of_tenant(*, user: AnyUser | None, tenant_id: int) -> QuerySet[QuotaRequest]:
    """The requests of one tenant that `user` may read."""
    return quota_request_list(user=user).filter(tenant_id=tenant_id)


def notification_list(*, user: AnyUser | None) -> QuerySet[Notification]:
    if not _signed_in(user):
        return Notification.objects.none()
    return Notification.objects.filter(recipient_id=user.pk)


def notification_unread_count(*, user: AnyUser | None) -> int:
    return notification_list(user=user).filter(read_at__isnull=True).count()
