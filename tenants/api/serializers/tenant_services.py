"""Services a tenant uses (Hive databases)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from tenants import services
from tenants.api.serializers.base import _cluster_field, _tenant_field, _user
from tenants.models import TenantService


class TenantServiceSerializer(serializers.ModelSerializer):
    tenant = _tenant_field()
    tenant_path = serializers.CharField(source="tenant.name_path", read_only=True)
    cluster = _cluster_field()
    kind = serializers.ChoiceField(
        choices=TenantService.Kind.choices, default=TenantService.Kind.HIVE_DATABASE
    )
    # The name's rule is the service's (per kind); the length here only keeps a huge body out.
    name = serializers.CharField(max_length=200, trim_whitespace=False)
    path = serializers.SerializerMethodField(
        help_text="Where the service lives on HDFS (its warehouse directory)."
    )

    class Meta:
        model = TenantService
        # Not DRF's unique-together check: the service asks whether the caller may write first.
        validators: list[Any] = []
        fields = ["id", "tenant", "tenant_path", "cluster", "kind", "name", "path", "created_at"]
        read_only_fields = ["created_at"]

    def get_path(self, service: TenantService) -> str:
        return services.service_path(service.kind, service.name)

    def create(self, validated_data: dict[str, Any]) -> TenantService:
        return services.tenant_service_create(acting_user=_user(self), **validated_data)
