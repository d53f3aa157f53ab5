"""The quota requests' and the inbox's API: thin viewsets over `quotas.selectors` (a request the
caller may not read is a 404), writes through `quotas.services`."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from quotas import selectors, services
from quotas.api import serializers as s
from quotas.models import Notification, QuotaRequest
from tenants.api.filters import FilterSet


class QuotaRequestFilter(FilterSet):
    mine = django_filters.BooleanFilter(method="filter_mine", help_text="Only the requests you made.")
    to_decide = django_filters.BooleanFilter(
        method="filter_to_decide", help_text="Only the open requests you may decide."
    )

    class Meta:
        model = QuotaRequest
        fields = ["tenant", "pool", "state", "mine", "to_decide"]

    def filter_mine(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        return queryset.filter(requester_id=self.request.user.pk) if value else queryset

    def filter_to_decide(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if not value:
            return queryset
        return queryset.filter(pk__in=selectors.quota_request_to_decide(user=self.request.user).values("pk"))


class QuotaRequestViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Requests for more quota: those you made and those you may decide. Members and admins of a
    tenant ask; the admins of the tenant that would give it (or platform admins) decide."""

    serializer_class = s.QuotaRequestSerializer
    filterset_class = QuotaRequestFilter
    lookup_value_converter = "id"

    def get_queryset(self) -> QuerySet:
        return selectors.quota_request_list(user=self.request.user)

    def _answer(self, quota_request: QuotaRequest, code: int = status.HTTP_200_OK) -> Response:
        fresh = selectors.quota_request_get(user=self.request.user, pk=quota_request.pk)
        return Response(self.get_serializer(fresh).data, status=code)

    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._answer(serializer.save(), status.HTTP_201_CREATED)

    @extend_schema(request=s.DecisionSerializer, responses=s.QuotaRequestSerializer)
    @action(detail=True, methods=["post"])
    def decide(self, request: Request, pk: int) -> Response:
        """Approve, change (with the amounts to grant) or refuse, with a comment. An approval that
        no longer fits is refused with the allocation rules' reason (state `refused`)."""
        quota_request = self.get_object()
        decision = s.DecisionSerializer(data=request.data)
        decision.is_valid(raise_exception=True)
        outcome = services.quota_request_decide(
            acting_user=request.user,
            quota_request=quota_request,
            decision=decision.validated_data["decision"],
            comment=decision.validated_data["comment"],
            asked=decision.granted(),
        )
        return self._answer(outcome.quota_request)

    @extend_schema(request=None, responses=s.QuotaRequestSerializer)
    @action(detail=True, methods=["post"])
    def withdraw(self, request: Request, pk: int) -> Response:
        """The requester takes back an open request."""
        quota_request = services.quota_request_withdraw(
            acting_user=request.user, quota_request=self.get_object()
        )
        return self._answer(quota_request)


class NotificationFilter(FilterSet):
    unread = django_filters.BooleanFilter(
        field_name="read_at", lookup_expr="isnull", help_text="Only unread."
    )

    class Meta:
        model = Notification
        fields = ["unread"]


class NotificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Your inbox: what Canopy told you (also sent by e-mail)."""

    serializer_class = s.NotificationSerializer
    filterset_class = NotificationFilter
    lookup_value_converter = "id"

    def get_queryset(self) -> QuerySet:
        return selectors.notification_list(user=self.request.user)

    @extend_schema(request=None, responses=s.NotificationSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: int) -> Response:
        """Mark this notification read."""
        notification = self.get_object()
        services.notification_mark_read(acting_user=request.user, notification_ids=[notification.pk])
        return Response(self.get_serializer(self.get_queryset().get(pk=notification.pk)).data)

    @extend_schema(request=None, responses={204: None})
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request: Request) -> Response:
        """Mark every notification read."""
        services.notification_mark_read(acting_user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
