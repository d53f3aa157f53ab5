"""Amounts shared by allocations and plans (quantities in and out), and storage rows of a request."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from tenants import services
from tenants.amounts import FILES, RESOURCE_BY_NAME, Resource
from tenants.api.fields import BurstQuantityField, PercentField, QuantityField
from tenants.api.serializers.base import _cluster_field, _pool_field

GPU, CPU, MEMORY = RESOURCE_BY_NAME["gpu"], RESOURCE_BY_NAME["cpu"], RESOURCE_BY_NAME["memory"]


def _burst_field(resource: Resource) -> BurstQuantityField:
    return BurstQuantityField(
        resource=resource,
        # DRF refuses a source that repeats the field's name (gpu_burst).
        **({"source": resource.burst_field} if resource.burst_field != resource.burst_name else {}),
        required=False,
        default=None,
        help_text=f"Kubernetes pools: the most {resource.label} the tenant may use, borrowing what others "
        f"leave idle (a quantity). Never below {resource.name}, which it needs; never above the parent's "
        f"maximum (its {resource.burst_name}, or its {resource.name} without one) nor, at level 1, the "
        f"pool's capacity. Null or omitted: no burst, {resource.name} is also the most.",
    )


class AmountsSerializer(serializers.Serializer):
    """GPU, CPU and memory guaranteed (Kubernetes pools; null or omitted = unlimited), each with an
    optional burst, or capacity percents (YARN)."""

    gpu = QuantityField(resource=GPU, required=False, default=None)
    cpu = QuantityField(resource=CPU, source="cpu_millicores", required=False, default=None)
    memory = QuantityField(resource=MEMORY, source="memory_bytes", required=False, default=None)
    gpu_burst = _burst_field(GPU)
    cpu_burst = _burst_field(CPU)
    memory_burst = _burst_field(MEMORY)
    capacity = PercentField(source="capacity_percent", required=False, allow_null=True, default=None)
    max_capacity = PercentField(source="max_capacity_percent", required=False, allow_null=True, default=None)


class AllocationInputSerializer(AmountsSerializer):
    pool = _pool_field()

    def to_spec(self, data: dict[str, Any]) -> services.AllocationSpec:
        return services.AllocationSpec(**data)


def _storage_path_field() -> serializers.CharField:
    # Not trimmed: a path with a trailing newline is refused by the service, not silently repaired.
    return serializers.CharField(
        required=False,
        allow_null=True,
        default=None,
        trim_whitespace=False,
        help_text="An absolute HDFS path in its plain form, at or below the tenant's root "
        "CANOPY_HDFS_ROOT/<tenant path> (outside its sub-tenants' roots and other tenants' "
        "directories). Default: the root itself.",
    )


class StorageInputSerializer(serializers.Serializer):
    cluster = _cluster_field()
    path = _storage_path_field()
    space_quota = QuantityField(resource=MEMORY, source="space_quota_bytes", required=False, default=None)
    file_quota = QuantityField(resource=FILES, required=False, default=None)


def _allocation_specs(rows: list[dict[str, Any]]) -> list[services.AllocationSpec]:
    return [services.AllocationSpec(**row) for row in rows]


def _storage_specs(rows: list[dict[str, Any]]) -> list[services.StorageSpec]:
    return [services.StorageSpec(**row) for row in rows]
