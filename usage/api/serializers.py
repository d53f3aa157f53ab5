"""The usage API's serializers (issue 7): the query for a tenant's series, the series, workloads."""

from __future__ import annotations

import datetime
from typing import Any

from rest_framework import serializers

from usage import selectors
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
    # DRF's metaclass takes declared fields off the class (no clash with `Field.source`); the stubs
    # cannot know that.
    source = serializers.ChoiceField(choices=["raw", "hour", "day"])  # type: ignore[assignment]
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
