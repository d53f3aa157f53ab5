"""Volumes and the tenants that mount them."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from tenants import selectors, services
from tenants.amounts import RESOURCE_BY_NAME
from tenants.api.fields import QuantityField
from tenants.api.serializers.base import RestrictedRelatedField, _tenant_field, _user
from tenants.models import (
    Cluster,
    Volume,
)

GPU, CPU, MEMORY = RESOURCE_BY_NAME["gpu"], RESOURCE_BY_NAME["cpu"], RESOURCE_BY_NAME["memory"]


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
    cluster: serializers.PrimaryKeyRelatedField[Cluster] = serializers.PrimaryKeyRelatedField(
        read_only=True, help_text="The share's cluster."
    )
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

        attachments: list[dict[str, Any]]
        if instance is None or "visible_attachments" in data:  # a create always has them (required)
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
