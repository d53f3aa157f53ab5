"""The usage API's serializers (issue 7): the query for a tenant's series, the series, workloads."""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from rest_framework import serializers

from usage import idle, selectors
from usage.api.fields import UsagePointsField
from usage.models import USAGE_METRICS, Workload

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


class UsageSerializer(serializers.Serializer):
    tenant = serializers.IntegerField()
    tenant_path = serializers.CharField()
    start = serializers.DateTimeField()
    to = serializers.DateTimeField()
    step = serializers.IntegerField(help_text="Seconds.")
    source = serializers.ChoiceField(choices=["raw", "hour", "day"])
    demo = serializers.BooleanField(help_text="True on the embedded demo: the figures are made up.")
    series = UsageSeriesSerializer(many=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = fields.pop("start")
        return fields


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


class IdleQuotaSerializer(serializers.Serializer):
    resource = serializers.CharField(source="resource.name")
    window = serializers.IntegerField(source="window_days")
    threshold = serializers.IntegerField(source="threshold_percent")
    start = serializers.DateTimeField(source="start", help_text="The first hourly bucket of the window.")
    to = serializers.DateTimeField(source="end")
    demo = serializers.SerializerMethodField(help_text="True on the embedded demo: the figures are made up.")
    idle = IdleHintSerializer(many=True)
    without_figures = IdleGuaranteeSerializer(many=True, help_text="No figures in the window: not idle.")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = fields.pop("start")
        return fields

    def get_demo(self, report: idle.IdleReport) -> bool:
        return settings.CANOPY_DEMO_USAGE
