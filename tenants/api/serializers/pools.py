"""Clusters and pools."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tenants import labels, pool_figures, services
from tenants.amounts import RESOURCE_BY_NAME
from tenants.api.fields import QuantityField
from tenants.api.serializers.base import FixedAfterCreateMixin, _cluster_field, _user
from tenants.models import (
    Cluster,
    ResourcePool,
)
from tenants.quantities import decimal_text

GPU, CPU, MEMORY = RESOURCE_BY_NAME["gpu"], RESOURCE_BY_NAME["cpu"], RESOURCE_BY_NAME["memory"]


class ClusterSerializer(FixedAfterCreateMixin, serializers.ModelSerializer):
    class Meta:
        model = Cluster
        fields = ["id", "name", "kind", "description", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    fixed_after_create = ("name", "kind")

    def create(self, validated_data: dict[str, Any]) -> Cluster:
        return services.cluster_create(acting_user=_user(self), **validated_data)

    def update(self, instance: Cluster, validated_data: dict[str, Any]) -> Cluster:
        return services.cluster_update(
            acting_user=_user(self),
            cluster=instance,
            description=validated_data.get("description", instance.description),
        )


class PoolFreeSerializer(serializers.Serializer):
    gpu = serializers.IntegerField()
    cpu = serializers.CharField()
    memory = serializers.CharField()
    capacity = serializers.DecimalField(max_digits=5, decimal_places=2)


class PoolSerializer(FixedAfterCreateMixin, serializers.ModelSerializer):
    cluster = _cluster_field()
    cluster_name = serializers.CharField(source="cluster.name", read_only=True)
    kind = serializers.CharField(source="cluster.kind", read_only=True)
    gpu_capacity = QuantityField(resource=GPU, allow_unlimited=False, required=False)
    cpu_capacity = QuantityField(
        resource=CPU, source="cpu_capacity_millicores", allow_unlimited=False, required=False
    )
    memory_capacity = QuantityField(
        resource=MEMORY, source="memory_capacity_bytes", allow_unlimited=False, required=False
    )
    allocated = serializers.SerializerMethodField(
        help_text="What level-1 tenants hold, as the Resource pools page and the usage overview say it. "
        "Kubernetes pools: their limited amounts (unlimited ones reserve nothing). YARN pools: their "
        "guaranteed capacity in % of the root queue (`capacity`), and what it means at the pool's capacity "
        "in `cpu` and `memory` (rounded down; 0 where the pool's capacity is not set)."
    )
    free = serializers.SerializerMethodField(
        help_text="What is left for level-1 tenants: the capacity minus what they hold (the root queue's 100 % "
        "minus their capacities; in a YARN pool's `cpu` and `memory`, what that is at the pool's capacity)."
    )

    class Meta:
        model = ResourcePool
        fields = [
            "id",
            "cluster",
            "cluster_name",
            "kind",
            "name",
            "node_selector",
            "description",
            "gpu_capacity",
            "cpu_capacity",
            "memory_capacity",
            "allocated",
            "free",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {
            "node_selector": {
                "help_text": f"{labels.SELECTOR_RULE}. {labels.YARN_RULE}. Empty: the default pool (all nodes)."
            }
        }

    fixed_after_create = ("cluster", "name")

    @extend_schema_field(PoolFreeSerializer)
    def get_allocated(self, pool: ResourcePool) -> dict[str, Any] | None:
        if not hasattr(pool, "allocated_gpu"):
            return None
        holding = pool_figures.pool_holding(pool)
        return {
            "gpu": holding.held["gpu"],
            "cpu": CPU.format(holding.held["cpu"]),
            "memory": MEMORY.format(holding.held["memory"]),
            "capacity": decimal_text(holding.percent or Decimal(0)),
        }

    @extend_schema_field(PoolFreeSerializer)
    def get_free(self, pool: ResourcePool) -> dict[str, Any] | None:
        if not hasattr(pool, "allocated_gpu"):
            return None
        free = pool_figures.pool_holding(pool).left
        return {
            "gpu": free["gpu"],
            "cpu": CPU.format(free["cpu"]),
            "memory": MEMORY.format(free["memory"]),
            "capacity": decimal_text(free["capacity"]),
        }

    def create(self, validated_data: dict[str, Any]) -> ResourcePool:
        return services.pool_create(acting_user=_user(self), **validated_data)

    def update(self, instance: ResourcePool, validated_data: dict[str, Any]) -> ResourcePool:
        return services.pool_update(acting_user=_user(self), pool=instance, **validated_data)
