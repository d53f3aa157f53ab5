"""JSON for provisioning: statuses, connections (secrets write-only), previews."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from provisioning import services
from provisioning.models import ClusterSyncStatus, HadoopConnection, KubernetesConnection
from tenants import selectors as tenant_selectors
from tenants.api.serializers import FixedAfterCreateMixin, RestrictedRelatedField


class SyncStatusSerializer(serializers.ModelSerializer):
    tenant = serializers.IntegerField(source="sync.tenant_id", read_only=True)
    tenant_path = serializers.CharField(source="sync.tenant_path", read_only=True)
    namespace = serializers.CharField(source="sync.namespace", read_only=True)
    cluster_name = serializers.CharField(source="cluster.name", read_only=True)

    class Meta:
        model = ClusterSyncStatus
        fields = [
            "tenant",
            "tenant_path",
            "cluster",
            "cluster_name",
            "namespace",
            "state",
            "message",
            "backend",
            "provisioned",
            "last_attempt_at",
            "last_synced_at",
            "drift_detected_at",
            "drift_detail",
            "last_result",
        ]
        read_only_fields = fields


class ConnectionSerializer(FixedAfterCreateMixin, serializers.ModelSerializer):
    """How Canopy reaches a Kubernetes cluster. Token, client key, kubeconfig and OIDC client secret are write-only:
    reads say whether they are set. Leave one out of an update to keep the stored one."""

    cluster = RestrictedRelatedField(selector=tenant_selectors.cluster_list)
    cluster_name = serializers.CharField(source="cluster.name", read_only=True)
    token = serializers.CharField(write_only=True, required=False, allow_blank=True, trim_whitespace=True)
    client_key = serializers.CharField(write_only=True, required=False, allow_blank=True)
    kubeconfig = serializers.CharField(write_only=True, required=False, allow_blank=True)
    token_set = serializers.SerializerMethodField()
    client_key_set = serializers.SerializerMethodField()
    kubeconfig_set = serializers.SerializerMethodField()
    oidc_client_secret = serializers.CharField(write_only=True, required=False, allow_blank=True)
    oidc_client_secret_set = serializers.SerializerMethodField()

    class Meta:
        model = KubernetesConnection
        fields = [
            "cluster",
            "cluster_name",
            "mode",
            "server",
            "ca_data",
            "token",
            "token_set",
            "client_certificate",
            "client_key",
            "client_key_set",
            "kubeconfig",
            "kubeconfig_set",
            "user_server",
            "user_ca_data",
            "network_policy",
            "gpu_resource",
            "quota_engine",
            "oidc_issuer_url",
            "oidc_client_id",
            "oidc_client_secret",
            "oidc_client_secret_set",
            "oidc_extra_scopes",
            "oidc_username_prefix",
            "oidc_groups_prefix",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {"quota_engine": {"help_text": services.QUOTA_ENGINE_HELP}}

    fixed_after_create = ("cluster",)

    def get_token_set(self, obj: KubernetesConnection) -> bool:
        return bool(obj.token)

    def get_client_key_set(self, obj: KubernetesConnection) -> bool:
        return bool(obj.client_key)

    def get_kubeconfig_set(self, obj: KubernetesConnection) -> bool:
        return bool(obj.kubeconfig)

    def get_oidc_client_secret_set(self, obj: KubernetesConnection) -> bool:
        return bool(obj.oidc_client_secret)

    def _spec(self, data: dict[str, Any], instance: KubernetesConnection | None) -> services.ConnectionSpec:
        def keep(name: str, default: Any = "") -> Any:
            if name in data:
                return data[name]
            return getattr(instance, name) if instance is not None else default

        return services.ConnectionSpec(
            mode=keep("mode"),
            server=keep("server"),
            ca_data=keep("ca_data"),
            token=data.get("token"),
            client_certificate=keep("client_certificate"),
            client_key=data.get("client_key"),
            kubeconfig=data.get("kubeconfig"),
            user_server=keep("user_server"),
            user_ca_data=keep("user_ca_data"),
            network_policy=keep("network_policy", False),
            gpu_resource=keep("gpu_resource", "nvidia.com/gpu"),
            quota_engine=keep("quota_engine", KubernetesConnection.QuotaEngine.RESOURCE_QUOTA),
            oidc_issuer_url=keep("oidc_issuer_url"),
            oidc_client_id=keep("oidc_client_id"),
            oidc_client_secret=data.get("oidc_client_secret"),
            oidc_extra_scopes=keep("oidc_extra_scopes", "groups email"),
            oidc_username_prefix=keep("oidc_username_prefix"),
            oidc_groups_prefix=keep("oidc_groups_prefix", "oidc:"),
        )

    def create(self, validated_data: dict[str, Any]) -> KubernetesConnection:
        cluster = validated_data["cluster"]
        return services.connection_set(
            acting_user=self.context["request"].user, cluster=cluster, spec=self._spec(validated_data, None)
        )

    def update(self, instance: KubernetesConnection, validated_data: dict[str, Any]) -> KubernetesConnection:
        return services.connection_set(
            acting_user=self.context["request"].user,
            cluster=instance.cluster,
            spec=self._spec(validated_data, instance),
        )


class HadoopConnectionSerializer(FixedAfterCreateMixin, serializers.ModelSerializer):
    """How Canopy reaches a Hadoop cluster: ResourceManager and WebHDFS URLs (one a line; several
    for HA), the user it acts as and the authentication. Kerberos: a principal and its keytab
    (base64, write-only, encrypted at rest; reads say whether one is set; leave it out of an update
    to keep it), or no keytab to use the worker's own ticket cache."""

    cluster = RestrictedRelatedField(selector=tenant_selectors.cluster_list)
    cluster_name = serializers.CharField(source="cluster.name", read_only=True)
    kerberos_keytab = serializers.CharField(
        write_only=True, required=False, allow_blank=True, help_text="The keytab file, base64."
    )
    kerberos_keytab_set = serializers.SerializerMethodField()

    class Meta:
        model = HadoopConnection
        fields = [
            "cluster",
            "cluster_name",
            "mode",
            "rm_urls",
            "webhdfs_urls",
            "user",
            "auth",
            "kerberos_principal",
            "kerberos_keytab",
            "kerberos_keytab_set",
            "directory_owner",
            "directory_permission",
            "remainder_queue",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    fixed_after_create = ("cluster",)

    def get_kerberos_keytab_set(self, obj: HadoopConnection) -> bool:
        return bool(obj.kerberos_keytab)

    def _spec(self, data: dict[str, Any], instance: HadoopConnection | None) -> services.HadoopConnectionSpec:
        defaults = services.HadoopConnectionSpec(rm_urls="", webhdfs_urls="", user="")
        values = {
            name: data[name] if name in data else getattr(instance or defaults, name)
            for name in (
                "rm_urls",
                "webhdfs_urls",
                "user",
                "mode",
                "auth",
                "directory_owner",
                "directory_permission",
                "remainder_queue",
                "kerberos_principal",
            )
        }
        return services.HadoopConnectionSpec(**values, kerberos_keytab=data.get("kerberos_keytab"))

    def create(self, validated_data: dict[str, Any]) -> HadoopConnection:
        return services.hadoop_connection_set(
            acting_user=self.context["request"].user,
            cluster=validated_data["cluster"],
            spec=self._spec(validated_data, None),
        )

    def update(self, instance: HadoopConnection, validated_data: dict[str, Any]) -> HadoopConnection:
        return services.hadoop_connection_set(
            acting_user=self.context["request"].user,
            cluster=instance.cluster,
            spec=self._spec(validated_data, instance),
        )


class ConnectionCheckSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    backend = serializers.CharField()
    version = serializers.CharField(help_text="The API server's gitVersion, e.g. v1.37.2.")
    message = serializers.CharField(help_text="What happened, or the exact error.")
    state = serializers.ChoiceField(
        choices=list(services.CHECK_STATES.items()),
        help_text="connected; export (nothing to reach); not_connected; unreachable; tls (certificate not "
        "trusted); credentials_refused; error (the cluster answered with one).",
    )
    hint = serializers.CharField(help_text="What to do about it (empty when connected).")


class FieldChangeSerializer(serializers.Serializer):
    path = serializers.CharField()
    live = serializers.JSONField(allow_null=True)
    desired = serializers.JSONField(allow_null=True, help_text="null: the field goes.")


class ObjectChangeSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["create", "update", "delete"])
    kind = serializers.CharField()
    api_version = serializers.CharField()
    namespace = serializers.CharField(allow_null=True)
    name = serializers.CharField()
    # DRF's metaclass takes declared fields off the class, so this does not hide `Serializer.fields`;
    # the stubs cannot know that.
    fields = FieldChangeSerializer(many=True)  # type: ignore[assignment]


class PreviewSerializer(serializers.Serializer):
    cluster = serializers.IntegerField(source="cluster.pk")
    cluster_name = serializers.CharField(source="cluster.name")
    namespace = serializers.CharField()
    backend = serializers.CharField(
        help_text="kubernetes, export, or empty when the cluster is not connected."
    )
    message = serializers.CharField()
    summary = serializers.SerializerMethodField()
    changes = serializers.SerializerMethodField()

    def get_summary(self, preview: services.Preview) -> dict[str, int] | None:
        return preview.plan.summary() if preview.plan else None

    def get_changes(self, preview: services.Preview) -> list[dict[str, Any]]:
        return [change.to_dict() for change in preview.plan.changes] if preview.plan else []


class PushSerializer(serializers.Serializer):
    tenants = serializers.ListField(child=serializers.IntegerField(), help_text="Tenants queued for a push.")
