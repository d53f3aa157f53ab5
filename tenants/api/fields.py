"""Serializer fields for Kubernetes quantities (accept "8", "500m", "60Gi" or numbers; null or
"unlimited" means unlimited)."""

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tenants import quantities
from tenants.amounts import BURST_NOT_UNLIMITED, Resource


@extend_schema_field(
    {
        "oneOf": [{"type": "string"}, {"type": "number"}],
        "nullable": True,
        "description": 'A Kubernetes quantity such as 8, 500m, 60Gi, or a number; null or "unlimited" for unlimited.',
    }
)
class QuantityField(serializers.Field):
    default_error_messages = {"invalid": "{message}"}

    def __init__(self, *, resource: Resource, allow_unlimited: bool = True, **kwargs: Any) -> None:
        self.resource = resource
        self.allow_unlimited = allow_unlimited
        kwargs.setdefault("allow_null", allow_unlimited)
        super().__init__(**kwargs)

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if self.allow_unlimited and isinstance(data, str) and quantities.is_unlimited(data):
            return True, None
        return super().validate_empty_values(data)

    def to_internal_value(self, data: Any) -> int:
        try:
            return self.resource.parse(data)
        except quantities.QuantityError as exc:
            self.fail("invalid", message=str(exc))

    def to_representation(self, value: int | None) -> Any:
        return self.resource.format(value)


class BurstQuantityField(QuantityField):
    """A burst: a quantity, or null for no burst (the guaranteed amount is also the most). Not
    "unlimited": a burst is a maximum above a guaranteed amount, and unlimited has none."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_unlimited=False, allow_null=True, **kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, str) and quantities.is_unlimited(data):
            self.fail("invalid", message=BURST_NOT_UNLIMITED)
        return super().to_internal_value(data)


class PercentField(serializers.DecimalField):
    """0 to 100 with two decimals; shown as "40" or "12.5", never "40.00" or "4E+1". ASCII digits
    only, like quantities (DRF's DecimalField takes "٤٠" as 40)."""

    default_error_messages = {"non_ascii": "{message}"}

    def to_internal_value(self, data: Any) -> Decimal:
        if isinstance(data, str):
            refusal = quantities.non_ascii_refusal(data, "a percentage", "40, 12.5")
            if refusal:
                self.fail("non_ascii", message=refusal)
        return super().to_internal_value(data)

    def to_representation(self, value: Any) -> Any:
        return quantities.decimal_text(Decimal(value)) if value is not None else None

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", 5)
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", 100)
        super().__init__(**kwargs)
