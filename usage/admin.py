"""Admin pages for usage, read-only: its rows are written by the collectors and the rollups."""

from django.contrib import admin

from tenants.admin import ReadOnlyAdmin
from usage.models import UsageCollection


@admin.register(UsageCollection)
class UsageCollectionAdmin(ReadOnlyAdmin):
    """How usage collection goes on each cluster: the last pass, its cost, or its error."""

    list_display = [
        "cluster",
        "state",
        "interval_seconds",
        "last_collected_at",
        "calls",
        "samples",
        "message",
    ]
    list_filter = ["state"]
