"""Audit events, as the requesting person reads them (tenants.audit.AuditReader)."""

from __future__ import annotations

from typing import Any, cast

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tenants.models import (
    AuditEvent,
)


class ChangeSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="The recorded field, e.g. memory_bytes.")
    label = serializers.CharField(help_text="How people read it, e.g. Memory.")  # type: ignore[assignment]
    before = serializers.CharField(allow_null=True, help_text='In units, e.g. "8 GiB"; null for a new value.')
    after = serializers.CharField(allow_null=True, help_text="In units; null for a value removed.")


class AuditEventSerializer(serializers.ModelSerializer):
    """`action` is the machine code (filter on it), `label` how people read it. For anyone but a
    platform admin `tenant_path` is the tenant's path now, and where the details are not theirs to
    read (`details_withheld`), `target_repr` is empty and `before`, `after` and `changes` are null."""

    label = serializers.CharField(read_only=True, help_text='e.g. "Membership granted"')  # type: ignore[assignment]
    changes = serializers.SerializerMethodField()
    details_withheld = serializers.SerializerMethodField()

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "actor",
            "actor_name",
            "action",
            "label",
            "tenant",
            "tenant_path",
            "target_type",
            "target_id",
            "target_repr",
            "before",
            "after",
            "changes",
            "details_withheld",
        ]
        read_only_fields = fields

    def _entry(self, event: AuditEvent) -> Any:
        entries = cast(dict[str, Any], self.context).setdefault("audit_entries", {})
        if event.pk not in entries:
            entries[event.pk] = self.context["audit_reader"].entry(event)
        return entries[event.pk]

    @extend_schema_field(ChangeSerializer(many=True, allow_null=True))
    def get_changes(self, event: AuditEvent) -> list[dict[str, Any]] | None:
        entry = self._entry(event)
        if entry.withheld:
            return None
        return [vars(change) for change in entry.changes]

    @extend_schema_field(serializers.BooleanField())
    def get_details_withheld(self, event: AuditEvent) -> bool:
        return self._entry(event).withheld

    def to_representation(self, event: AuditEvent) -> dict[str, Any]:
        data = super().to_representation(event)
        entry = self._entry(event)
        data.update(
            tenant_path=entry.tenant_path, target_repr=entry.target, before=entry.before, after=entry.after
        )
        return data
