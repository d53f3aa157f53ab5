"""Memberships (roles of users and groups on tenants)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework import serializers

from tenants import services
from tenants.api.serializers.base import FixedAfterCreateMixin, _tenant_field, _user
from tenants.cluster_names import RULE
from tenants.models import (
    Membership,
)

User = get_user_model()


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
    group: serializers.SlugRelatedField[Group] = serializers.SlugRelatedField(
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
