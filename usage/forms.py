"""The usage pages' forms: they only parse input."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms

from usage import idle


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
        data = super().clean()
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


class IdleQuotaForm(forms.Form):
    """The idle-quota page's controls: the window and the threshold (whole percent of the guarantee)."""

    window = forms.TypedChoiceField(
        label="Window",
        choices=[(str(days), f"{days} day{'' if days == 1 else 's'}") for days in idle.WINDOW_DAYS],
        coerce=int,
    )
    threshold = forms.IntegerField(
        label="Threshold (% of the guarantee)",
        min_value=0,
        max_value=idle.MAX_THRESHOLD_PERCENT,
        help_text="Listed when the most a tenant used stayed under this share of what it is guaranteed.",
    )

    @classmethod
    def from_query(cls, query: dict[str, Any]) -> IdleQuotaForm:
        """Bound to the query string, the defaults where it says nothing."""
        defaults = {"window": str(idle.DEFAULT_WINDOW_DAYS), "threshold": str(idle.DEFAULT_THRESHOLD_PERCENT)}
        return cls({**defaults, **query})
