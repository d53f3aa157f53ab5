"""The usage API (issue 7): a tenant's series and the workloads, thin views over `usage.selectors`
(every read restricted to the tenants the requester uses: members and admins; for others a tenant's
usage does not exist, a 404). Mounted under /api/v1/ beside the tenants' API (usage/api/urls.py)."""

from __future__ import annotations

import django_filters
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants import selectors as tenant_selectors
from tenants.api.filters import FilterSet
from tenants.api.views import TenantFilter
from usage import selectors
from usage.api import serializers as s
from usage.models import Workload


class TenantUsageView(generics.GenericAPIView):
    """/tenants/{id}/usage/: the tenant is found as the tenants' own detail endpoints find it (their
    queryset and filters; one the requester cannot see is a 404)."""

    filterset_class = TenantFilter
    lookup_value_converter = "id"  # tenants/converters.py: an id out of range is a 404

    def get_queryset(self) -> QuerySet:
        return tenant_selectors.tenant_list(user=self.request.user)

    @extend_schema(parameters=[s.UsageQuerySerializer], responses=s.UsageSerializer)
    def get(self, request: Request, pk: int) -> Response:
        """What the tenant's subtree used and was allocated over time, per cluster and partition.
        Members and admins of the tenant (or above it) only; for others it does not exist."""
        tenant = self.get_object()
        now = timezone.now()
        query = s.UsageQuerySerializer(data=request.query_params, context={"now": now})
        query.is_valid(raise_exception=True)
        usage_query = query.validated_data["query"]
        source, series = selectors.usage_series(user=request.user, tenant=tenant, query=usage_query, now=now)
        names = dict(
            selectors.cluster_names(
                user=request.user, ids={one.cluster_id for many in series.values() for one in many}
            )
        )
        body = {
            "tenant": tenant.pk,
            "tenant_path": tenant.name_path,
            "from": usage_query.start,
            "to": usage_query.end,
            "step": int(usage_query.step.total_seconds()),
            "source": source,
            "demo": settings.CANOPY_DEMO_USAGE,
            "series": [
                {
                    "metric": metric,
                    "cluster": one.cluster_id,
                    "cluster_name": names.get(one.cluster_id, ""),
                    "partition": one.partition,
                    "points": [[time.isoformat(), value] for time, value in one.points],
                }
                for metric, many in series.items()
                for one in many
            ],
        }
        return Response(s.UsageSerializer(body).data)


class WorkloadFilter(FilterSet):
    mine = django_filters.BooleanFilter(method="filter_mine", help_text="Only the requester's own.")

    class Meta:
        model = Workload
        fields = ["tenant", "cluster", "kind", "state", "username", "mine"]

    def filter_mine(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        return queryset.filter(username=self.request.user.get_username()) if value else queryset


class WorkloadViewSet(viewsets.ReadOnlyModelViewSet):
    """Pods, Jobs, training jobs and YARN applications seen by the last collection pass, in the
    tenants the requester uses (members and admins), with who submitted them and what they hold."""

    serializer_class = s.WorkloadSerializer
    filterset_class = WorkloadFilter
    lookup_value_converter = "id"

    def get_queryset(self) -> QuerySet:
        return selectors.workload_list(user=self.request.user)


class IdleQuotaView(APIView):
    """/idle-quota/: idle-quota hints (issue 19, point 4), read only."""

    @extend_schema(parameters=[s.IdleQuotaQuerySerializer], responses=s.IdleQuotaSerializer)
    def get(self, request: Request) -> Response:
        """Tenants whose peak use of their guaranteed GPUs (the highest hourly average) stayed under
        `threshold` % over the last `window` days, with the figures and a suggested lower amount;
        those without figures apart. Lists the tenants the requester manages: below the tenants
        they administer (platform admins: every tenant); for others an empty list. Nothing is
        changed or stopped."""
        query = s.IdleQuotaQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        report = selectors.idle_quota_report(
            user=request.user,
            now=timezone.now(),
            window_days=query.validated_data["window"],
            threshold_percent=query.validated_data["threshold"],
        )
        return Response(s.IdleQuotaSerializer(report).data)
