"""The audit page's filters (django-filter, as the API's list): tenant, user, action and dates, read
from a plain GET so a filtered page is a URL to bookmark or share. Input that is not a tenant the
person can see, an action, or a date is a field error on the page, never a 500."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet

from tenants import selectors
from tenants.models import AuditAction, AuditEvent


class AuditFilterForm(forms.Form):
    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", f"The end ({until:%Y-%m-%d}) comes before the start ({since:%Y-%m-%d}).")
        return data


class CheckboxFilter(django_filters.Filter):
    """A box that changes how another filter reads (filters nothing itself)."""

    field_class = forms.BooleanField

    def filter(self, qs: QuerySet, value: Any) -> QuerySet:
        return qs


def _visible_tenants(request: Any) -> QuerySet:
    return selectors.tenant_list(user=request.user if request is not None else None)


class AuditPageFilter(django_filters.FilterSet):
    tenant = django_filters.ModelChoiceFilter(
        queryset=_visible_tenants,
        to_field_name="name_path",
        method="filter_tenant",
        label="Tenant",
        widget=forms.TextInput(attrs={"list": "audit-tenants", "placeholder": "Any tenant, or a path"}),
        error_messages={"invalid_choice": "No tenant %(value)s among those you can see."},
    )
    subtree = CheckboxFilter(label="and its sub-tenants")
    user = django_filters.CharFilter(
        field_name="actor_name",
        label="User",
        widget=forms.TextInput(attrs={"list": "audit-users", "placeholder": "Anyone"}),
    )
    action = django_filters.ChoiceFilter(
        choices=AuditAction.choices, empty_label="Any action", label="Action"
    )
    since = django_filters.DateFilter(
        field_name="created_at",
        lookup_expr="date__gte",
        label="From",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    until = django_filters.DateFilter(
        field_name="created_at",
        lookup_expr="date__lte",
        label="To",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    class Meta:
        model = AuditEvent
        fields: list[str] = []
        form = AuditFilterForm

    def filter_tenant(self, queryset: QuerySet, name: str, tenant: Any) -> QuerySet:
        if self.form.cleaned_data.get("subtree"):
            return queryset.filter(tenant__path__startswith=tenant.path)
        return queryset.filter(tenant=tenant)
