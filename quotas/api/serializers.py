"""Quota requests and the inbox in the API: amounts in and out as the allocations' (quantities such
as "2", "500m", "64Gi"; YARN capacities in percent), writes through `quotas.services`."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from quotas import services
from quotas.models import COMMENT_MAX, REASON_MAX, Notification, QuotaRequest
from quotas.texts import ASKED_NAMES, COLUMN_OF
from tenants.amounts import RESOURCE_BY_NAME
from tenants.api.fields import PercentField, QuantityField
from tenants.api.serializers.base import _pool_field, _tenant_field, _user

AMOUNT_NAMES = tuple(ASKED_NAMES.values())


def _amount_field(name: str, **kwargs: Any) -> serializers.Field:
    """An asked amount: a quantity or a percentage; null or omitted: not asked for."""
    source = {"source": COLUMN_OF[name]} if COLUMN_OF[name] != name else {}
    if name in RESOURCE_BY_NAME:
        return QuantityField(
            resource=RESOURCE_BY_NAME[name],
            allow_unlimited=False,
            allow_null=True,
            required=False,
            **source,
            **kwargs,
        )
    return PercentField(allow_null=True, required=False, **source, **kwargs)


def amounts_out(values: dict[str, Any]) -> dict[str, Any]:
    """Stored columns ({"gpu": 2, "memory_bytes": ...}) as the API says them ({"memory": "64Gi"})."""
    shown = {}
    for column, value in values.items():
        name = ASKED_NAMES[column]
        if name in RESOURCE_BY_NAME:
            shown[name] = RESOURCE_BY_NAME[name].format(value)
        else:
            shown[name] = None if value is None else str(value)
    return shown


AMOUNTS_SCHEMA = {
    "type": "object",
    "additionalProperties": {"oneOf": [{"type": "string"}, {"type": "integer"}], "nullable": True},
}


class QuotaRequestSerializer(serializers.ModelSerializer):
    tenant = _tenant_field(help_text="The tenant that needs more (you are a member or admin of it).")
    tenant_path = serializers.CharField(source="tenant.name_path", read_only=True)
    pool = _pool_field()
    pool_name = serializers.CharField(source="pool.name", read_only=True)
    cluster = serializers.CharField(source="pool.cluster.name", read_only=True)
    gpu = _amount_field("gpu", help_text="GPUs wanted in total (a count).")
    cpu = _amount_field("cpu", help_text="CPU wanted in total (a quantity: 8, 500m).")
    memory = _amount_field("memory", help_text="Memory wanted in total (a quantity: 64Gi).")
    capacity = _amount_field("capacity", help_text="YARN pools: the capacity wanted, in percent.")
    max_capacity = _amount_field(
        "max_capacity", help_text="YARN pools: the maximum capacity wanted, in percent."
    )
    held = serializers.SerializerMethodField(
        help_text="What the tenant had of each asked amount when it asked."
    )
    granted = serializers.SerializerMethodField(help_text="What the decision gave (empty unless approved).")
    reason = serializers.CharField(max_length=REASON_MAX, trim_whitespace=False)
    requester = serializers.CharField(source="requester_name", read_only=True)
    deciding_tenant_path = serializers.SerializerMethodField(
        help_text="The tenant whose admins decide; null: the platform admins."
    )
    decided_by = serializers.CharField(source="decided_by_name", read_only=True)
    may_decide = serializers.SerializerMethodField()

    class Meta:
        model = QuotaRequest
        fields = [
            "id",
            "tenant",
            "tenant_path",
            "pool",
            "pool_name",
            "cluster",
            *AMOUNT_NAMES,
            "held",
            "granted",
            "until",
            "reason",
            "state",
            "requester",
            "deciding_tenant",
            "deciding_tenant_path",
            "decided_by",
            "decided_at",
            "comment",
            "refusal_reason",
            "may_decide",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "state",
            "deciding_tenant",
            "decided_at",
            "comment",
            "refusal_reason",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(AMOUNTS_SCHEMA)
    def get_held(self, obj: QuotaRequest) -> dict[str, Any]:
        return amounts_out(obj.held)

    @extend_schema_field(AMOUNTS_SCHEMA)
    def get_granted(self, obj: QuotaRequest) -> dict[str, Any]:
        return amounts_out(obj.granted)

    @extend_schema_field({"type": "string", "nullable": True})
    def get_deciding_tenant_path(self, obj: QuotaRequest) -> str | None:
        return obj.deciding_tenant.name_path if obj.deciding_tenant else None

    def get_may_decide(self, obj: QuotaRequest) -> bool:
        return obj.is_open and services.may_decide(_user(self), obj)

    def create(self, validated_data: dict[str, Any]) -> QuotaRequest:
        return services.quota_request_create(
            acting_user=_user(self),
            tenant=validated_data["tenant"],
            pool=validated_data["pool"],
            asked={column: validated_data.get(column) for column in ASKED_NAMES},
            reason=validated_data["reason"],
            until=validated_data.get("until"),
        )


class DecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=services.Decision.CHOICES)
    comment = serializers.CharField(
        max_length=COMMENT_MAX,
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=False,
        help_text="Why; required to change or refuse.",
    )
    gpu = _amount_field("gpu", help_text="To change: the GPUs to grant in total.")
    cpu = _amount_field("cpu", help_text="To change: the CPU to grant in total.")
    memory = _amount_field("memory", help_text="To change: the memory to grant in total.")
    capacity = _amount_field("capacity", help_text="To change: the YARN capacity to grant.")
    max_capacity = _amount_field("max_capacity", help_text="To change: the YARN maximum capacity to grant.")

    def granted(self) -> dict[str, Any]:
        return {column: self.validated_data.get(column) for column in ASKED_NAMES}


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ["id", "subject", "body", "link", "quota_request", "created_at", "read_at"]
        read_only_fields = fields
