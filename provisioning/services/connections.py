"""How Canopy reaches each cluster (platform admins): Kubernetes and Hadoop connections created,
changed and deleted (one audit row, a push of every tenant on the cluster), the quota engine
switched, and a connection tested."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms.models import model_to_dict

from provisioning.backends import kerberos
from provisioning.backends.base import SIGN_IN, TLS, UNREACHABLE, BackendError
from provisioning.backends.export import ExportBackend, HadoopExportBackend
from provisioning.backends.kubernetes import check_kubeconfig
from provisioning.desired.kubernetes import KUEUE_ENGINE
from provisioning.desired.kueue import CLUSTER_OWNER_ID
from provisioning.models import ClusterSyncStatus, HadoopConnection, KubernetesConnection
from provisioning.services.intents import intent_record
from provisioning.services.reconcile import backend_for
from tenants import labels
from tenants.audit import audit
from tenants.cluster_names import name_problem
from tenants.models import Allocation, Cluster
from tenants.permissions import AnyUser, require_platform_admin


@dataclass
class ConnectionSpec:
    """A connection as entered. A secret left None keeps the stored one."""

    mode: str
    server: str = ""
    ca_data: str = ""
    token: str | None = None
    client_certificate: str = ""
    client_key: str | None = None
    kubeconfig: str | None = None
    user_server: str = ""
    user_ca_data: str = ""
    network_policy: bool = False
    gpu_resource: str = "nvidia.com/gpu"
    oidc_issuer_url: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str | None = None
    oidc_extra_scopes: str = "groups email"
    oidc_username_prefix: str = ""
    oidc_groups_prefix: str = "oidc:"
    quota_engine: str = KubernetesConnection.QuotaEngine.RESOURCE_QUOTA


_RESOURCE_NAME = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$"
)
_SECRET_FIELDS = {"token": "token", "client_key": "client_key", "kubeconfig": "kubeconfig"}  # nosec B105 # field names, not passwords
_MODE_SECRETS: dict[str, set[str]] = {
    KubernetesConnection.Mode.TOKEN: {"token"},
    KubernetesConnection.Mode.CERTIFICATE: {"client_key"},
    KubernetesConnection.Mode.KUBECONFIG: {"kubeconfig"},
}


def _pem_errors(text: str) -> list[str]:
    if not text.strip():
        return []
    try:
        x509.load_pem_x509_certificates(text.encode())
    except ValueError:
        return ["Paste the certificate in PEM form (-----BEGIN CERTIFICATE----- ...)."]
    return []


def _connection_snapshot(connection: KubernetesConnection) -> dict[str, Any]:
    return {
        "mode": connection.mode,
        "server": connection.server,
        "user_server": connection.user_server,
        "network_policy": connection.network_policy,
        "gpu_resource": connection.gpu_resource,
        "quota_engine": connection.quota_engine,
        "oidc_issuer_url": connection.oidc_issuer_url,
        "oidc_client_id": connection.oidc_client_id,
        "oidc_extra_scopes": connection.oidc_extra_scopes,
        "oidc_username_prefix": connection.oidc_username_prefix,
        "oidc_groups_prefix": connection.oidc_groups_prefix,
        # Never the secrets themselves, only whether they are set.
        "token_set": bool(connection.token),
        "client_key_set": bool(connection.client_key),
        "kubeconfig_set": bool(connection.kubeconfig),
        "oidc_client_secret_set": bool(connection.oidc_client_secret),
    }


def connection_set(*, acting_user: AnyUser, cluster: Cluster, spec: ConnectionSpec) -> KubernetesConnection:
    """Create or replace how Canopy reaches a Kubernetes cluster, then push every tenant on it."""
    require_platform_admin(acting_user)
    errors: dict[str, list[str]] = {}
    if cluster.kind != Cluster.Kind.KUBERNETES:
        raise ValidationError({"cluster": [f"{cluster} is not a Kubernetes cluster."]})
    if spec.mode not in KubernetesConnection.Mode.values:
        raise ValidationError({"mode": [f"Choose one of: {', '.join(KubernetesConnection.Mode.values)}."]})
    with transaction.atomic():
        connection = KubernetesConnection.objects.select_for_update().filter(cluster=cluster).first()
        before = _connection_snapshot(connection) if connection else None
        connection = connection or KubernetesConnection(cluster=cluster)
        connection.mode = spec.mode
        for name in (
            "server",
            "ca_data",
            "client_certificate",
            "user_server",
            "user_ca_data",
            "gpu_resource",
            "oidc_issuer_url",
            "oidc_client_id",
            "oidc_username_prefix",
            "oidc_groups_prefix",
        ):
            setattr(connection, name, (getattr(spec, name) or "").strip())
        connection.oidc_extra_scopes = " ".join((spec.oidc_extra_scopes or "").replace(",", " ").split())
        connection.network_policy = spec.network_policy
        connection.quota_engine = spec.quota_engine
        for name in _SECRET_FIELDS:
            value = getattr(spec, name)
            if value is not None:
                setattr(connection, name, value.strip())
            if name not in _MODE_SECRETS.get(spec.mode, set()):
                setattr(connection, name, "")  # a secret the mode does not use is not kept
        if spec.oidc_client_secret is not None:
            connection.oidc_client_secret = spec.oidc_client_secret.strip()
        if not connection.oidc_issuer_url:
            connection.oidc_client_secret = ""  # no OIDC, no secret kept for it  # nosec B105 # clears the stored secret
        mode = spec.mode
        needs_server = mode in (KubernetesConnection.Mode.TOKEN, KubernetesConnection.Mode.CERTIFICATE)
        if needs_server and not re.match(r"^https?://[^/\s]+", connection.server):
            errors["server"] = ["The API server URL, e.g. https://10.0.0.91:6443."]
        if mode == KubernetesConnection.Mode.TOKEN and not connection.token:
            errors["token"] = ["A bearer token for Canopy's ServiceAccount (see deploy/clusterrole.yaml)."]
        if mode == KubernetesConnection.Mode.CERTIFICATE:
            if not connection.client_certificate or not connection.client_key:
                errors["client_certificate"] = ["A client certificate and its key (PEM)."]
            elif problems := _pem_errors(connection.client_certificate):
                errors["client_certificate"] = problems
        if mode == KubernetesConnection.Mode.KUBECONFIG:
            try:
                check_kubeconfig(connection.kubeconfig)
            except ValueError as error:
                errors["kubeconfig"] = [str(error)]
        for name in ("ca_data", "user_ca_data"):
            if problems := _pem_errors(getattr(connection, name)):
                errors[name] = problems
        if connection.user_server and not re.match(r"^https?://[^/\s]+", connection.user_server):
            errors["user_server"] = ["A URL, e.g. https://k8s.example.com:6443."]
        if not _RESOURCE_NAME.fullmatch(connection.gpu_resource):
            errors["gpu_resource"] = ["An extended resource name such as nvidia.com/gpu."]
        if connection.oidc_issuer_url:
            if not re.match(r"^https://[^/\s]+\S*$", connection.oidc_issuer_url):
                errors["oidc_issuer_url"] = ["The API server's --oidc-issuer-url, an https URL."]
            if not connection.oidc_client_id:
                errors["oidc_client_id"] = ["The API server's --oidc-client-id."]
        if problems := _quota_engine_errors(cluster, connection.quota_engine):
            errors["quota_engine"] = problems
        if errors:
            raise ValidationError(errors)
        connection.save()
        _connection_changed(acting_user, cluster, before=before, after=_connection_snapshot(connection))
    return connection


QUOTA_ENGINE_HELP = (
    "How tenants' allocations are enforced on this cluster. resourcequota: one namespace "
    "ResourceQuota per tenant with its guaranteed amounts, all pools together. kueue: Kueue's "
    "per-pool quotas, the tenant tree as cohorts, guaranteed amounts as nominal quota and bursts as "
    "borrowing; every Kubernetes pool's node selector must then be key=value labels (a "
    "ResourceFlavor's nodeLabels). Changing it pushes every tenant on the cluster again."
)


def _quota_engine_errors(cluster: Cluster, engine: str) -> list[str]:
    """Why `cluster` cannot use `engine`: an unknown engine, or for Kueue a pool whose node selector
    is no key=value label list (a ResourceFlavor's nodeLabels are a map), each pool named."""
    if engine not in KubernetesConnection.QuotaEngine.values:
        return [f"Choose one of: {', '.join(KubernetesConnection.QuotaEngine.values)}."]
    if engine != KubernetesConnection.QuotaEngine.KUEUE:
        return []
    return [
        f"Kueue pins pool {pool.name}'s jobs to its nodes with its node selector "
        f"{pool.node_selector!r}, which is not a key=value label list: {problem}"
        for pool in cluster.pools.order_by("name")
        for problem in labels.node_selector_errors(pool.node_selector)
    ]


def connection_quota_engine_set(
    *, acting_user: AnyUser, cluster: Cluster, quota_engine: str
) -> KubernetesConnection:
    """Switch how a connected Kubernetes cluster enforces allocations (the console's Pools page;
    the API sets it with the rest of the connection). One audit row and a push of every tenant on
    the cluster, as any connection change; choosing the engine it has already changes nothing."""
    require_platform_admin(acting_user)
    with transaction.atomic():
        connection = KubernetesConnection.objects.select_for_update().filter(cluster=cluster).first()
        if connection is None:
            raise ValidationError(
                {
                    "quota_engine": [
                        f"Cluster {cluster} has no connection; add one first (its engine is set there)."
                    ]
                }
            )
        if connection.quota_engine == quota_engine:
            return connection
        if problems := _quota_engine_errors(cluster, quota_engine):
            raise ValidationError({"quota_engine": problems})
        before = _connection_snapshot(connection)
        connection.quota_engine = quota_engine
        connection.save(update_fields=["quota_engine", "updated_at"])
        _connection_changed(acting_user, cluster, before=before, after=_connection_snapshot(connection))
    return connection


@dataclass
class HadoopConnectionSpec:
    """A Hadoop connection as entered: URLs one a line (several ResourceManagers for HA)."""

    rm_urls: str
    webhdfs_urls: str
    user: str
    mode: str = HadoopConnection.Mode.API
    auth: str = HadoopConnection.Auth.SIMPLE
    directory_owner: str = "hdfs"
    directory_permission: str = "750"
    remainder_queue: str = "default"
    kerberos_principal: str = ""
    kerberos_keytab: str | None = None  # base64; None keeps the stored one, "" removes it


_KERBEROS_PRINCIPAL = re.compile(r"^[^\s@/]+(/[^\s@/]+)?@[^\s@/]+$")


def _hadoop_snapshot(connection: HadoopConnection) -> dict[str, Any]:
    snapshot = model_to_dict(connection, exclude=["cluster", "kerberos_keytab"])
    snapshot["kerberos_keytab_set"] = bool(connection.kerberos_keytab)  # never the keytab itself
    return snapshot


def _hadoop_auth_errors(connection: HadoopConnection) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if connection.kerberos_principal and not _KERBEROS_PRINCIPAL.fullmatch(connection.kerberos_principal):
        errors["kerberos_principal"] = ["A Kerberos principal such as canopy@EXAMPLE.COM."]
    if connection.kerberos_keytab:
        try:
            held = kerberos.keytab_principals_from_base64(connection.kerberos_keytab)
        except ValueError as error:
            errors["kerberos_keytab"] = [str(error)]
        else:
            principal = connection.kerberos_principal
            if principal and "kerberos_principal" not in errors and principal not in held:
                errors["kerberos_principal"] = [
                    f"The keytab has no key for {principal}; it holds {', '.join(held)}."
                ]
    if connection.auth == HadoopConnection.Auth.KERBEROS:
        if connection.kerberos_keytab and not connection.kerberos_principal:
            errors["kerberos_principal"] = [
                "The principal the keytab holds keys for, e.g. canopy@EXAMPLE.COM."
            ]
        if not kerberos.SPNEGO_ERRORS:
            errors["auth"] = ["Kerberos needs Canopy's [kerberos] extra (pip install 'canopy[kerberos]')."]
    return errors


def hadoop_connection_set(
    *, acting_user: AnyUser, cluster: Cluster, spec: HadoopConnectionSpec
) -> HadoopConnection:
    """Create or replace how Canopy reaches a Hadoop cluster, then push every tenant on it."""
    require_platform_admin(acting_user)
    if cluster.kind != Cluster.Kind.YARN:
        raise ValidationError({"cluster": [f"{cluster} is not a Hadoop cluster."]})
    errors: dict[str, list[str]] = {}
    with transaction.atomic():
        connection = HadoopConnection.objects.select_for_update().filter(cluster=cluster).first()
        before = _hadoop_snapshot(connection) if connection else None
        connection = connection or HadoopConnection(cluster=cluster)
        for name in (
            "rm_urls",
            "webhdfs_urls",
            "user",
            "mode",
            "auth",
            "directory_owner",
            "remainder_queue",
            "kerberos_principal",
        ):
            setattr(connection, name, (getattr(spec, name) or "").strip())
        connection.directory_permission = spec.directory_permission.strip()
        if spec.kerberos_keytab is not None:
            connection.kerberos_keytab = "".join(spec.kerberos_keytab.split())
        errors.update(_hadoop_auth_errors(connection))
        if connection.mode not in HadoopConnection.Mode.values:
            errors["mode"] = [f"Choose one of: {', '.join(HadoopConnection.Mode.values)}."]
        if connection.auth not in HadoopConnection.Auth.values:
            errors["auth"] = [f"Choose one of: {', '.join(HadoopConnection.Auth.values)}."]
        if connection.mode == HadoopConnection.Mode.API:
            for name, example in (("rm_urls", "http://rm1:8088"), ("webhdfs_urls", "http://nn1:9870")):
                urls = HadoopConnection._lines(getattr(connection, name))
                if not urls or not all(re.match(r"^https?://[^/\s]+", url) for url in urls):
                    errors[name] = [f"One URL a line, e.g. {example}."]
        if not re.fullmatch(r"[0-7]{3,4}", connection.directory_permission):
            errors["directory_permission"] = ["An octal permission such as 750."]
        if not connection.user:
            errors["user"] = [
                "The user Canopy acts as (a YARN admin and the HDFS superuser or a proxy user)."
            ]
        # Names written into HDFS (the directories' owner: a chown in hdfs-setup.sh, SETOWNER) and
        # into capacity-scheduler.xml's queue lists: the same rule as people's and groups' names.
        for name in ("user", "directory_owner"):
            if name not in errors and (problem := name_problem(getattr(connection, name))):
                errors[name] = [problem]
        if "." in connection.remainder_queue or name_problem(connection.remainder_queue):
            errors["remainder_queue"] = [
                "A queue name of letters, digits, '_' and '-', without dots, e.g. default."
            ]
        if errors:
            raise ValidationError(errors)
        connection.save()
        _connection_changed(acting_user, cluster, before=before, after=_hadoop_snapshot(connection))
    return connection


def _connection_changed(
    acting_user: AnyUser,
    cluster: Cluster,
    *,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """One audit row for a connection created, changed (`before` and `after`) or deleted (`after`
    None), and a push of every tenant on the cluster, in the caller's transaction."""
    if after is None:
        action, reason = "CONNECTION_DELETED", "CONNECTION_DELETED"
    else:
        action, reason = ("CONNECTION_UPDATED" if before else "CONNECTION_CREATED"), "CONNECTION_SET"
    audit(acting_user=acting_user, action=action, target=cluster, tenant=None, before=before, after=after)
    pushed = _tenants_on(cluster)
    if KUEUE_ENGINE in ((before or {}).get("quota_engine"), (after or {}).get("quota_engine")):
        pushed.append(CLUSTER_OWNER_ID)  # its own objects follow the connection (made, moved, removed)
    intent_record(tenant_ids=pushed, reason=reason)


def _tenants_on(cluster: Cluster) -> list[int]:
    allocated = Allocation.objects.filter(pool__cluster=cluster).values_list("tenant_id", flat=True)
    known = ClusterSyncStatus.objects.filter(cluster=cluster).values_list("sync__tenant_id", flat=True)
    return sorted(set(allocated) | set(known))


def connection_delete(*, acting_user: AnyUser, cluster: Cluster) -> None:
    """Forget how to reach a cluster (its Kubernetes or its Hadoop connection). Nothing on the
    cluster is touched; pushes stop (or go to the export backend if that is the default)."""
    require_platform_admin(acting_user)
    model = HadoopConnection if cluster.kind == Cluster.Kind.YARN else KubernetesConnection
    with transaction.atomic():
        connection = model.objects.select_for_update().filter(cluster=cluster).first()
        if connection is None:
            return
        if isinstance(connection, HadoopConnection):
            before = _hadoop_snapshot(connection)
        else:
            before = _connection_snapshot(connection)
        connection.delete()
        _connection_changed(acting_user, cluster, before=before, after=None)


# What "Test connection" can find, for every cluster alike: the state, its headline, and what to do.
CONNECTED = "connected"
EXPORT_ONLY = "export"
NOT_CONNECTED = "not_connected"
CREDENTIALS_REFUSED = "credentials_refused"
ANSWERED_WITH_AN_ERROR = "error"
CHECK_STATES = {
    CONNECTED: "Connected",
    EXPORT_ONLY: "Export only: nothing to reach",
    NOT_CONNECTED: "Not connected",
    UNREACHABLE: "Unreachable",
    TLS: "Certificate not trusted",
    CREDENTIALS_REFUSED: "Credentials refused",
    ANSWERED_WITH_AN_ERROR: "The cluster answered with an error",
}
_HINTS: dict[tuple[str, str], str] = {
    (EXPORT_ONLY, Cluster.Kind.KUBERNETES): "Canopy writes each tenant's manifests as files for a GitOps "
    "tool; connect the API server to push them itself.",
    (EXPORT_ONLY, Cluster.Kind.YARN): "Canopy writes capacity-scheduler.xml and hdfs-setup.sh to deploy "
    "by hand; connect the ResourceManager's mutation API and WebHDFS to push them itself.",
    (NOT_CONNECTED, Cluster.Kind.KUBERNETES): "Nothing is pushed to this cluster: connect it with a "
    "kubeconfig, or its API server URL, a token and its CA.",
    (NOT_CONNECTED, Cluster.Kind.YARN): "Nothing is pushed to this cluster: connect it with its "
    "ResourceManager and WebHDFS URLs.",
    (UNREACHABLE, Cluster.Kind.KUBERNETES): "Nothing answered: check the API server URL and port, and "
    "that Canopy's server can reach it (firewall, proxy).",
    (UNREACHABLE, Cluster.Kind.YARN): "Nothing answered: check the ResourceManager and WebHDFS URLs and "
    "ports, and that Canopy's server can reach them.",
    (TLS, Cluster.Kind.KUBERNETES): "The API server's certificate is not signed by the CA given: paste "
    "the cluster's CA certificate (PEM, the kubeconfig's certificate-authority-data decoded).",
    (TLS, Cluster.Kind.YARN): "The cluster's HTTPS certificate is not trusted by Canopy's server.",
    (CREDENTIALS_REFUSED, Cluster.Kind.KUBERNETES): "The API server refused Canopy's credentials: "
    "check the token (or the client certificate, or the kubeconfig's user) and its ClusterRole "
    "(deploy/clusterrole.yaml).",
    (CREDENTIALS_REFUSED, Cluster.Kind.YARN): "The cluster refused Canopy: check the user, or the "
    "Kerberos principal, its keytab, the KDC in krb5.conf and the URLs' host names.",
    (ANSWERED_WITH_AN_ERROR, Cluster.Kind.KUBERNETES): "The API server was reached and answered with "
    "the error above.",
    (ANSWERED_WITH_AN_ERROR, Cluster.Kind.YARN): "The cluster was reached and answered with the error above.",
}


@dataclass
class ConnectionCheck:
    """What "Test connection" found: `state` (one of CHECK_STATES), `message` (the server's version,
    or the error exactly as it came) and `hint` (what to do about it), the same for every cluster."""

    ok: bool
    backend: str
    version: str = ""
    message: str = ""
    state: str = CONNECTED
    hint: str = ""

    @property
    def headline(self) -> str:
        return CHECK_STATES[self.state]


def _failure_state(error: BackendError) -> str:
    if error.reach == SIGN_IN or error.status in (401, 403):
        return CREDENTIALS_REFUSED
    return error.reach or ANSWERED_WITH_AN_ERROR


def connection_test(*, acting_user: AnyUser, cluster: Cluster) -> ConnectionCheck:
    """Ask the cluster for its version ('v1.37.2'; a Hadoop cluster's ResourceManager and NameNode
    versions), or say why not: not connected, export only, unreachable, a certificate not trusted,
    credentials refused, or the cluster's own error, with what to do about it."""
    require_platform_admin(acting_user)
    connection: KubernetesConnection | HadoopConnection | None
    if cluster.kind == Cluster.Kind.YARN:
        connection = HadoopConnection.objects.filter(cluster=cluster).first()
    else:
        connection = KubernetesConnection.objects.filter(cluster=cluster).first()

    def check(ok: bool, state: str, backend: str = "", **found: str) -> ConnectionCheck:
        return ConnectionCheck(ok, backend, state=state, hint=_HINTS.get((state, cluster.kind), ""), **found)

    backend = backend_for(cluster, connection, quick=True)  # the first error as it is, not after retries
    if backend is None:
        return check(False, NOT_CONNECTED, message=f"Cluster {cluster.name} has no connection.")
    if isinstance(backend, ExportBackend | HadoopExportBackend):
        return check(True, EXPORT_ONLY, backend.name, message=f"Nothing to reach: {backend.describe()}.")
    try:
        with backend:
            version = backend.server_version()
    except BackendError as error:
        return check(False, _failure_state(error), backend.name, message=error.message)
    product = "" if cluster.kind == Cluster.Kind.YARN else "Kubernetes "
    return check(True, CONNECTED, backend.name, version=version, message=f"Connected: {product}{version}.")
