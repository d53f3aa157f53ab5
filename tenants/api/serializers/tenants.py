"""Tenants: the tenant with its figures per pool, create, move, plan, and what a deletion takes."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tenants import selectors, services
from tenants.amounts import RESOURCE_BY_NAME
from tenants.api.serializers.amounts import (
    AllocationInputSerializer,
    StorageInputSerializer,
    _allocation_specs,
    _storage_specs,
)
from tenants.api.serializers.base import RestrictedRelatedField, _tenant_field, _user
from tenants.models import (
    Tenant,
)
from tenants.quantities import decimal_text

GPU, CPU, MEMORY = RESOURCE_BY_NAME["gpu"], RESOURCE_BY_NAME["cpu"], RESOURCE_BY_NAME["memory"]


class FiguresSerializer(serializers.Serializer):
    gpu = serializers.IntegerField(allow_null=True)
    cpu = serializers.CharField(allow_null=True)
    memory = serializers.CharField(allow_null=True)
    capacity = serializers.DecimalField(max_digits=5, decimal_places=2, allow_null=True)


class UnlimitedCountsSerializer(serializers.Serializer):
    gpu = serializers.IntegerField()
    cpu = serializers.IntegerField()
    memory = serializers.IntegerField()


class TenantAllocationSerializer(serializers.Serializer):
    """One pool of a tenant: what it has, what its sub-tenants hold, what remains (null: unlimited)."""

    id = serializers.IntegerField()
    pool = serializers.IntegerField()
    pool_name = serializers.CharField()
    cluster = serializers.CharField()
    kind = serializers.CharField()
    gpu = serializers.IntegerField(allow_null=True)
    cpu = serializers.CharField(allow_null=True)
    memory = serializers.CharField(allow_null=True)
    gpu_burst = serializers.IntegerField(
        allow_null=True,
        help_text="The most GPUs the tenant may use by borrowing; null: no burst (gpu is the most).",
    )
    cpu_burst = serializers.CharField(
        allow_null=True,
        help_text="The most CPU the tenant may use by borrowing; null: no burst (cpu is the most).",
    )
    memory_burst = serializers.CharField(
        allow_null=True,
        help_text="The most memory the tenant may use by borrowing; null: no burst (memory is the most).",
    )
    capacity = serializers.DecimalField(max_digits=5, decimal_places=2, allow_null=True)
    max_capacity = serializers.DecimalField(max_digits=5, decimal_places=2, allow_null=True)
    children = FiguresSerializer(
        help_text="What sub-tenants hold (limited amounts; capacity in % of this queue)."
    )
    children_unlimited = UnlimitedCountsSerializer(
        help_text="How many sub-tenants are unlimited, per resource."
    )
    remaining = FiguresSerializer(
        help_text="What is left for new sub-tenants: allocated minus what sub-tenants hold (limited amounts); "
        "null where unlimited. The console's hints and refusals call it left."
    )

    def to_representation(self, summary: selectors.PoolSummary) -> dict[str, Any]:
        allocation = summary.allocation
        pool = allocation.pool
        figures = summary.resources

        def figure(kind: str) -> dict[str, Any]:
            out: dict[str, Any] = {"gpu": None, "cpu": None, "memory": None, "capacity": None}
            if "capacity" in figures:
                value = getattr(figures["capacity"], kind)
                out["capacity"] = decimal_text(value)
                return out
            for name, resource in RESOURCE_BY_NAME.items():
                out[name] = resource.format(getattr(figures[name], kind))
            return out

        return {
            "id": allocation.pk,
            "pool": pool.pk,
            "pool_name": pool.name,
            "cluster": pool.cluster.name,
            "kind": pool.cluster.kind,
            "gpu": allocation.gpu,
            "cpu": CPU.format(allocation.cpu_millicores),
            "memory": MEMORY.format(allocation.memory_bytes),
            **{r.burst_name: r.format(getattr(allocation, r.burst_field)) for r in RESOURCE_BY_NAME.values()},
            "capacity": decimal_text(allocation.capacity_percent),
            "max_capacity": decimal_text(allocation.max_capacity_percent),
            "children": figure("children"),
            "children_unlimited": {
                name: figures[name].children_unlimited if name in figures else 0 for name in RESOURCE_BY_NAME
            },
            "remaining": figure("remaining"),
        }


class TenantSerializer(serializers.ModelSerializer):
    path = serializers.CharField(
        source="name_path", read_only=True, help_text="Names from level 1 down, e.g. department1/dev1."
    )
    # DRF's metaclass takes declared fields off the class, so none hides `Field.parent`; the stubs
    # cannot know that (here and in the two serializers below).
    parent = serializers.IntegerField(source="parent_id", read_only=True, allow_null=True)  # type: ignore[assignment]
    level = serializers.IntegerField(source="depth", read_only=True)
    is_leaf = serializers.BooleanField(
        source="leaf", required=False, help_text="A leaf tenant never has sub-tenants."
    )
    allocations = serializers.SerializerMethodField()

    class Meta:
        model = Tenant
        fields = [
            "id",
            "name",
            "display_name",
            "description",
            "path",
            "parent",
            "level",
            "is_leaf",
            "state",
            "plan",
            "allocations",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["name", "state", "plan", "created_at", "updated_at"]

    @cached_property
    def _allocation_serializer(self) -> TenantAllocationSerializer:
        # One for the whole list: building a serializer per tenant costs more than the figures.
        return TenantAllocationSerializer()

    @extend_schema_field(TenantAllocationSerializer(many=True))
    def get_allocations(self, tenant: Tenant) -> list[dict[str, Any]]:
        if not hasattr(tenant, "pool_summaries"):
            selectors.tenant_summaries([tenant], user=self.context["request"].user)
        return [self._allocation_serializer.to_representation(summary) for summary in tenant.pool_summaries]

    def update(self, instance: Tenant, validated_data: dict[str, Any]) -> Tenant:
        if "leaf" in validated_data:
            validated_data["is_leaf"] = validated_data.pop("leaf")
        return services.tenant_update(acting_user=_user(self), tenant=instance, **validated_data)


class TenantCreateSerializer(serializers.Serializer):
    parent = _tenant_field(  # type: ignore[assignment]
        allow_null=True, required=False, default=None, help_text="Omit or null for a level-1 tenant."
    )
    name = serializers.CharField(max_length=63)
    display_name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    description = serializers.CharField(required=False, default="", allow_blank=True)
    is_leaf = serializers.BooleanField(required=False, default=False)
    plan = RestrictedRelatedField(selector=selectors.plan_list, required=False, allow_null=True, default=None)
    allocations = AllocationInputSerializer(many=True, required=False, default=list)
    storage = StorageInputSerializer(many=True, required=False, default=list)

    def create(self, validated_data: dict[str, Any]) -> Tenant:
        return services.tenant_create(
            acting_user=_user(self),
            parent=validated_data["parent"],
            name=validated_data["name"],
            display_name=validated_data["display_name"],
            description=validated_data["description"],
            is_leaf=validated_data["is_leaf"],
            plan=validated_data["plan"],
            allocations=_allocation_specs(validated_data["allocations"]),
            storage=_storage_specs(validated_data["storage"]),
        )


class TenantMoveSerializer(serializers.Serializer):
    parent = _tenant_field(allow_null=True, help_text="The new parent; null to make it a level-1 tenant.")  # type: ignore[assignment]


class TenantPlanSerializer(serializers.Serializer):
    plan = RestrictedRelatedField(selector=selectors.plan_list)


class NamespaceImpactSerializer(serializers.Serializer):
    cluster = serializers.CharField()
    namespace = serializers.CharField()
    active_pods = serializers.IntegerField(
        allow_null=True, help_text="Pods not finished; null if not checked."
    )
    note = serializers.CharField()


class DeletionImpactSerializer(serializers.Serializer):
    descendants = serializers.ListField(child=serializers.CharField())
    members = serializers.IntegerField()
    volumes = serializers.ListField(child=serializers.CharField())
    namespaces = NamespaceImpactSerializer(
        many=True, help_text="Namespaces deleted with the tenant (issue 5)."
    )
    summary = serializers.CharField(source="describe")
