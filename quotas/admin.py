"""Admin pages for quota requests and notifications, read-only: requests are made and decided in the
console and the API, through quotas.services (the rules, the audit and the push)."""

from django.contrib import admin

from quotas.models import Notification, QuotaRequest
from tenants.admin import ReadOnlyAdmin


@admin.register(QuotaRequest)
class QuotaRequestAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "tenant",
        "pool",
        "asked_summary",
        "requester_name",
        "state",
        "deciding_tenant",
        "created_at",
    ]
    list_filter = ["state"]
    search_fields = ["tenant__name_path", "requester_name", "reason"]


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "recipient", "subject", "read_at"]
    search_fields = ["recipient__username", "subject"]
