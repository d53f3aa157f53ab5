"""The usage pages' forms: they only parse input."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms

from usage import showback


class UsageRangeForm(forms.Form):
    """The Monitoring tab's range: one of the fixed ones, or a custom From / To (in the console's
    time zone) of at most 400 days."""

    INPUT_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"]

    range = forms.ChoiceField(
        choices=[("1h", "1 h"), ("24h", "24 h"), ("7d", "7 d"), ("30d", "30 d"), ("custom", "Custom")]
    )
    start = forms.DateTimeField(label="From", required=False, input_formats=INPUT_FORMATS)
    end = forms.DateTimeField(label="To", required=False, input_formats=INPUT_FORMATS)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("range") != "custom":
            return data
        start, end = data.get("start"), data.get("end")
        if start is None and "start" not in self.errors:
            self.add_error("start", "Give the start of the range.")
        if end is None and "end" not in self.errors:
            self.add_error("end", "Give the end of the range.")
        if start is not None and end is not None:
            if start >= end:
                self.add_error("end", "The end must be after the start.")
            elif end - start > datetime.timedelta(days=400):
                self.add_error("end", "A range covers at most 400 days.")
        return data


class ShowbackForm(forms.Form):
    """The showback's month (YYYY-MM, default: this month) and tenant (default: the reader's own)."""

    month = forms.CharField(
        required=False,
        max_length=7,
        widget=forms.TextInput(attrs={"type": "month", "pattern": r"\d{4}-\d{2}"}),
        help_text="YYYY-MM, in UTC; the current month counts the hours that are over.",
    )
    tenant = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1, widget=forms.HiddenInput)

    def clean_month(self) -> datetime.date:
        text = self.cleaned_data.get("month") or ""
        if not text:
            today = datetime.datetime.now(datetime.UTC).date()
            return today.replace(day=1)
        try:
            return showback.month_parse(text)
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None


class PoolPricesForm(forms.Form):
    """Platform admins: a price per unit for every pool and resource a price applies to (empty: no
    price), in one currency. Built from the pools: `price_<pool id>_<resource>` fields."""

    currency = forms.CharField(max_length=3, required=False, help_text="ISO 4217, e.g. EUR.")

    def __init__(self, *args: Any, pools: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rows: list[tuple[Any, list[tuple[str, str]]]] = []
        for pool, resources in pools:
            names = []
            for resource in resources:
                name = f"price_{pool.pk}_{resource.key}"
                self.fields[name] = forms.DecimalField(
                    required=False,
                    min_value=0,
                    max_digits=14,
                    decimal_places=4,
                    label=f"{pool.cluster.name}/{pool.name}: per {resource.per}",
                )
                names.append((name, resource.key))
            self.rows.append((pool, names))
