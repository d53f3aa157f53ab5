"""Audit events."""

from __future__ import annotations

from rest_framework import serializers

from tenants.models import (
    AuditEvent,
)


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
