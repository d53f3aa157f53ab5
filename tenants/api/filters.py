"""Filters of the API's lists. An id filter (`?tenant=`, `?cluster=`, `?pool=`, `?parent=`) keeps
the rows that point at that id: an id that names nothing the caller can see, because it names
nothing at all or a row they may not see, gives the same empty page (django-filter's default,
a ModelChoiceFilter, checks the id against every row: 400 for a missing one, an empty page for an
invisible one, which told whether a tenant exists). Only what cannot be an id is a 400 (not a
whole number, or beyond the largest id), whatever the database holds."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db import models
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema_field

from tenants.converters import LARGEST_ID

ID_SCHEMA = {"type": "integer", "minimum": 0, "maximum": LARGEST_ID}


@extend_schema_field(ID_SCHEMA)
class IdFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", LARGEST_ID)
        super().__init__(*args, **kwargs)


class FilterSet(django_filters.rest_framework.FilterSet):
    """The base of every filter set of the API: a foreign key is filtered by its id (IdFilter)."""

    FILTER_DEFAULTS = {
        **django_filters.rest_framework.FilterSet.FILTER_DEFAULTS,
        models.ForeignKey: {"filter_class": IdFilter},
        models.OneToOneField: {"filter_class": IdFilter},
    }


class FilterBackend(DjangoFilterBackend):
    """DRF's django-filter backend, building `filterset_fields` on the FilterSet above."""

    filterset_base = FilterSet
