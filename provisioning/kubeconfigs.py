"""What a person's kubeconfig looks like and how to use it (issue 18, point 5): the document the
download writes (`kubeconfig_document`, `oidc_login_exec`; `services.kubeconfig_issue` mints the
token and audits) and the help page linked from My access and the Clusters tab.

On a connected cluster the page shows the file a download gives (the real API server, namespace,
ServiceAccount and context; the token is minted at the download, never shown or stored here). On a
cluster Canopy only exports manifests for (the export backend: the embedded default) there is no API
server to ask for a token, so the page shows the same document as an example, clearly marked, with
the placeholders a cluster admin fills in once the exported manifests are applied.

The namespace is `selectors.tenant_namespaces`'s, as on every other page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from django.conf import settings

from provisioning.backends.base import BackendError
from provisioning.backends.kubernetes import KubernetesBackend
from provisioning.desired.kubernetes import KUEUE_ENGINE, RESOURCE_QUOTA_ENGINE, service_account_name
from provisioning.models import ClusterSyncStatus, KubernetesConnection
from tenants.models import Cluster, Tenant
from tenants.permissions import AnyUser


def kubeconfig_document(
    *,
    cluster_name: str,
    namespace: str,
    server: str,
    user_name: str,
    user: dict[str, Any],
    certificate_authority: str | None,
) -> dict[str, Any]:
    """A kubeconfig with one cluster, one user and one context whose namespace is the tenant's: the
    file `services.kubeconfig_issue` hands out, and what the help page shows of it.
    `certificate_authority`: the CA's base64 text, or what the page says in its place."""
    cluster_entry: dict[str, Any] = {"server": server}
    if certificate_authority:
        cluster_entry["certificate-authority-data"] = certificate_authority
    context = f"{cluster_name}-{namespace}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": cluster_entry}],
        "users": [{"name": user_name, "user": user}],
        "contexts": [
            {"name": context, "context": {"cluster": cluster_name, "user": user_name, "namespace": namespace}}
        ],
        "current-context": context,
    }


def oidc_login_exec(connection: KubernetesConnection) -> dict[str, Any]:
    """The standard `kubectl oidc-login` (kubelogin) exec credential plugin for an OIDC cluster."""
    args = [
        "oidc-login",
        "get-token",
        f"--oidc-issuer-url={connection.oidc_issuer_url}",
        f"--oidc-client-id={connection.oidc_client_id}",
    ]
    if connection.oidc_client_secret:
        args.append(f"--oidc-client-secret={connection.oidc_client_secret}")
    args += [f"--oidc-extra-scope={scope}" for scope in connection.oidc_extra_scopes.split()]
    return {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": "kubectl",
        "args": args,
        "interactiveMode": "IfAvailable",
    }


def connection_of(cluster: Cluster) -> KubernetesConnection | None:
    """The cluster's connection, as `selectors.kubernetes_clusters_by_tenant` joins it."""
    return getattr(cluster, "kubernetes_connection", None)


def is_live(cluster: Cluster) -> bool:
    """Canopy reaches the cluster's API server, so it can mint a kubeconfig; the others only export."""
    connection = connection_of(cluster)
    return connection is not None and connection.mode != KubernetesConnection.Mode.EXPORT


def hours(seconds: int) -> str:
    """'8 hours', '1 hour', '90 minutes'."""
    if seconds % 3600:
        return f"{seconds // 60} minutes"
    return f"{seconds // 3600} hour" + ("" if seconds == 3600 else "s")


@dataclass(frozen=True)
class KubeconfigGuide:
    """Everything the help page says about one person's kubeconfig for one tenant on one cluster."""

    tenant: Tenant
    cluster: Cluster
    namespace: str
    service_account: str
    context: str
    filename: str
    live: bool
    oidc: bool
    quota_engine: str
    status: ClusterSyncStatus | None
    document: str  # the YAML the page shows; not live: the example, offered as a file too
    token_lifetime: str
    server_problem: str = ""  # why the real API server URL is not known (a connection to fix)

    @property
    def kueue(self) -> bool:
        return self.quota_engine == KUEUE_ENGINE

    @property
    def export_folder(self) -> str:
        """Where the export backend writes this namespace's manifests, as the Clusters tab names it."""
        return f"{settings.CANOPY_EXPORT_DIR.rstrip('/')}/{self.cluster.name}/{self.namespace}/"

    def example_file(self) -> str:
        """The example as a file: a header that says it is one and what to fill in, then the YAML."""
        return (
            f"# EXAMPLE, not a working kubeconfig: {self.cluster.name} is not connected to Canopy\n"
            "# (the export backend writes its manifests as files), so Canopy cannot mint a token.\n"
            "# Once the manifests are applied, replace the server with the cluster's API server URL and the\n"
            f"# token with one of ServiceAccount {self.service_account} in namespace {self.namespace}:\n"
            f"#   kubectl create token {self.service_account} -n {self.namespace} --duration={self.token_lifetime_flag}\n"
            + self.document
        )

    @property
    def token_lifetime_flag(self) -> str:
        """The lifetime as kubectl's --duration takes it: '8h', '90m', '45s'."""
        seconds = settings.CANOPY_KUBECONFIG_TOKEN_SECONDS
        if seconds % 3600 == 0:
            return f"{seconds // 3600}h"
        return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def _masked_exec(connection: KubernetesConnection) -> dict[str, Any]:
    """The kubelogin exec of an OIDC cluster, without the client secret (it is in the download)."""
    plugin = oidc_login_exec(connection)
    plugin["args"] = [
        "--oidc-client-secret=<in the file you download>" if arg.startswith("--oidc-client-secret=") else arg
        for arg in plugin["args"]
    ]
    return plugin


def kubeconfig_guide(
    *,
    user: AnyUser,
    tenant: Tenant,
    cluster: Cluster,
    namespace: str,
    status: ClusterSyncStatus | None,
) -> KubeconfigGuide:
    """The help page's content for `user` in `tenant` on `cluster` (a Kubernetes cluster the tenant
    has a namespace on, its connection joined; `namespace` from `selectors.tenant_namespaces`). No
    query and no call to the cluster: the API server's URL comes from the connection's settings."""
    account = service_account_name(user.get_username())
    connection = connection_of(cluster)
    live = is_live(cluster)
    oidc = bool(live and connection is not None and connection.oidc)
    lifetime = hours(settings.CANOPY_KUBECONFIG_TOKEN_SECONDS)
    server, authority, problem = f"https://<API server of {cluster.name}>", None, ""
    if live and connection is not None:
        try:
            endpoint = KubernetesBackend(connection.access()).user_endpoint()
        except (BackendError, ValueError) as error:
            problem = getattr(error, "message", str(error))
        else:
            server = endpoint.server
            # Long and the same for everyone: the page says where it is, the file holds it.
            authority = (
                "<the cluster's CA certificate, base64: in the file you download>"
                if endpoint.ca_data
                else None
            )
    if oidc and connection is not None:
        user_name, credentials = f"oidc-{account}@{cluster.name}", {"exec": _masked_exec(connection)}
    elif live:
        user_name, credentials = (
            f"{account}@{cluster.name}",
            {"token": f"<minted when you download: valid {lifetime}>"},
        )
    else:
        user_name = f"{account}@{cluster.name}"
        credentials = {
            "token": f"<a token of ServiceAccount {account}: kubectl create token {account} -n {namespace}>"
        }
    document = kubeconfig_document(
        cluster_name=cluster.name,
        namespace=namespace,
        server=server,
        user_name=user_name,
        user=credentials,
        certificate_authority=authority,
    )
    return KubeconfigGuide(
        tenant=tenant,
        cluster=cluster,
        namespace=namespace,
        service_account=account,
        context=f"{cluster.name}-{namespace}",
        filename=f"{cluster.name}-{namespace}-{account}.kubeconfig",
        live=live,
        oidc=oidc,
        quota_engine=connection.quota_engine if connection is not None else RESOURCE_QUOTA_ENGINE,
        status=status,
        document=yaml.safe_dump(document, sort_keys=False, allow_unicode=True),
        token_lifetime=lifetime,
        server_problem=problem,
    )
