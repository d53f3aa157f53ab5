"""What every serializer here shares: the acting user, fields fixed after create, related ids
read through `restrict` (an id naming nothing visible is refused like one that does not exist)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tenants import selectors


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
