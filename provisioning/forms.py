"""Console forms for provisioning's parts of the pages. Like the tenants' forms they only parse
input; `provisioning.services` checks the rules.

Secrets (a token, a client key, a kubeconfig, an OIDC client secret, a keytab) are never shown back:
their fields are empty, and say only whether one is stored; left empty, the stored one is kept."""

from __future__ import annotations

import base64
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile

from provisioning.models import HadoopConnection, KubernetesConnection
from provisioning.services import ConnectionSpec, HadoopConnectionSpec

KUBECONFIG_MAX_BYTES = 256 * 1024
KEYTAB_MAX_BYTES = 64 * 1024


class QuotaEngineForm(forms.Form):
    """How a connected Kubernetes cluster enforces allocations (`KubernetesConnection.quota_engine`)."""

    quota_engine = forms.ChoiceField(
        label="Quota engine",
        choices=KubernetesConnection.QuotaEngine.choices,
        help_text="Kueue needs every pool's node selector as key=value labels. Changing it pushes every "
        "tenant on the cluster again.",
    )


def _secret(label: str, stored: bool, help_text: str = "") -> forms.CharField:
    """A secret typed in: never rendered back; empty keeps the stored one."""
    return forms.CharField(
        label=label,
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False),
        help_text=("Set: type a new one to replace it, or leave it empty to keep it. " if stored else "")
        + help_text,
    )


def _upload(label: str, stored: bool, help_text: str) -> forms.FileField:
    return forms.FileField(
        label=label,
        required=False,
        help_text=("Set: choose a file to replace it, or leave it empty to keep it. " if stored else "")
        + help_text,
    )


def _text(help_text: str = "", rows: int = 0, **kwargs: Any) -> forms.CharField:
    widget = forms.Textarea(attrs={"rows": rows}) if rows else forms.TextInput(attrs={"autocomplete": "off"})
    return forms.CharField(required=False, help_text=help_text, widget=widget, **kwargs)


def _read(upload: UploadedFile | None, limit: int) -> bytes | None:
    """An uploaded file's bytes (None: nothing chosen); larger than `limit` is refused."""
    if upload is None:
        return None
    if upload.size is not None and upload.size > limit:
        raise forms.ValidationError(f"At most {limit // 1024} KiB; this file has {upload.size} bytes.")
    return upload.read()


class KubernetesConnectionForm(forms.Form):
    """How Canopy reaches a Kubernetes cluster: an uploaded kubeconfig; the API server's URL, its CA
    and a token (or a client certificate); in-cluster; or no API at all (export for GitOps)."""

    mode = forms.ChoiceField(
        label="How Canopy reaches the cluster",
        choices=[
            (KubernetesConnection.Mode.KUBECONFIG, "Upload a kubeconfig"),
            (KubernetesConnection.Mode.TOKEN, "API server URL, a token and the CA"),
            (KubernetesConnection.Mode.CERTIFICATE, "API server URL, a client certificate and the CA"),
            (KubernetesConnection.Mode.IN_CLUSTER, "In-cluster: Canopy runs in this cluster"),
            (KubernetesConnection.Mode.EXPORT, "No API access: write manifests as files for a GitOps tool"),
        ],
        widget=forms.RadioSelect,
    )
    server = _text("e.g. https://10.0.0.91:6443", label="API server URL")
    ca_data = _text(
        "The cluster's CA certificate (PEM: -----BEGIN CERTIFICATE----- ...); empty: the system's CAs.",
        rows=4,
        label="CA certificate",
    )
    client_certificate = _text("PEM.", rows=4, label="Client certificate")
    user_server = _text(
        "What people's kubeconfigs point at, when it differs from the URL above (in-cluster, a proxy).",
        label="API server URL for people",
    )
    user_ca_data = _text("CA for people's kubeconfigs, when it differs (PEM).", rows=3, label="CA for people")
    gpu_resource = _text("The extended resource quota'd for GPUs.", label="GPU resource")
    network_policy = forms.BooleanField(
        required=False, label="Refuse traffic between tenants' namespaces (a NetworkPolicy in each)"
    )
    quota_engine = forms.ChoiceField(
        label="Quota engine", choices=KubernetesConnection.QuotaEngine.choices, initial="resourcequota"
    )
    oidc_issuer_url = _text("The API server's --oidc-issuer-url; empty: no OIDC.", label="OIDC issuer URL")
    oidc_client_id = _text("The API server's --oidc-client-id.", label="OIDC client id")
    oidc_extra_scopes = _text("Scopes kubelogin asks for besides openid.", label="OIDC extra scopes")
    oidc_username_prefix = _text("The API server's --oidc-username-prefix.", label="OIDC username prefix")
    oidc_groups_prefix = _text("The API server's --oidc-groups-prefix.", label="OIDC groups prefix")

    # Which fields each mode uses (the others are not sent to the service, so nothing a mode does not
    # use is stored from a field the page had hidden).
    MODE_FIELDS: dict[str, set[str]] = {
        KubernetesConnection.Mode.TOKEN: {"server", "ca_data", "token"},
        KubernetesConnection.Mode.CERTIFICATE: {"server", "ca_data", "client_certificate", "client_key"},
        KubernetesConnection.Mode.KUBECONFIG: {"kubeconfig"},
    }
    ADVANCED = (
        "user_server",
        "user_ca_data",
        "gpu_resource",
        "oidc_issuer_url",
        "oidc_client_id",
        "oidc_client_secret",
        "oidc_extra_scopes",
        "oidc_username_prefix",
        "oidc_groups_prefix",
    )

    def __init__(self, *args: Any, connection: KubernetesConnection | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connection = connection
        stored = connection or KubernetesConnection()
        self.fields["kubeconfig"] = _upload(
            "Kubeconfig",
            bool(stored.kubeconfig),
            "Its current context's user must hold a token or an embedded client certificate; "
            "kubeconfigs that run commands, use login plugins or name files are refused.",
        )
        self.fields["token"] = _secret(
            "Token",
            bool(stored.token),
            "A token of Canopy's ServiceAccount (deploy/clusterrole.yaml), e.g. from "
            "kubectl create token canopy -n canopy --duration 8760h",
        )
        self.fields["client_key"] = _upload("Client key", bool(stored.client_key), "PEM.")
        self.fields["oidc_client_secret"] = _secret("OIDC client secret", bool(stored.oidc_client_secret))
        self.order_fields(
            [
                "mode",
                "kubeconfig",
                "server",
                "ca_data",
                "token",
                "client_certificate",
                "client_key",
                "quota_engine",
                "network_policy",
                *self.ADVANCED,
            ]
        )
        for name in self.fields:
            if name not in ("kubeconfig", "token", "client_key", "oidc_client_secret"):
                self.fields[name].initial = getattr(stored, name)
        if connection is None:
            self.fields["mode"].initial = KubernetesConnection.Mode.KUBECONFIG

    def clean_kubeconfig(self) -> str | None:
        data = _read(self.cleaned_data.get("kubeconfig"), KUBECONFIG_MAX_BYTES)
        if data is None:
            return None
        try:
            return data.decode()
        except UnicodeDecodeError as error:
            raise forms.ValidationError("A kubeconfig is a YAML text file (UTF-8).") from error

    def clean_client_key(self) -> str | None:
        data = _read(self.cleaned_data.get("client_key"), KUBECONFIG_MAX_BYTES)
        try:
            return None if data is None else data.decode()
        except UnicodeDecodeError as error:
            raise forms.ValidationError("A client key is a PEM text file.") from error

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        stored = self.connection
        if (
            data.get("mode") == KubernetesConnection.Mode.KUBECONFIG
            and self.cleaned_data.get("kubeconfig") is None
            and not (stored and stored.kubeconfig)
            and "kubeconfig" not in self.errors
        ):
            self.add_error("kubeconfig", "Choose the kubeconfig file to upload.")
        return data

    def advanced_open(self) -> bool:
        """The optional settings start open when one of them is refused or set to other than its
        default."""
        default = KubernetesConnection()
        return any(self[name].errors for name in self.ADVANCED) or any(
            getattr(self.connection, name) != getattr(default, name)
            for name in ("user_server", "user_ca_data", "gpu_resource", "oidc_issuer_url")
            if self.connection is not None
        )

    def advanced_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.ADVANCED]

    def spec(self) -> ConnectionSpec:
        """The connection as typed, for `services.connection_set`: a secret left empty keeps the
        stored one (None); the fields of other modes are left out."""
        data = self.cleaned_data
        mode = data.get("mode") or (self.data.get("mode") or "")
        used = self.MODE_FIELDS.get(mode, set())

        def text(name: str) -> str:
            return data.get(name) or "" if name in used else ""

        def secret(name: str) -> str | None:
            return (data.get(name) or None) if name in used else None

        defaults = ConnectionSpec(mode=mode)
        return ConnectionSpec(
            mode=mode,
            server=text("server"),
            ca_data=text("ca_data"),
            token=secret("token"),
            client_certificate=text("client_certificate"),
            client_key=secret("client_key"),
            kubeconfig=secret("kubeconfig"),
            user_server=data.get("user_server", ""),
            user_ca_data=data.get("user_ca_data", ""),
            network_policy=bool(data.get("network_policy")),
            gpu_resource=data.get("gpu_resource") or defaults.gpu_resource,
            oidc_issuer_url=data.get("oidc_issuer_url", ""),
            oidc_client_id=data.get("oidc_client_id", ""),
            oidc_client_secret=data.get("oidc_client_secret") or None,
            oidc_extra_scopes=data.get("oidc_extra_scopes", ""),
            oidc_username_prefix=data.get("oidc_username_prefix", ""),
            oidc_groups_prefix=data.get("oidc_groups_prefix", ""),
            quota_engine=data.get("quota_engine") or defaults.quota_engine,
        )


class HadoopConnectionForm(forms.Form):
    """How Canopy reaches a Hadoop cluster: its ResourceManagers and NameNodes, as a user (simple
    auth) or a Kerberos principal with its keytab; or no mutation API (files to deploy by hand)."""

    mode = forms.ChoiceField(
        label="How Canopy reaches the cluster",
        choices=[
            (HadoopConnection.Mode.API, "ResourceManager scheduler-conf API and WebHDFS"),
            (HadoopConnection.Mode.EXPORT, "No mutation API: write capacity-scheduler.xml and hdfs-setup.sh"),
        ],
        widget=forms.RadioSelect,
        initial=HadoopConnection.Mode.API,
    )
    rm_urls = _text(
        "One a line; with HA, every ResourceManager: http://rm1:8088", rows=2, label="ResourceManager URLs"
    )
    webhdfs_urls = _text("One a line; with HA, every NameNode: http://nn1:9870", rows=2, label="WebHDFS URLs")
    auth = forms.ChoiceField(
        label="Authentication",
        choices=[
            (HadoopConnection.Auth.SIMPLE, "Simple: act as a user (user.name)"),
            (HadoopConnection.Auth.KERBEROS, "Kerberos (SPNEGO): a principal and its keytab"),
        ],
        widget=forms.RadioSelect,
        initial=HadoopConnection.Auth.SIMPLE,
    )
    user = _text("A YARN admin (yarn.admin.acl) and the HDFS superuser or a proxy user.", label="User")
    kerberos_principal = _text(
        "e.g. canopy@EXAMPLE.COM; its short name is the user above.", label="Principal"
    )
    forget_keytab = forms.BooleanField(
        required=False, label="Forget the stored keytab (use the worker's ticket cache)"
    )
    directory_owner = _text("Owner of tenants' HDFS directories.", label="Directory owner")
    directory_permission = _text("Of tenants' HDFS directories, octal.", label="Directory permission")
    remainder_queue = _text(
        "The leaf under each parent queue that holds what its children do not take.", label="Remainder queue"
    )

    ADVANCED = ("directory_owner", "directory_permission", "remainder_queue")

    def __init__(self, *args: Any, connection: HadoopConnection | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connection = connection
        stored = connection or HadoopConnection(user="", kerberos_principal="")
        self.fields["kerberos_keytab"] = _upload(
            "Keytab", bool(stored.kerberos_keytab), "The principal's keytab file; stored encrypted."
        )
        self.order_fields(
            ["mode", "rm_urls", "webhdfs_urls", "auth", "user", "kerberos_principal", "kerberos_keytab"]
        )
        if not stored.kerberos_keytab:
            del self.fields["forget_keytab"]
        for name in self.fields:
            if name not in ("kerberos_keytab", "forget_keytab"):
                self.fields[name].initial = getattr(stored, name)

    def clean_kerberos_keytab(self) -> str | None:
        data = _read(self.cleaned_data.get("kerberos_keytab"), KEYTAB_MAX_BYTES)
        return None if data is None else base64.b64encode(data).decode()

    def advanced_open(self) -> bool:
        return any(self[name].errors for name in self.ADVANCED)

    def advanced_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.ADVANCED]

    def spec(self) -> HadoopConnectionSpec:
        """The connection as typed, for `services.hadoop_connection_set` (a keytab left empty keeps
        the stored one; "forget" removes it)."""
        data = self.cleaned_data
        defaults = HadoopConnectionSpec(rm_urls="", webhdfs_urls="", user="")
        keytab = data.get("kerberos_keytab")
        if keytab is None and data.get("forget_keytab"):
            keytab = ""
        return HadoopConnectionSpec(
            rm_urls=data.get("rm_urls", ""),
            webhdfs_urls=data.get("webhdfs_urls", ""),
            user=data.get("user", ""),
            mode=data.get("mode") or self.data.get("mode") or "",
            auth=data.get("auth") or self.data.get("auth") or "",
            directory_owner=data.get("directory_owner") or defaults.directory_owner,
            directory_permission=data.get("directory_permission") or defaults.directory_permission,
            remainder_queue=data.get("remainder_queue") or defaults.remainder_queue,
            kerberos_principal=data.get("kerberos_principal", ""),
            kerberos_keytab=keytab,
        )
