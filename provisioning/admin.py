"""Admin pages for provisioning, read-only: connections are written through the API (their secrets are
encrypted and write-only), statuses and intents by the workers."""

from django.contrib import admin

from provisioning.models import (
    ClusterSyncStatus,
    KubernetesConnection,
    ProvisioningIntent,
    TenantSync,
)
from tenants.admin import ReadOnlyAdmin


@admin.register(KubernetesConnection)
class KubernetesConnectionAdmin(ReadOnlyAdmin):
    list_display = ["cluster", "mode", "quota_engine", "server", "network_policy", "updated_at"]
    # Credentials stay out of the page, even encrypted.
    exclude = ["token", "client_key", "kubeconfig", "oidc_client_secret"]


@admin.register(TenantSync)
class TenantSyncAdmin(ReadOnlyAdmin):
    list_display = ["tenant_path", "namespace"]
    search_fields = ["tenant_path", "namespace"]


@admin.register(ClusterSyncStatus)
class ClusterSyncStatusAdmin(ReadOnlyAdmin):
    list_display = ["sync", "cluster", "state", "last_synced_at", "message"]
    list_filter = ["state", "cluster"]
    search_fields = ["sync__tenant_path", "message"]


@admin.register(ProvisioningIntent)
class ProvisioningIntentAdmin(ReadOnlyAdmin):
    list_display = ["tenant_id", "reason", "state", "attempts", "next_attempt_at", "created_at"]
    list_filter = ["state", "reason"]
