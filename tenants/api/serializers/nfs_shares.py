"""NFS shares and their grants."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from tenants import services
from tenants.api.serializers.base import FixedAfterCreateMixin, _cluster_field, _tenant_field, _user
from tenants.models import (
    NfsShare,
)


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
