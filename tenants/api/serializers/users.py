"""Users and the roles they hold."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tenants import selectors, services
from tenants.api.serializers.base import _user
from tenants.cluster_names import RULE
from tenants.models import (
    Membership,
)

User = get_user_model()


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
        # many=True makes a ListSerializer, whose data is a list; the stubs type it as one row's dict.
        return UserMembershipSerializer(rows, many=True).data  # type: ignore[return-value]

    def create(self, validated_data: dict[str, Any]) -> Any:
        validated_data.pop("is_active", None)
        return services.user_create(acting_user=_user(self), **validated_data)

    def update(self, instance: Any, validated_data: dict[str, Any]) -> Any:
        return services.user_update(acting_user=_user(self), user=instance, **validated_data)
