"""Provisioning state: how Canopy reaches each Kubernetes cluster, each tenant's namespace, the
changes still to push (intents) and how each tenant stands on each cluster.

`tenants.models` stays the domain; these rows are written only by `provisioning.services`.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from provisioning.backends.kubernetes import KubernetesAccess
from provisioning.backends.yarn import HadoopAccess
from provisioning.crypto import EncryptedTextField
from provisioning.desired.yarn import YarnSettings
from tenants.models import Cluster
from tenants.permissions import Action, is_platform_admin, visible_tenants


class KubernetesConnection(models.Model):
    """How Canopy reaches one Kubernetes cluster. Secrets (token, client key, kubeconfig) are
    encrypted at rest; CA and client certificates are public and kept plain."""

    class Mode(models.TextChoices):
        TOKEN = "token", "API server URL, CA and a bearer token"
        CERTIFICATE = "certificate", "API server URL, CA and a client certificate"
        KUBECONFIG = "kubeconfig", "An uploaded kubeconfig"
        IN_CLUSTER = "in_cluster", "In-cluster (Canopy runs in this cluster)"
        EXPORT = "export", "No API access: export manifests for GitOps"

    cluster = models.OneToOneField(
        Cluster, on_delete=models.CASCADE, primary_key=True, related_name="kubernetes_connection"
    )
    mode = models.CharField(max_length=16, choices=Mode.choices)
    server = models.CharField(
        max_length=500, blank=True, help_text="API server URL, e.g. https://10.0.0.91:6443."
    )
    ca_data = models.TextField(blank=True, help_text="The cluster's CA certificate (PEM).")
    token = EncryptedTextField(blank=True)
    client_certificate = models.TextField(blank=True, help_text="PEM.")
    client_key = EncryptedTextField(blank=True)
    kubeconfig = EncryptedTextField(blank=True)
    user_server = models.CharField(
        max_length=500,
        blank=True,
        help_text="API server URL written into people's kubeconfigs, when it differs from how Canopy reaches it.",
    )
    user_ca_data = models.TextField(blank=True, help_text="CA for people's kubeconfigs, when it differs.")
    network_policy = models.BooleanField(
        default=False, help_text="Refuse traffic between tenant namespaces (a NetworkPolicy in each)."
    )
    gpu_resource = models.CharField(max_length=253, default="nvidia.com/gpu")

    class QuotaEngine(models.TextChoices):
        RESOURCE_QUOTA = "resourcequota", "ResourceQuota: one namespace-wide limit per tenant"
        KUEUE = "kueue", "Kueue: per-pool quotas, cohorts, guaranteed and burst"

    quota_engine = models.CharField(
        max_length=16,
        choices=QuotaEngine.choices,
        default=QuotaEngine.RESOURCE_QUOTA,
        help_text="How tenants' allocations are enforced on this cluster.",
    )
    # OpenID Connect, as the cluster's kube-apiserver is configured (--oidc-issuer-url and friends):
    # set, RoleBindings also name people and groups as the API server sees them, and kubeconfigs use
    # `kubectl oidc-login` instead of a ServiceAccount token.
    oidc_issuer_url = models.CharField(
        max_length=500, blank=True, help_text="The API server's --oidc-issuer-url; empty: no OIDC."
    )
    oidc_client_id = models.CharField(
        max_length=255, blank=True, help_text="The API server's --oidc-client-id."
    )
    oidc_client_secret = EncryptedTextField(blank=True)
    oidc_extra_scopes = models.CharField(
        max_length=500,
        default="groups email",
        blank=True,
        help_text="Scopes kubelogin asks for besides openid.",
    )
    oidc_username_prefix = models.CharField(
        max_length=100, blank=True, help_text="The API server's --oidc-username-prefix."
    )
    oidc_groups_prefix = models.CharField(
        max_length=100, default="oidc:", blank=True, help_text="The API server's --oidc-groups-prefix."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.cluster} ({self.get_mode_display()})"

    @property
    def oidc(self) -> bool:
        return bool(self.oidc_issuer_url)

    def access(self, *, timeout_seconds: float = 10.0, retries: int = 3) -> KubernetesAccess:
        return KubernetesAccess(
            mode=self.mode,
            server=self.server,
            ca_data=self.ca_data,
            token=self.token,
            client_certificate=self.client_certificate,
            client_key=self.client_key,
            kubeconfig=self.kubeconfig,
            user_server=self.user_server,
            user_ca_data=self.user_ca_data,
            timeout_seconds=timeout_seconds,
            retries=retries,
        )


class HadoopConnection(models.Model):
    """How Canopy reaches one Hadoop cluster: its ResourceManagers (several for HA, tried in turn),
    its NameNodes' WebHDFS, and who to act as. The user must be a YARN admin (scheduler-conf
    mutations) and the HDFS superuser or a proxy user allowed to set quotas."""

    class Mode(models.TextChoices):
        API = "api", "ResourceManager scheduler-conf API and WebHDFS"
        EXPORT = "export", "No mutation API: export capacity-scheduler.xml and an hdfs script"

    class Auth(models.TextChoices):
        SIMPLE = "simple", "Simple (user.name)"
        KERBEROS = "kerberos", "Kerberos / SPNEGO (a principal and its keytab, or the worker's ticket)"

    cluster = models.OneToOneField(
        Cluster, on_delete=models.CASCADE, primary_key=True, related_name="hadoop_connection"
    )
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.API)
    rm_urls = models.TextField(
        blank=True, help_text="ResourceManager web URLs, one a line (HA: each RM), e.g. http://rm1:8088."
    )
    webhdfs_urls = models.TextField(
        blank=True, help_text="NameNode HTTP URLs, one a line (HA: each NameNode), e.g. http://nn1:9870."
    )
    user = models.CharField(max_length=150, default="yarn", help_text="The user Canopy acts as.")
    auth = models.CharField(max_length=16, choices=Auth.choices, default=Auth.SIMPLE)
    # Kerberos: with a keytab Canopy signs in as this principal itself (tickets in memory, renewed
    # from the keytab); without one it uses whatever ticket cache the worker's environment has.
    kerberos_principal = models.CharField(
        max_length=255,
        blank=True,
        help_text="e.g. canopy@EXAMPLE.COM; its short name is the user Canopy acts as.",
    )
    kerberos_keytab = EncryptedTextField(blank=True, help_text="The principal's keytab, base64.")
    directory_owner = models.CharField(max_length=150, default="hdfs")
    directory_permission = models.CharField(max_length=4, default="750")
    remainder_queue = models.CharField(
        max_length=63,
        default="default",
        help_text="The leaf under each parent queue that holds what its children do not take.",
    )
    user_limit_factor = models.CharField(max_length=16, default="1")
    minimum_user_limit_percent = models.CharField(max_length=16, default="100")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.cluster} ({self.get_mode_display()})"

    @staticmethod
    def _lines(text: str) -> list[str]:
        return [line.strip().rstrip("/") for line in text.splitlines() if line.strip()]

    def access(self, *, timeout_seconds: float = 10.0) -> HadoopAccess:
        return HadoopAccess(
            rm_urls=self._lines(self.rm_urls),
            webhdfs_urls=self._lines(self.webhdfs_urls),
            user=self.user,
            auth=self.auth,
            kerberos_principal=self.kerberos_principal,
            kerberos_keytab=self.kerberos_keytab,
            remainder_queue=self.remainder_queue,
            directory_permission=self.directory_permission,
            timeout_seconds=timeout_seconds,
        )

    def yarn_settings(self) -> YarnSettings:
        return YarnSettings(
            remainder_queue=self.remainder_queue,
            user_limit_factor=self.user_limit_factor,
            minimum_user_limit_percent=self.minimum_user_limit_percent,
            directory_owner=self.directory_owner,
            directory_permission=self.directory_permission,
        )


class TenantSync(models.Model):
    """Per tenant: its namespace name, fixed when first assigned so a move never renames it, and a
    lease so one worker at a time reconciles it.

    Keyed by the tenant's id without a foreign key: the row outlives a deleted tenant until its
    objects are gone from every cluster (and keeps its namespace name reserved until then)."""

    tenant_id = models.PositiveBigIntegerField(primary_key=True)
    tenant_path = models.CharField(max_length=1024)
    namespace = models.CharField(max_length=63, unique=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.tenant_path} -> {self.namespace}"


class StatusQuerySet(models.QuerySet):
    def restrict(self, user: Any, action: Action | str) -> StatusQuerySet:
        """A tenant's status is seen by whoever may see the tenant; a deleted tenant's only by
        platform admins."""
        if is_platform_admin(user):
            return self
        return self.filter(sync__tenant_id__in=visible_tenants(user, action).values("pk"))


class ClusterSyncStatus(models.Model):
    """How one tenant stands on one cluster."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        APPLYING = "applying", "Applying"
        SYNCED = "synced", "Synced"
        FAILED = "failed", "Failed"
        DRIFTED = "drifted", "Drifted"

    sync = models.ForeignKey(TenantSync, on_delete=models.CASCADE, related_name="statuses")
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    message = models.TextField(blank=True, help_text="The last result, or the API server's error.")
    backend = models.CharField(max_length=16, blank=True)
    provisioned = models.BooleanField(default=False, help_text="Objects exist on the cluster.")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    drift_detected_at = models.DateTimeField(null=True, blank=True)
    drift_detail = models.TextField(blank=True)
    last_result = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = StatusQuerySet.as_manager()

    class Meta:
        ordering = ["sync__tenant_path", "cluster__name"]
        constraints = [
            models.UniqueConstraint(fields=["sync", "cluster"], name="sync_status_one_per_cluster")
        ]
        verbose_name_plural = "cluster sync statuses"

    def __str__(self) -> str:
        return f"{self.sync.tenant_path} on {self.cluster}: {self.state}"


class ProvisioningIntent(models.Model):
    """A change to push for one tenant, recorded in the same transaction as the change itself, so a
    crash, a lost message or a broker outage can delay it but never lose it."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        FAILED = "failed", "Failed (retried with backoff)"
        DONE = "done", "Done"

    tenant_id = models.PositiveBigIntegerField(db_index=True)
    reason = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="intent_due_idx")]

    def __str__(self) -> str:
        return f"{self.reason} for tenant {self.tenant_id}: {self.state}"
