"""Serializers translate JSON to service calls and rows to JSON; rules live in `tenants.services`."""

from __future__ import annotations

from decimal import Decimal
from functools import cached_property
from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tenants import labels, selectors, services
from tenants.amounts import FILES, RESOURCE_BY_NAME, Resource
from tenants.api.fields import BurstQuantityField, PercentField, QuantityField
from tenants.cluster_names import RULE
from tenants.models import (
    Allocation,
    AuditEvent,
    Cluster,
    Membership,
    NfsShare,
    QuotaPlan,
    ResourcePool,
    StorageDirectory,
    Tenant,
    Volume,
)
from tenants.quantities import decimal_text

User = get_user_model()
GPU, CPU, MEMORY = RESOURCE_BY_NAME["gpu"], RESOURCE_BY_NAME["cpu"], RESOURCE_BY_NAME["memory"]


def _user(serializer: serializers.BaseSerializer) -> Any:
    return serializer.context["request"].user


class FixedAfterCreateMixin:
    """Fields named in `fixed_after_create` are writable when creating and read-only afterwards
    (a tenant's pool, a cluster's kind: changing them means a new object)."""

    fixed_after_create: tuple[str, ...] = ()

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()  # type: ignore[misc]
        if self.instance is not None and not isinstance(self.instance, list):  # type: ignore[attr-defined]
            for name in self.fixed_after_create:
                fields[name].read_only = True
        return fields


@extend_schema_field(OpenApiTypes.INT)
class RestrictedRelatedField(serializers.PrimaryKeyRelatedField):
    """A foreign key whose choices are what the requesting user can see (others do not exist)."""

    def __init__(self, selector: Any = None, **kwargs: Any) -> None:
        self.selector = selector
        super().__init__(**kwargs)

    def get_queryset(self) -> Any:
        return self.selector(user=self.context["request"].user)


def _tenant_field(**kwargs: Any) -> RestrictedRelatedField:
    return RestrictedRelatedField(selector=selectors.tenant_list, **kwargs)


def _pool_field(**kwargs: Any) -> RestrictedRelatedField:
    return RestrictedRelatedField(selector=selectors.pool_list, **kwargs)


def _cluster_field(**kwargs: Any) -> RestrictedRelatedField:
    return RestrictedRelatedField(selector=selectors.cluster_list, **kwargs)


# ---------------------------------------------------------------------------------------------
# Amounts shared by allocations and plans


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


# ---------------------------------------------------------------------------------------------
# Clusters and pools


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
        help_text="What level-1 tenants hold (limited amounts only)."
    )
    free = serializers.SerializerMethodField(
        help_text="What is left for level-1 tenants: the capacity minus what they hold (the root queue's 100 % "
        "minus their capacities)."
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
        return {
            "gpu": pool.allocated_gpu or 0,
            "cpu": CPU.format(pool.allocated_cpu or 0),
            "memory": MEMORY.format(pool.allocated_memory or 0),
            "capacity": decimal_text(pool.allocated_capacity or Decimal(0)),
        }

    @extend_schema_field(PoolFreeSerializer)
    def get_free(self, pool: ResourcePool) -> dict[str, Any] | None:
        if not hasattr(pool, "allocated_gpu"):
            return None
        free = selectors.pool_free(pool)
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


# ---------------------------------------------------------------------------------------------
# Tenants


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
    parent = serializers.IntegerField(source="parent_id", read_only=True, allow_null=True)
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
            selectors.tenant_summaries([tenant])
        return [self._allocation_serializer.to_representation(summary) for summary in tenant.pool_summaries]

    def update(self, instance: Tenant, validated_data: dict[str, Any]) -> Tenant:
        if "leaf" in validated_data:
            validated_data["is_leaf"] = validated_data.pop("leaf")
        return services.tenant_update(acting_user=_user(self), tenant=instance, **validated_data)


class TenantCreateSerializer(serializers.Serializer):
    parent = _tenant_field(
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
    parent = _tenant_field(allow_null=True, help_text="The new parent; null to make it a level-1 tenant.")


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


# ---------------------------------------------------------------------------------------------
# Allocations


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


# ---------------------------------------------------------------------------------------------
# Storage


class StorageSerializer(FixedAfterCreateMixin, serializers.ModelSerializer):
    tenant = _tenant_field()
    tenant_path = serializers.CharField(source="tenant.name_path", read_only=True)
    cluster = _cluster_field()
    path = _storage_path_field()
    space_quota = QuantityField(resource=MEMORY, source="space_quota_bytes", required=False, default=None)
    file_quota = QuantityField(resource=FILES, required=False, default=None)

    class Meta:
        model = StorageDirectory
        # Not DRF's unique-together check: it answered "must make a unique set" before the service
        # asked whether the caller may write there, telling anyone which paths exist (issue 15).
        validators: list[Any] = []
        fields = [
            "id",
            "tenant",
            "tenant_path",
            "cluster",
            "path",
            "space_quota",
            "file_quota",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    fixed_after_create = ("tenant", "cluster", "path")

    def create(self, validated_data: dict[str, Any]) -> StorageDirectory:
        tenant = validated_data.pop("tenant")
        return services.storage_create(
            acting_user=_user(self), tenant=tenant, spec=services.StorageSpec(**validated_data)
        )

    def update(self, instance: StorageDirectory, validated_data: dict[str, Any]) -> StorageDirectory:
        return services.storage_update(
            acting_user=_user(self),
            directory=instance,
            space_quota_bytes=validated_data.get("space_quota_bytes", instance.space_quota_bytes),
            file_quota=validated_data.get("file_quota", instance.file_quota),
        )


# ---------------------------------------------------------------------------------------------
# Volumes


class VolumeAttachmentSerializer(serializers.Serializer):
    tenant = _tenant_field()
    tenant_path = serializers.CharField(source="tenant.name_path", read_only=True)
    claim_name = serializers.CharField(
        max_length=63,
        required=False,
        help_text="The PVC name in the tenant; default: the volume name (private) "
        "or <volume>-<tenant> (shared).",
    )


class VolumeSerializer(serializers.ModelSerializer):
    share = RestrictedRelatedField(
        selector=selectors.nfs_share_list,
        help_text="The NFS share the volume is a directory of; it must be granted to (a tenant above) "
        "every tenant the volume is attached to.",
    )
    share_name = serializers.CharField(source="share.name", read_only=True)
    sub_path = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="The directory below the share's base path, relative and in its plain form (no '..'), "
        "e.g. dev1; empty: the base path itself.",
    )
    cluster = serializers.PrimaryKeyRelatedField(read_only=True, help_text="The share's cluster.")
    server = serializers.CharField(read_only=True, help_text="The share's server.")
    export_path = serializers.CharField(read_only=True, help_text="The share's base path / sub-path.")
    capacity = QuantityField(resource=MEMORY, source="capacity_bytes", allow_unlimited=False)
    attachments = VolumeAttachmentSerializer(
        many=True, source="visible_attachments", help_text="The claims of the tenants you can see."
    )
    shared_with_others = serializers.SerializerMethodField(help_text="Claims of tenants you cannot see.")

    class Meta:
        model = Volume
        fields = [
            "id",
            "cluster",
            "name",
            "description",
            "share",
            "share_name",
            "sub_path",
            "server",
            "export_path",
            "capacity",
            "access_mode",
            "scope",
            "attachments",
            "shared_with_others",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def get_shared_with_others(self, volume: Volume) -> int:
        return volume.attachment_count - len(volume.visible_attachments)

    def _spec(self, data: dict[str, Any], instance: Volume | None) -> services.VolumeSpec:
        def current(name: str, default: Any = None) -> Any:
            return data.get(name, getattr(instance, name) if instance is not None else default)

        if "visible_attachments" in data:
            attachments = data["visible_attachments"]
        else:
            attachments = [
                {"tenant": a.tenant, "claim_name": a.claim_name} for a in instance.attachments.all()
            ]
        return services.VolumeSpec(
            share=current("share"),
            sub_path=current("sub_path", ""),
            name=current("name"),
            capacity_bytes=current("capacity_bytes"),
            scope=current("scope", Volume.Scope.PRIVATE),
            access_mode=current("access_mode", Volume.AccessMode.READ_WRITE_MANY),
            description=current("description", ""),
            tenants=[row["tenant"] for row in attachments],
            claim_names={row["tenant"].pk: row["claim_name"] for row in attachments if row.get("claim_name")},
        )

    def create(self, validated_data: dict[str, Any]) -> Volume:
        return services.volume_create(acting_user=_user(self), spec=self._spec(validated_data, None))

    def update(self, instance: Volume, validated_data: dict[str, Any]) -> Volume:
        return services.volume_update(
            acting_user=_user(self), volume=instance, spec=self._spec(validated_data, instance)
        )


# ---------------------------------------------------------------------------------------------
# NFS shares


class NfsShareGrantSerializer(serializers.Serializer):
    tenant = _tenant_field(help_text="The tenant whose subtree may use the share.")
    tenant_path = serializers.CharField(source="tenant.name_path", read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class NfsShareSerializer(FixedAfterCreateMixin, serializers.ModelSerializer):
    cluster = _cluster_field(help_text="A Kubernetes cluster.")
    server = serializers.CharField(
        trim_whitespace=False, help_text="The NFS server's host name or IP address, e.g. nas.example.com."
    )
    base_path = serializers.CharField(
        trim_whitespace=False,
        help_text="The exported directory, absolute and in its plain form, e.g. /export/team-data.",
    )
    grants = NfsShareGrantSerializer(
        many=True,
        read_only=True,
        source="visible_grants",
        help_text="The tenants (of those you can see) whose subtrees may use the share.",
    )

    class Meta:
        model = NfsShare
        validators: list[Any] = []  # the service checks names after who may (see StorageSerializer)
        fields = [
            "id",
            "cluster",
            "name",
            "server",
            "base_path",
            "description",
            "grants",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    fixed_after_create = ("cluster", "name")

    def create(self, validated_data: dict[str, Any]) -> NfsShare:
        return services.nfs_share_create(
            acting_user=_user(self), spec=services.NfsShareSpec(**validated_data)
        )

    def update(self, instance: NfsShare, validated_data: dict[str, Any]) -> NfsShare:
        return services.nfs_share_update(
            acting_user=_user(self),
            share=instance,
            server=validated_data.get("server"),
            base_path=validated_data.get("base_path"),
            description=validated_data.get("description"),
        )


# ---------------------------------------------------------------------------------------------
# Plans


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


# ---------------------------------------------------------------------------------------------
# Memberships and users


class MembershipSerializer(FixedAfterCreateMixin, serializers.ModelSerializer):
    tenant = _tenant_field()
    tenant_path = serializers.CharField(source="tenant.name_path", read_only=True)
    user = serializers.SlugRelatedField(
        slug_field="username",
        queryset=User.objects.filter(is_active=True),
        required=False,
        allow_null=True,
        help_text="The person; give this or group.",
    )
    group = serializers.SlugRelatedField(
        slug_field="name",
        read_only=True,
        help_text=(
            "The group (LDAP or OpenID Connect groups are mirrored at sign-in); give this or user. "
            f"Its name, as the user's, must be usable on the clusters: {RULE}."
        ),
    )

    class Meta:
        model = Membership
        fields = ["id", "tenant", "tenant_path", "user", "group", "role", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
        # membership_grant refuses a second role for the same user or group on a tenant, by name.
        validators: list[Any] = []

    fixed_after_create = ("tenant", "user", "group")

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        if self.instance is None:
            # On create a group is named; one not known yet is created (granted before first sign-in).
            fields["group"] = serializers.CharField(
                max_length=150, required=False, allow_null=True, help_text=fields["group"].help_text
            )
        return fields

    def create(self, validated_data: dict[str, Any]) -> Membership:
        # `role` is optional, as the model's default says; a PUT without it keeps the role it had.
        validated_data.setdefault("role", Membership._meta.get_field("role").default)
        return services.membership_grant(acting_user=_user(self), **validated_data)

    def update(self, instance: Membership, validated_data: dict[str, Any]) -> Membership:
        return services.membership_change_role(
            acting_user=_user(self), membership=instance, role=validated_data.get("role", instance.role)
        )


class UserMembershipSerializer(serializers.ModelSerializer):
    tenant_path = serializers.CharField(source="tenant.name_path", read_only=True)

    class Meta:
        model = Membership
        fields = ["tenant", "tenant_path", "role"]


class UserSerializer(serializers.ModelSerializer):
    password = serializers.CharField(write_only=True, required=False, style={"input_type": "password"})
    memberships = serializers.SerializerMethodField(help_text="Roles on tenants the requester can see.")

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "email",
            "first_name",
            "last_name",
            "is_staff",
            "is_active",
            "password",
            "memberships",
            "date_joined",
            "last_login",
        ]
        read_only_fields = ["date_joined", "last_login"]
        extra_kwargs = {
            "username": {"help_text": f"A new or changed name must be usable on the clusters: {RULE}."}
        }

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        if self.instance is None:
            fields["password"].required = True
        return fields

    @extend_schema_field(UserMembershipSerializer(many=True))
    def get_memberships(self, user: Any) -> list[dict[str, Any]]:
        rows = getattr(user, "visible_memberships", None)
        if rows is None:
            rows = selectors.membership_list(user=_user(self)).filter(user=user)
        return UserMembershipSerializer(rows, many=True).data

    def create(self, validated_data: dict[str, Any]) -> Any:
        validated_data.pop("is_active", None)
        return services.user_create(acting_user=_user(self), **validated_data)

    def update(self, instance: Any, validated_data: dict[str, Any]) -> Any:
        return services.user_update(acting_user=_user(self), user=instance, **validated_data)


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "actor",
            "actor_name",
            "action",
            "tenant",
            "tenant_path",
            "target_type",
            "target_id",
            "target_repr",
            "before",
            "after",
        ]
        read_only_fields = fields
