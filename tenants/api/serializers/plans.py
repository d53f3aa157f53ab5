"""Quota plans."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from tenants import services
from tenants.amounts import FILES, RESOURCE_BY_NAME
from tenants.api.fields import QuantityField
from tenants.api.serializers.amounts import AmountsSerializer, _allocation_specs, _storage_specs
from tenants.api.serializers.base import FixedAfterCreateMixin, _cluster_field, _pool_field, _user
from tenants.models import (
    QuotaPlan,
)

GPU, CPU, MEMORY = RESOURCE_BY_NAME["gpu"], RESOURCE_BY_NAME["cpu"], RESOURCE_BY_NAME["memory"]


class PlanAllocationSerializer(AmountsSerializer):
    pool = _pool_field()
    pool_name = serializers.CharField(source="pool.name", read_only=True)


class PlanStorageSerializer(serializers.Serializer):
    cluster = _cluster_field()
    space_quota = QuantityField(resource=MEMORY, source="space_quota_bytes", required=False, default=None)
    file_quota = QuantityField(resource=FILES, required=False, default=None)


class PlanSerializer(FixedAfterCreateMixin, serializers.ModelSerializer):
    allocations = PlanAllocationSerializer(many=True, required=False)
    storage = PlanStorageSerializer(many=True, required=False)

    class Meta:
        model = QuotaPlan
        fields = ["id", "name", "description", "allocations", "storage", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    fixed_after_create = ("name",)

    def create(self, validated_data: dict[str, Any]) -> QuotaPlan:
        return services.plan_create(
            acting_user=_user(self),
            name=validated_data["name"],
            description=validated_data.get("description", ""),
            allocations=_allocation_specs(validated_data.get("allocations", [])),
            storage=_storage_specs(validated_data.get("storage", [])),
        )

    def update(self, instance: QuotaPlan, validated_data: dict[str, Any]) -> QuotaPlan:
        allocations = validated_data.get("allocations")
        storage = validated_data.get("storage")
        return services.plan_update(
            acting_user=_user(self),
            plan=instance,
            description=validated_data.get("description"),
            allocations=_allocation_specs(allocations) if allocations is not None else None,
            storage=_storage_specs(storage) if storage is not None else None,
        )
