"""Storage (HDFS directories)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from tenants import services
from tenants.amounts import FILES, RESOURCE_BY_NAME
from tenants.api.fields import QuantityField
from tenants.api.serializers.amounts import _storage_path_field
from tenants.api.serializers.base import FixedAfterCreateMixin, _cluster_field, _tenant_field, _user
from tenants.models import (
    StorageDirectory,
)

GPU, CPU, MEMORY = RESOURCE_BY_NAME["gpu"], RESOURCE_BY_NAME["cpu"], RESOURCE_BY_NAME["memory"]


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
