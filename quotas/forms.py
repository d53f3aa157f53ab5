"""The console's forms for quota requests: they parse input only (quantities such as "60Gi", a
percentage, a time); every rule is the services'."""

from __future__ import annotations

import datetime
from typing import Any, cast

from django import forms
from django.utils import timezone

from quotas.models import COMMENT_MAX, REASON_MAX
from quotas.texts import ASKED_NAMES, COLUMN_OF, amount_label
from tenants import quantities
from tenants.amounts import RESOURCE_BY_NAME
from tenants.forms import PercentFormField


def parse_amount(name: str, text: str) -> Any:
    """An amount as the allocation forms read it: a Kubernetes quantity, or a percentage."""
    if name in RESOURCE_BY_NAME:
        return RESOURCE_BY_NAME[name].parse(text)
    return PercentFormField(min_value=0, max_value=100, max_digits=5, decimal_places=2).clean(text)


class QuotaRequestForm(forms.Form):
    pool = forms.TypedChoiceField(coerce=int, choices=())
    resource = forms.ChoiceField(
        choices=[(name, amount_label(column)) for column, name in ASKED_NAMES.items()]
    )
    amount = forms.CharField(
        max_length=32,
        strip=False,
        help_text="The total you want, e.g. 2 (GPUs), 8 or 500m (CPU), 64Gi (memory), 40 (%).",
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "e.g. 2"}),
    )
    until = forms.DateTimeField(
        required=False,
        help_text="Optional: when the change should end.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    reason = forms.CharField(
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What it is for: the admins who decide read it.",
    )

    def __init__(self, *args: Any, pools: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["pool"]).choices = pools

    def clean_until(self) -> datetime.datetime | None:
        until = self.cleaned_data.get("until")
        if until is not None and timezone.is_naive(until):
            until = timezone.make_aware(until)
        return until

    def asked(self) -> dict[str, Any]:
        """{column: total}, or {} with the amount's error on the form."""
        name, text = self.cleaned_data.get("resource"), self.cleaned_data.get("amount")
        if not name or text is None:
            return {}
        try:
            return {COLUMN_OF[name]: parse_amount(name, text)}
        except (quantities.QuantityError, forms.ValidationError) as exc:
            self.add_error("amount", exc.messages if isinstance(exc, forms.ValidationError) else str(exc))
            return {}


class DecisionForm(forms.Form):
    """Approve, change or refuse; a change gives the amounts granted, by their names (gpu, cpu, ...)."""

    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("change", "Change"), ("refuse", "Refuse")])
    comment = forms.CharField(
        required=False, max_length=COMMENT_MAX, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args: Any, asked_names: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked_names = asked_names
        for name in asked_names:
            self.fields[name] = forms.CharField(required=False, max_length=32, strip=False)

    def granted(self) -> dict[str, Any]:
        values = {}
        for name in self.asked_names:
            text = self.cleaned_data.get(name)
            if not text:
                continue
            try:
                values[COLUMN_OF[name]] = parse_amount(name, text)
            except (quantities.QuantityError, forms.ValidationError) as exc:
                self.add_error(name, exc.messages if isinstance(exc, forms.ValidationError) else str(exc))
        return values
