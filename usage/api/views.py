"""The usage API (issue 7): a tenant's series and the workloads, thin views over `usage.selectors`
(every read restricted to the tenants the requester uses: members and admins; for others a tenant's
usage does not exist, a 404). Mounted under /api/v1/ beside the tenants' API (usage/api/urls.py)."""

from __future__ import annotations

import datetime
from typing import Any

import django_filters
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics, viewsets
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants import selectors as tenant_selectors
from tenants.api.filters import FilterSet
from tenants.api.schema import error_response
from tenants.api.views import TenantFilter
from tenants.permissions import is_platform_admin
from usage import selectors, services, showback
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


def _showback_row(
    report: showback.Report, line: showback.Line, day: datetime.date | None = None
) -> dict[str, Any]:
    scopes = sorted(line.scopes, key=lambda scope: (report.cluster_names.get(scope[0], ""), scope[1]))
    return {
        "tenant": line.tenant_id,
        "tenant_path": line.name_path,
        "row": line.kind,
        "day": day,
        **showback.line_figures(line),
        "scopes": [
            {
                "cluster": scope[0],
                "cluster_name": report.cluster_names.get(scope[0], ""),
                "partition": scope[1],
                **showback.line_figures(
                    showback.Line(
                        line.tenant_id, line.name_path, line.kind, {scope: line.scopes[scope]}, line.prices
                    )
                ),
            }
            for scope in scopes
        ],
    }


class ShowbackView(generics.GenericAPIView):
    """/showback/: a month's GPU-hours, core-hours, memory GiB-hours and HDFS GiB-days, used and
    allocated, with costs where the pools have prices (the console's showback page, as JSON)."""

    serializer_class = s.ShowbackSerializer

    @extend_schema(
        parameters=[s.ShowbackQuerySerializer],
        responses={
            200: s.ShowbackSerializer,
            404: error_response("No such tenant, or not one you use (member or admin, or above)."),
        },
    )
    def get(self, request: Request) -> Response:
        """A tenant's subtree (members and admins of it or above; for others it does not exist, a
        404): its total, per day, and for its admins each sub-tenant's subtree and what it used
        itself. Without `tenant`: the requester's tenants (platform admins: the level-1 ones)."""
        query = s.ShowbackQuerySerializer(data=request.query_params, context={"now": timezone.now()})
        query.is_valid(raise_exception=True)
        window = query.validated_data["window"]
        report = selectors.showback_month(
            user=request.user, tenant_id=query.validated_data["tenant"], window=window
        )
        body = {
            "month": f"{window.month:%Y-%m}",
            "from": window.start,
            "to": window.end,
            "complete": window.complete,
            "tenant": report.tenant_id,
            "tenant_path": report.total.name_path,
            "currency": report.prices.currency,
            "demo": settings.CANOPY_DEMO_USAGE,
            "total": _showback_row(report, report.total),
            "rows": [_showback_row(report, line) for line in report.lines],
            "days": [_showback_row(report, line, day) for day, line in report.day_lines()],
        }
        return Response(s.ShowbackSerializer(body).data)


class PoolPricesView(generics.GenericAPIView):
    """/showback/prices/: what a unit of each resource costs on each pool, in one currency. Everyone
    signed in reads them; platform admins replace them all with a PUT."""

    serializer_class = s.PoolPricesSerializer

    def _body(self) -> dict[str, Any]:
        prices = list(selectors.pool_prices(user=self.request.user))
        return {"currency": prices[0].currency if prices else "", "prices": prices}

    def get(self, request: Request) -> Response:
        return Response(s.PoolPricesSerializer(self._body(), context={"request": request}).data)

    def put(self, request: Request) -> Response:
        """Replace every price (an empty list removes them). Refused with field errors: an unknown
        pool or resource, a price that would never apply there, a currency that is not ISO 4217."""
        if not is_platform_admin(request.user):
            raise PermissionDenied("Only platform admins set prices.")
        body = s.PoolPricesSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        specs = [
            services.PriceSpec(item["pool"], item["resource"], item["price"])
            for item in body.validated_data["prices"]
        ]
        try:
            services.pool_prices_set(
                acting_user=request.user, currency=body.validated_data["currency"], prices=specs
            )
        except DjangoValidationError as error:
            raise ValidationError(error.message_dict) from None
        return Response(s.PoolPricesSerializer(self._body(), context={"request": request}).data)


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
