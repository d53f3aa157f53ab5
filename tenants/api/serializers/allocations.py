"""Allocations."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from tenants import services
from tenants.api.serializers.amounts import AmountsSerializer
from tenants.api.serializers.base import FixedAfterCreateMixin, _pool_field, _tenant_field, _user
from tenants.models import (
    Allocation,
)


class AllocationSerializer(FixedAfterCreateMixin, AmountsSerializer, serializers.ModelSerializer):
    tenant = _tenant_field()
    tenant_path = serializers.CharField(source="tenant.name_path", read_only=True)
    pool = _pool_field()
    pool_name = serializers.CharField(source="pool.name", read_only=True)
    cluster = serializers.CharField(source="pool.cluster.name", read_only=True)

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
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    fixed_after_create = ("tenant", "pool")

    def create(self, validated_data: dict[str, Any]) -> Allocation:
        tenant = validated_data.pop("tenant")
        return services.allocation_set(
            acting_user=_user(self), tenant=tenant, spec=services.AllocationSpec(**validated_data)
        )

    def update(self, instance: Allocation, validated_data: dict[str, Any]) -> Allocation:
        values = {name: getattr(instance, name) for name in services.ALLOCATION_FIELDS}
        values.update(validated_data)
        return services.allocation_set(
            acting_user=_user(self),
            tenant=instance.tenant,
            spec=services.AllocationSpec(pool=instance.pool, **values),
        )
