"""Allocations."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tenants import services
from tenants.api.serializers.amounts import AmountsSerializer
from tenants.api.serializers.base import FixedAfterCreateMixin, _pool_field, _tenant_field, _user
from tenants.models import (
    Allocation,
    AllocationGrant,
)


class AllocationGrantSerializer(serializers.ModelSerializer):
    """A time-bound change of an allocation: what it gives until when, what it goes back to, and
    what became of it (`status`: why it waits, was refused or superseded)."""

    tenant_path = serializers.CharField(source="tenant.name_path", read_only=True)
    pool = serializers.IntegerField(source="allocation.pool_id", read_only=True)
    state_label = serializers.CharField(source="get_state_display", read_only=True)
    summary = serializers.CharField(
        read_only=True, help_text='"6 GPUs until 2026-12-20 18:00, then back to 4 GPUs"'
    )
    granted = serializers.DictField(
        read_only=True, help_text="The amounts given until `ends_at` (stored units)."
    )
    back_to = serializers.DictField(
        read_only=True, help_text="The amounts it goes back to then (stored units)."
    )

    class Meta:
        model = AllocationGrant
        fields = [
            "id",
            "allocation",
            "tenant",
            "tenant_path",
            "pool",
            "ends_at",
            "state",
            "state_label",
            "summary",
            "status",
            "granted",
            "back_to",
            "granted_by_name",
            "finished_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class AllocationSerializer(FixedAfterCreateMixin, AmountsSerializer, serializers.ModelSerializer):
    tenant = _tenant_field()
    tenant_path = serializers.CharField(source="tenant.name_path", read_only=True)
    pool = _pool_field()
    pool_name = serializers.CharField(source="pool.name", read_only=True)
    cluster = serializers.CharField(source="pool.cluster.name", read_only=True)
    ends_at = serializers.DateTimeField(
        write_only=True,
        required=False,
        allow_null=True,
        help_text="Until: this change holds until then (in the future), then beat puts back the amounts "
        "before it, never below what running work holds without saying so (the grant waits).",
    )
    grant = serializers.SerializerMethodField(
        help_text="The allocation's time-bound grant: the open one (active or waiting), or the last "
        "one whose end was refused until the allocation changes again; null without one."
    )

    class Meta:
        model = Allocation
        fields = [
            "id",
            "tenant",
            "tenant_path",
            "pool",
            "pool_name",
            "cluster",
            "gpu",
            "cpu",
            "memory",
            "gpu_burst",
            "cpu_burst",
            "memory_burst",
            "capacity",
            "max_capacity",
            "ends_at",
            "grant",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    fixed_after_create = ("tenant", "pool")

    @extend_schema_field(AllocationGrantSerializer(allow_null=True))
    def get_grant(self, allocation: Allocation) -> dict[str, Any] | None:
        grant = AllocationGrant.shown_of(allocation, getattr(allocation, "recent_grants", []))
        return AllocationGrantSerializer(grant, context=self.context).data if grant else None

    def create(self, validated_data: dict[str, Any]) -> Allocation:
        tenant = validated_data.pop("tenant")
        ends_at = validated_data.pop("ends_at", None)
        return services.allocation_set(
            acting_user=_user(self),
            tenant=tenant,
            spec=services.AllocationSpec(**validated_data),
            ends_at=ends_at,
        )

    def update(self, instance: Allocation, validated_data: dict[str, Any]) -> Allocation:
        ends_at = validated_data.pop("ends_at", None)
        values = {name: getattr(instance, name) for name in services.ALLOCATION_FIELDS}
        values.update(validated_data)
        return services.allocation_set(
            acting_user=_user(self),
            tenant=instance.tenant,
            spec=services.AllocationSpec(pool=instance.pool, **values),
            ends_at=ends_at,
        )
