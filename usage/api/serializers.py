"""The usage API's serializers (issue 7): the query for a tenant's series, the series, workloads;
the showback and its prices (issue 19)."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from rest_framework import serializers

from tenants import selectors as tenant_selectors
from tenants.api.serializers.base import RestrictedRelatedField
from usage import idle, selectors, showback
from usage.api.fields import UsagePointsField
from usage.idle import IdleReport
from usage.models import USAGE_METRICS, PoolPrice, Workload

MAX_USAGE_DAYS = 400
MAX_USAGE_POINTS = 5000


class UsageQuerySerializer(serializers.Serializer):
    """`?metric=gpu_used&metric=gpu_allocated&from=...&to=...&step=300`. Every figure is for the
    tenant's whole subtree; the step picks the source (raw samples, hourly or daily averages)."""

    metric = serializers.ListField(
        child=serializers.ChoiceField(choices=list(USAGE_METRICS)),
        required=False,
        help_text="One or more figures (repeat the parameter); default: all.",
    )
    from_ = serializers.DateTimeField(
        required=False, help_text="Start (ISO 8601); default: an hour before `to`."
    )
    to = serializers.DateTimeField(required=False, help_text="End (ISO 8601); default: now.")
    step = serializers.IntegerField(
        required=False,
        min_value=60,
        max_value=MAX_USAGE_DAYS * 86400,  # no range is longer; a larger number overflowed a timedelta
        help_text="Seconds between points; default: about 300 points over the range.",
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")  # `from` is a Python keyword
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        now = self.context["now"]
        end = attrs.get("to") or now
        start = attrs.get("from") or end - datetime.timedelta(hours=1)
        if start >= end:
            raise serializers.ValidationError({"from": ["Must be before `to`."]})
        span = end - start
        if span > datetime.timedelta(days=MAX_USAGE_DAYS):
            raise serializers.ValidationError({"from": [f"A range of at most {MAX_USAGE_DAYS} days."]})
        default_step = max(60, int(span.total_seconds() // 300 // 60 * 60))
        step = datetime.timedelta(seconds=attrs.get("step") or default_step)
        if span / step > MAX_USAGE_POINTS:
            raise serializers.ValidationError(
                {
                    "step": [
                        f"At most {MAX_USAGE_POINTS} points: a step of at least {int(span.total_seconds() // MAX_USAGE_POINTS) + 1} s."
                    ]
                }
            )
        metrics = attrs.get("metric") or list(USAGE_METRICS)
        return {
            "query": selectors.UsageQuery(
                metrics=list(dict.fromkeys(metrics)), start=start, end=end, step=step
            )
        }


class UsageSeriesSerializer(serializers.Serializer):
    metric = serializers.CharField()
    cluster = serializers.IntegerField()
    cluster_name = serializers.CharField()
    partition = serializers.CharField(
        help_text="YARN node label; empty for the default partition and Kubernetes."
    )
    points = UsagePointsField(
        help_text="[time (ISO 8601, the bucket's start), average value] pairs; buckets without samples are left out.",
    )


class RangeSerializer(serializers.Serializer):
    """An answer about a range: its `start` field is written `from` (a Python keyword)."""

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = fields.pop("start")
        return fields


class UsageSerializer(RangeSerializer):
    tenant = serializers.IntegerField()
    tenant_path = serializers.CharField()
    start = serializers.DateTimeField()
    to = serializers.DateTimeField()
    step = serializers.IntegerField(help_text="Seconds.")
    # DRF's metaclass takes declared fields off the class (no clash with `Field.source`); the stubs
    # cannot know that.
    source = serializers.ChoiceField(choices=["raw", "hour", "day"])  # type: ignore[assignment]
    demo = serializers.BooleanField(help_text="True on the embedded demo: the figures are made up.")
    series = UsageSeriesSerializer(many=True)


class WorkloadSerializer(serializers.ModelSerializer):
    tenant_path = serializers.CharField(source="tenant.name_path", read_only=True)
    cluster_name = serializers.CharField(source="cluster.name", read_only=True)

    class Meta:
        model = Workload
        fields = [
            "id",
            "tenant",
            "tenant_path",
            "cluster",
            "cluster_name",
            "kind",
            "namespace",
            "name",
            "submitted_by",
            "username",
            "state",
            "gpu",
            "cpu_millicores",
            "memory_bytes",
            "started_at",
            "seen_at",
            "queue_position",
            "waiting_reason",
        ]
        read_only_fields = fields


# ---------------------------------------------------------------------------------------------
# Showback (issue 19)


class ShowbackQuerySerializer(serializers.Serializer):
    """`?month=2026-11&tenant=12`: a month (UTC; default this month) of a tenant's subtree (default:
    the requester's tenants)."""

    month = serializers.CharField(
        required=False, max_length=7, help_text="YYYY-MM; default: this month (the hours that are over)."
    )
    tenant = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=2**63 - 1,
        help_text="A tenant the requester uses (member or admin, or above); default: their own tenants.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        now = self.context["now"]
        try:
            month = showback.month_parse(attrs["month"]) if attrs.get("month") else now.date().replace(day=1)
            window = showback.month_window(month, now, settings.CANOPY_USAGE_HOURLY_DAYS)
        except ValueError as error:
            raise serializers.ValidationError({"month": [str(error)]}) from None
        return {"window": window, "tenant": attrs.get("tenant")}


FIGURE_FIELDS = [f"{r.key}_{basis}" for r in showback.RESOURCES for basis in ("used", "allocated")]


class ShowbackFiguresSerializer(serializers.Serializer):
    """Units, each rounded once to 3 decimals (costs to cents); null: no figure."""

    def get_fields(self) -> dict[str, serializers.Field]:
        fields: dict[str, serializers.Field] = {}
        for resource in showback.RESOURCES:
            for basis in ("used", "allocated"):
                fields[f"{resource.key}_{basis}"] = serializers.DecimalField(
                    max_digits=30,
                    decimal_places=3,
                    allow_null=True,
                    help_text=f"{resource.label} {basis}, {resource.unit}.",
                )
        for basis in ("used", "allocated"):
            fields[f"cost_{basis}"] = serializers.DecimalField(
                max_digits=30,
                decimal_places=2,
                allow_null=True,
                help_text=f"Cost of what was {basis}; null: no prices.",
            )
        return fields


class ShowbackScopeSerializer(ShowbackFiguresSerializer):
    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "cluster": serializers.IntegerField(),
            "cluster_name": serializers.CharField(),
            "partition": serializers.CharField(
                help_text="YARN node label; empty for the default and Kubernetes."
            ),
            **super().get_fields(),
        }


class ShowbackRowSerializer(ShowbackFiguresSerializer):
    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "tenant": serializers.IntegerField(allow_null=True),
            "tenant_path": serializers.CharField(),
            "row": serializers.ChoiceField(
                choices=["total", "itself", "subtree", "day"],
                help_text="total: the subtree (or the requester's tenants); itself: the tenant outside its "
                "sub-tenants; subtree: a sub-tenant's subtree; day: the total on `day`.",
            ),
            "day": serializers.DateField(allow_null=True),
            **super().get_fields(),
            "scopes": ShowbackScopeSerializer(many=True),
        }


class ShowbackSerializer(RangeSerializer):
    month = serializers.CharField()
    start = serializers.DateTimeField()
    to = serializers.DateTimeField()
    complete = serializers.BooleanField(help_text="False for the current month: the hours so far.")
    tenant = serializers.IntegerField(allow_null=True)
    tenant_path = serializers.CharField()
    currency = serializers.CharField(help_text="Empty: no prices, no costs.")
    demo = serializers.BooleanField(help_text="True on the embedded demo: the figures are made up.")
    total = ShowbackRowSerializer()
    rows = ShowbackRowSerializer(many=True)
    days = ShowbackRowSerializer(many=True)


class PoolPriceSerializer(serializers.Serializer):
    pool = RestrictedRelatedField(selector=tenant_selectors.pool_list)
    pool_name = serializers.CharField(source="pool.name", read_only=True)
    cluster_name = serializers.CharField(source="pool.cluster.name", read_only=True)
    resource = serializers.ChoiceField(choices=PoolPrice.Resource.choices)
    price = serializers.DecimalField(max_digits=14, decimal_places=4, min_value=Decimal(0))


class PoolPricesSerializer(serializers.Serializer):
    """Every price, in one currency. A PUT replaces them all (platform admins)."""

    currency = serializers.CharField(max_length=3, allow_blank=True)
    prices = PoolPriceSerializer(many=True)


class IdleQuotaQuerySerializer(serializers.Serializer):
    """`?window=7&threshold=25`: the window in days and the threshold in whole percent."""

    window = serializers.ChoiceField(
        choices=list(idle.WINDOW_DAYS),
        required=False,
        default=idle.DEFAULT_WINDOW_DAYS,
        help_text="Days of hourly figures to look at.",
    )
    threshold = serializers.IntegerField(
        required=False,
        default=idle.DEFAULT_THRESHOLD_PERCENT,
        min_value=0,
        max_value=idle.MAX_THRESHOLD_PERCENT,
        help_text="Listed when the peak stayed under this percent of the guarantee.",
    )


class IdlePoolSerializer(serializers.Serializer):
    pool = serializers.IntegerField(source="pool_id")
    pool_name = serializers.CharField()
    guaranteed = serializers.IntegerField(source="amount")
    held_by_subtenants = serializers.IntegerField(
        help_text="What the tenant's sub-tenants hold here: the guarantee is never lowered below it."
    )


class IdleGuaranteeSerializer(serializers.Serializer):
    tenant = serializers.IntegerField(source="tenant_id")
    tenant_path = serializers.CharField()
    cluster = serializers.IntegerField(source="cluster_id")
    cluster_name = serializers.CharField()
    guaranteed = serializers.IntegerField(source="amount", help_text="Over the pools below.")
    pools = IdlePoolSerializer(many=True)


class IdleProposalSerializer(serializers.Serializer):
    tenant = serializers.IntegerField(source="tenant_id")
    pool = serializers.IntegerField(source="pool_id")
    resource = serializers.CharField()
    current = serializers.IntegerField()
    amount = serializers.IntegerField()
    reason = serializers.CharField()


class IdleHintSerializer(serializers.Serializer):
    guarantee = IdleGuaranteeSerializer()
    peak_used = serializers.FloatField(source="used.peak", help_text="The highest hourly average.")
    mean_used = serializers.FloatField(source="used.mean", help_text="The mean of every reading.")
    peak_percent = serializers.FloatField(help_text="Peak used, in percent of the guarantee.")
    mean_percent = serializers.FloatField()
    hours_with_figures = serializers.IntegerField(source="used.hours")
    window_hours = serializers.IntegerField()
    suggested = serializers.IntegerField(
        allow_null=True,
        help_text="The peak rounded up, never below what sub-tenants hold; null when the guarantee is in "
        "several pools of the cluster (measured together) or nothing lower can be suggested.",
    )
    proposal = IdleProposalSerializer(
        allow_null=True, help_text="What a proposed change (a quota request lowering the guarantee) needs."
    )


class IdleQuotaSerializer(RangeSerializer):
    resource = serializers.CharField(source="resource.name")
    window = serializers.IntegerField(source="window_days")
    threshold = serializers.IntegerField(source="threshold_percent")
    start = serializers.DateTimeField(source="start", help_text="The first hourly bucket of the window.")
    to = serializers.DateTimeField(source="end")
    demo = serializers.SerializerMethodField(help_text="True on the embedded demo: the figures are made up.")
    idle = IdleHintSerializer(many=True)
    without_figures = IdleGuaranteeSerializer(many=True, help_text="No figures in the window: not idle.")

    def get_demo(self, report: IdleReport) -> bool:
        return settings.CANOPY_DEMO_USAGE
