"""The v1 REST API. Viewsets are thin: querysets come from `tenants.selectors` (already restricted to
what the requester may see), writes go through serializers to `tenants.services`."""

from __future__ import annotations

import datetime
from typing import Any, ClassVar, cast

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch, QuerySet
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from tenants import selectors, services
from tenants.api import serializers as s
from tenants.api.filters import FilterSet, IdFilter
from tenants.models import AuditEvent, Tenant, Volume
from tenants.permissions import Action, require


class SelectorViewSet(viewsets.ModelViewSet):
    """Reads through one selector for the requesting user; a row outside it is a 404."""

    selector: ClassVar[Any]
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]
    lookup_value_converter = "id"  # tenants/converters.py: an id out of range is a 404

    def get_queryset(self) -> QuerySet:
        return type(self).selector(user=self.request.user)

    def _reread(self, serializer: BaseSerializer) -> None:
        """Answer a write with the row as a read shows it (annotated figures included)."""
        saved: Any = serializer.instance  # the row just written
        serializer.instance = self.get_queryset().get(pk=saved.pk)

    def perform_create(self, serializer: BaseSerializer) -> None:
        serializer.save()
        self._reread(serializer)

    def perform_update(self, serializer: BaseSerializer) -> None:
        serializer.save()
        self._reread(serializer)


# ---------------------------------------------------------------------------------------------


class ClusterViewSet(SelectorViewSet):
    selector = selectors.cluster_list
    serializer_class = s.ClusterSerializer
    filterset_fields = ["kind", "name"]

    def perform_destroy(self, instance: Any) -> None:
        services.cluster_delete(acting_user=self.request.user, cluster=instance)


class PoolViewSet(SelectorViewSet):
    selector = selectors.pool_list
    serializer_class = s.PoolSerializer
    filterset_fields = ["cluster", "name"]

    def perform_destroy(self, instance: Any) -> None:
        services.pool_delete(acting_user=self.request.user, pool=instance)


class TenantFilter(FilterSet):
    parent = IdFilter(method="filter_parent", help_text="Children of this tenant id.")
    path = django_filters.CharFilter(field_name="name_path", help_text="Exact path, e.g. department1/dev1.")
    path_prefix = django_filters.CharFilter(
        method="filter_path_prefix", help_text="This path and everything below it."
    )
    level = django_filters.NumberFilter(field_name="depth")
    name = django_filters.CharFilter(field_name="name", lookup_expr="icontains")
    is_leaf = django_filters.BooleanFilter(field_name="leaf")
    top_level = django_filters.BooleanFilter(method="filter_top_level", help_text="Only level-1 tenants.")

    class Meta:
        model = Tenant
        fields = ["parent", "path", "path_prefix", "level", "state", "is_leaf", "name"]

    def filter_parent(self, queryset: QuerySet, name: str, value: int) -> QuerySet:
        return queryset.filter(
            pk__in=selectors.tenant_children_of_id(user=self.request.user, parent_id=value).values("pk")
        )

    def filter_path_prefix(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip("/")
        return queryset.filter(name_path=value) | queryset.filter(name_path__startswith=f"{value}/")

    def filter_top_level(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        return queryset.filter(depth=1) if value else queryset.exclude(depth=1)


@extend_schema_view(
    create=extend_schema(request=s.TenantCreateSerializer, responses={201: s.TenantSerializer}),
    destroy=extend_schema(
        parameters=[
            OpenApiParameter(
                "confirm", bool, description="Required when the tenant has sub-tenants, members or volumes."
            )
        ]
    ),
)
class TenantViewSet(SelectorViewSet):
    """The tenant tree. Each tenant shows its path, its allocations per pool, what its sub-tenants hold
    and what remains."""

    selector = selectors.tenant_list
    serializer_class = s.TenantSerializer
    filterset_class = TenantFilter

    def get_serializer_class(self) -> type[BaseSerializer]:
        if self.action == "create":
            return s.TenantCreateSerializer
        return super().get_serializer_class()

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # A list, never None: DEFAULT_PAGINATION_CLASS pages every list.
        page = cast("list[Tenant]", self.paginate_queryset(self.filter_queryset(self.get_queryset())))
        selectors.tenant_summaries(page, user=request.user)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = s.TenantCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        tenant = serializer.save()
        return self._tenant_response(tenant, status.HTTP_201_CREATED)

    def _tenant_response(self, tenant: Tenant, code: int = status.HTTP_200_OK) -> Response:
        fresh = selectors.tenant_get(user=self.request.user, pk=tenant.pk)
        return Response(s.TenantSerializer(fresh, context=self.get_serializer_context()).data, status=code)

    def perform_destroy(self, instance: Tenant) -> None:
        confirm = self.request.query_params.get("confirm", "").lower() in ("1", "true", "yes")
        services.tenant_delete(acting_user=self.request.user, tenant=instance, confirm=confirm)

    @extend_schema(request=s.TenantMoveSerializer, responses=s.TenantSerializer)
    @action(detail=True, methods=["post"])
    def move(self, request: Request, pk: str | None = None) -> Response:
        tenant = self.get_object()
        body = s.TenantMoveSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        moved = services.tenant_move(
            acting_user=request.user, tenant=tenant, new_parent=body.validated_data["parent"]
        )
        return self._tenant_response(moved)

    @extend_schema(request=None, responses=s.TenantSerializer)
    @action(detail=True, methods=["post"])
    def suspend(self, request: Request, pk: str | None = None) -> Response:
        tenant = services.tenant_set_state(
            acting_user=request.user, tenant=self.get_object(), state=Tenant.State.SUSPENDED
        )
        return self._tenant_response(tenant)

    @extend_schema(request=None, responses=s.TenantSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        tenant = services.tenant_set_state(
            acting_user=request.user, tenant=self.get_object(), state=Tenant.State.ACTIVE
        )
        return self._tenant_response(tenant)

    @extend_schema(request=s.TenantPlanSerializer, responses=s.TenantSerializer)
    @action(detail=True, methods=["post"], url_path="apply-plan")
    def apply_plan(self, request: Request, pk: str | None = None) -> Response:
        tenant = self.get_object()
        body = s.TenantPlanSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        tenant = services.tenant_apply_plan(
            acting_user=request.user, tenant=tenant, plan=body.validated_data["plan"]
        )
        return self._tenant_response(tenant)

    @extend_schema(responses=s.DeletionImpactSerializer)
    @action(detail=True, methods=["get"], url_path="deletion-impact")
    def deletion_impact(self, request: Request, pk: str | None = None) -> Response:
        """What deleting the tenant takes with it: it names the whole subtree, so only for those who
        may delete it (as the console's delete page)."""
        tenant = self.get_object()
        require(request.user, Action.MANAGE, tenant)
        impact = services.tenant_deletion_impact(tenant)
        return Response(s.DeletionImpactSerializer(impact).data)


class AllocationViewSet(SelectorViewSet):
    """Allocations per tenant and pool. A change may carry `ends_at` (a time-bound grant): beat
    then puts back the amounts before; `grant` shows it."""

    selector = selectors.allocation_list_with_grants
    serializer_class = s.AllocationSerializer
    filterset_fields = ["tenant", "pool"]

    def perform_destroy(self, instance: Any) -> None:
        services.allocation_delete(acting_user=self.request.user, allocation=instance)


class AllocationGrantViewSet(viewsets.ReadOnlyModelViewSet):
    """Time-bound grants (read by whoever reads the allocation); those who may change the
    allocation end one now (`end`: back to the amounts before, below what running work holds if
    need be, saying so) or keep its amounts (`cancel`)."""

    serializer_class = s.AllocationGrantSerializer
    filterset_fields = ["tenant", "allocation", "state"]
    lookup_value_converter = "id"

    def get_queryset(self) -> QuerySet:
        return selectors.allocation_grant_list(user=self.request.user)

    def _answer(self, grant: Any) -> Response:
        fresh = self.get_queryset().get(pk=grant.pk)
        return Response(s.AllocationGrantSerializer(fresh, context=self.get_serializer_context()).data)

    @extend_schema(request=None, responses=s.AllocationGrantSerializer)
    @action(detail=True, methods=["post"])
    def end(self, request: Request, pk: str | None = None) -> Response:
        return self._answer(services.allocation_grant_end(acting_user=request.user, grant=self.get_object()))

    @extend_schema(request=None, responses=s.AllocationGrantSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        return self._answer(
            services.allocation_grant_cancel(acting_user=request.user, grant=self.get_object())
        )


class StorageViewSet(SelectorViewSet):
    selector = selectors.storage_list
    serializer_class = s.StorageSerializer
    filterset_fields = ["tenant", "cluster"]

    def perform_destroy(self, instance: Any) -> None:
        services.storage_delete(acting_user=self.request.user, directory=instance)


class TenantServiceViewSet(SelectorViewSet):
    """Services a tenant uses on a Hadoop cluster (Hive databases: their warehouse directories are
    pushed with the tenant's ACLs). Created and removed, never changed: a new name is a new database."""

    selector = selectors.tenant_service_list
    serializer_class = s.TenantServiceSerializer
    filterset_fields = ["tenant", "cluster", "kind"]
    http_method_names = ["get", "post", "delete", "head", "options"]

    def perform_destroy(self, instance: Any) -> None:
        services.tenant_service_delete(acting_user=self.request.user, service=instance)


class VolumeFilter(FilterSet):
    tenant = IdFilter(method="filter_tenant", help_text="Volumes this tenant can mount.")
    # An id, not a choice of shares: an id that exists but is not the caller's answers as one that
    # does not exist (an empty page), never "not a valid choice".
    share = IdFilter(field_name="share_id", help_text="Volumes of this NFS share.")

    class Meta:
        model = Volume
        fields = ["cluster", "share", "scope", "name", "tenant"]

    def filter_tenant(self, queryset: QuerySet, name: str, value: int) -> QuerySet:
        return queryset.filter(pk__in=selectors.volume_ids_of_tenant(user=self.request.user, tenant_id=value))


class VolumeViewSet(SelectorViewSet):
    selector = selectors.volume_list
    serializer_class = s.VolumeSerializer
    filterset_class = VolumeFilter

    def perform_destroy(self, instance: Any) -> None:
        services.volume_delete(acting_user=self.request.user, volume=instance)


@extend_schema_view(
    destroy=extend_schema(description="Refused (400, the volumes named) while volumes use the share."),
)
class NfsShareViewSet(SelectorViewSet):
    """NFS shares: platform admins register them per Kubernetes cluster and grant them to tenants;
    tenant admins read the shares usable in what they administer and carve volumes out of them."""

    selector = selectors.nfs_share_list
    serializer_class = s.NfsShareSerializer
    filterset_fields = ["cluster", "name"]

    def perform_destroy(self, instance: Any) -> None:
        services.nfs_share_delete(acting_user=self.request.user, share=instance)

    @extend_schema(request=s.NfsShareGrantSerializer, responses={201: s.NfsShareGrantSerializer})
    @action(detail=True, methods=["post"], url_path="grants")
    def grant(self, request: Request, pk: str | None = None) -> Response:
        """Grant the share to a tenant: volumes of its whole subtree may be directories of it."""
        share = self.get_object()
        body = s.NfsShareGrantSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        grant = services.nfs_share_grant(
            acting_user=request.user, share=share, tenant=body.validated_data["tenant"]
        )
        return Response(
            s.NfsShareGrantSerializer(grant, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        request=None,
        responses={204: None},
        parameters=[
            OpenApiParameter("tenant", int, OpenApiParameter.PATH, description="The granted tenant's id.")
        ],
    )
    @action(detail=True, methods=["delete"], url_path="grants/<id:tenant>")
    def revoke(self, request: Request, pk: str | None = None, tenant: str | None = None) -> Response:
        """Take the share back from a tenant; refused (400, the volumes named) while volumes of the
        share are attached to tenants only this grant reaches."""
        share = self.get_object()
        # `tenant` comes from the URL (grants/<id:tenant>), so it is always given.
        grant = selectors.nfs_share_grant_get(
            user=request.user, share=share, tenant_id=int(cast(str, tenant))
        )
        services.nfs_share_revoke(acting_user=request.user, grant=grant)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PlanViewSet(SelectorViewSet):
    selector = selectors.plan_list
    serializer_class = s.PlanSerializer
    filterset_fields = ["name"]

    def perform_destroy(self, instance: Any) -> None:
        services.plan_delete(acting_user=self.request.user, plan=instance)


class MembershipViewSet(SelectorViewSet):
    selector = selectors.membership_list
    serializer_class = s.MembershipSerializer
    filterset_fields = ["tenant", "role", "user__username", "group__name"]

    def perform_destroy(self, instance: Any) -> None:
        services.membership_revoke(acting_user=self.request.user, membership=instance)


class UserViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """Users. Platform admins create and change them (deactivate instead of delete, so the audit trail
    keeps its actors); others see themselves and the people they share a tenant with."""

    serializer_class = s.UserSerializer
    filterset_fields = ["username", "is_staff", "is_active"]
    lookup_value_converter = "id"

    def get_queryset(self) -> QuerySet:
        visible = Prefetch(
            "memberships",
            queryset=selectors.membership_list(user=self.request.user),
            to_attr="visible_memberships",
        )
        return selectors.user_list(user=self.request.user).prefetch_related(visible)


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 instant in any offset Python reads, given to the database in UTC: PostgreSQL
    refuses offsets beyond 15:59 (a 500 otherwise); one that leaves Python's range is a 400."""

    def to_python(self, value: Any) -> datetime.datetime | None:
        instant = super().to_python(value)
        if instant is None:
            return None
        try:
            return instant.astimezone(datetime.UTC)
        except OverflowError as error:
            raise DjangoValidationError("This instant is out of range.", code="invalid") from error


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class AuditFilter(FilterSet):
    since = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    actor = django_filters.CharFilter(field_name="actor_name")

    class Meta:
        model = AuditEvent
        fields = ["tenant", "action", "actor", "target_type", "since", "until"]


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The audit trail: platform admins read all of it, tenant admins their subtrees', viewers and
    members the changes to their own tenants (docs/security.md, *Who reads which audit rows*)."""

    serializer_class = s.AuditEventSerializer
    filterset_class = AuditFilter
    lookup_value_converter = "id"

    def get_queryset(self) -> QuerySet:
        return selectors.audit_list(user=self.request.user)

    def get_serializer_context(self) -> dict[str, Any]:
        return {
            **super().get_serializer_context(),
            "audit_reader": selectors.audit_reader(user=getattr(self.request, "user", None)),
        }
