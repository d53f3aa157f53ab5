"""The kubeconfig download: a token minted through the TokenRequest API (or, on an OIDC cluster, a
kubelogin exec plugin), never stored; every download audited."""

from __future__ import annotations

import base64
import datetime
import re
from dataclasses import dataclass
from typing import Any

import yaml
from django.conf import settings
from django.db import transaction

from provisioning.backends.base import BackendError, ObjectMissing
from provisioning.backends.kubernetes import KubernetesBackend
from provisioning.desired.kubernetes import service_account_name
from provisioning.kubeconfigs import kubeconfig_document, oidc_login_exec
from provisioning.models import ClusterSyncStatus, KubernetesConnection, TenantSync
from provisioning.services.reconcile import backend_for
from tenants.audit import audit
from tenants.models import Cluster, Tenant
from tenants.permissions import Action, AnyUser, require


class NotProvisioned(Exception):
    """What a person asked for needs the tenant on a live cluster, and it is not (yet)."""


@dataclass
class IssuedKubeconfig:
    filename: str
    content: str
    namespace: str
    service_account: str
    expires_at: datetime.datetime | None  # None: no token in it (OIDC clusters: kubelogin signs in)


def _live_backend(tenant: Tenant, cluster: Cluster) -> tuple[KubernetesBackend, TenantSync]:
    if cluster.kind != Cluster.Kind.KUBERNETES:
        raise NotProvisioned(f"{cluster.name} is not a Kubernetes cluster.")
    backend = backend_for(cluster, KubernetesConnection.objects.filter(cluster=cluster).first())
    if not isinstance(backend, KubernetesBackend):
        raise NotProvisioned(
            f"Cluster {cluster.name} is not connected to Canopy, so there is no API server to give you access to."
        )
    status = (
        ClusterSyncStatus.objects.filter(sync__tenant_id=tenant.pk, cluster=cluster)
        .select_related("sync")
        .first()
    )
    if status is None or not status.provisioned:
        state = status.get_state_display().lower() if status else "not on this cluster"
        raise NotProvisioned(f"{tenant.name_path} is not on {cluster.name} yet ({state}).")
    return backend, status.sync


def _kubeconfig(
    cluster: Cluster, namespace: str, endpoint: Any, user_name: str, user: dict[str, Any]
) -> dict[str, Any]:
    """The file handed out: the document the help page shows (`kubeconfigs.kubeconfig_document`),
    with the cluster's CA."""
    return kubeconfig_document(
        cluster_name=cluster.name,
        namespace=namespace,
        server=endpoint.server,
        user_name=user_name,
        user=user,
        certificate_authority=base64.b64encode(endpoint.ca_data).decode() if endpoint.ca_data else None,
    )


def _comment_line(text: str) -> str:
    """`text` inside one line of a YAML comment: a line break (YAML 1.1 also breaks lines at NEL, LS
    and PS) would end the comment and start YAML, so control characters are shown as '?'."""
    return re.sub("[\x00-\x1f\x7f\x85\u2028\u2029]", "?", text)


def _kubeconfig_audit(
    acting_user: AnyUser, tenant: Tenant, cluster: Cluster, *, address: str, **details: str
) -> None:
    """The one audit row of a kubeconfig handed out: who, when, from which address, for which
    cluster and namespace. Never the token nor the OIDC client secret."""
    with transaction.atomic():
        audit(
            acting_user=acting_user,
            action="KUBECONFIG_ISSUED",
            target=tenant,
            tenant=tenant,
            after={"cluster": cluster.name, "address": address, **details},
        )


def _oidc_kubeconfig_issue(
    *,
    acting_user: AnyUser,
    tenant: Tenant,
    cluster: Cluster,
    connection: KubernetesConnection,
    address: str,
) -> IssuedKubeconfig:
    """On an OIDC cluster: no token, the person signs in with kubelogin; the cluster binds their
    user and groups (see `provisioning.desired.kubernetes`)."""
    backend, sync = _live_backend(tenant, cluster)
    try:
        endpoint = backend.user_endpoint()
    except BackendError as error:
        raise NotProvisioned(f"The cluster refused: {error.message}") from error
    username = acting_user.get_username()
    user_name = f"oidc-{service_account_name(username)}@{cluster.name}"
    kubeconfig = _kubeconfig(
        cluster, sync.namespace, endpoint, user_name, {"exec": oidc_login_exec(connection)}
    )
    _kubeconfig_audit(
        acting_user,
        tenant,
        cluster,
        address=address,
        namespace=sync.namespace,
        oidc_issuer_url=connection.oidc_issuer_url,
        oidc_user=f"{connection.oidc_username_prefix}{username}",
    )
    header = (
        f"# Kubeconfig for {_comment_line(username)} in {tenant.name_path} on {cluster.name}.\n"
        f"# It signs in with {_comment_line(connection.oidc_issuer_url)} through kubelogin: install it first\n"
        "# (kubectl krew install oidc-login); it opens a browser at the first kubectl command.\n"
    )
    return IssuedKubeconfig(
        filename=f"{cluster.name}-{sync.namespace}-{service_account_name(username)}.kubeconfig",
        content=header + yaml.safe_dump(kubeconfig, sort_keys=False),
        namespace=sync.namespace,
        service_account="",
        expires_at=None,
    )


def kubeconfig_issue(
    *, acting_user: AnyUser, tenant: Tenant, cluster: Cluster, address: str = ""
) -> IssuedKubeconfig:
    """A kubeconfig for the person's ServiceAccount in the tenant's namespace, with a token minted
    now through the TokenRequest API. The token is never stored; the download is audited with the
    address it was asked from. On a cluster whose connection has OIDC settings, a kubeconfig that
    signs in with `kubectl oidc-login` instead. A refusal (no right, or the tenant not on the
    cluster yet) changes nothing, like every refused call."""
    require(acting_user, Action.USE, tenant)
    connection = KubernetesConnection.objects.filter(cluster=cluster).first()
    if connection is not None and connection.oidc and cluster.kind == Cluster.Kind.KUBERNETES:
        return _oidc_kubeconfig_issue(
            acting_user=acting_user, tenant=tenant, cluster=cluster, connection=connection, address=address
        )
    backend, sync = _live_backend(tenant, cluster)
    account = service_account_name(acting_user.get_username())
    try:
        with backend:
            issued = backend.issue_token(
                namespace=sync.namespace,
                service_account=account,
                seconds=settings.CANOPY_KUBECONFIG_TOKEN_SECONDS,
            )
            endpoint = backend.user_endpoint()
    except ObjectMissing as error:
        raise NotProvisioned(
            f"You have no ServiceAccount in namespace {sync.namespace} on {cluster.name} yet; "
            f"it is created with the next push of {tenant.name_path}."
        ) from error
    except BackendError as error:
        raise NotProvisioned(f"The cluster refused: {error.message}") from error
    user_name = f"{account}@{cluster.name}"
    kubeconfig = _kubeconfig(cluster, sync.namespace, endpoint, user_name, {"token": issued.token})
    _kubeconfig_audit(
        acting_user,
        tenant,
        cluster,
        address=address,
        namespace=sync.namespace,
        service_account=account,
        expires_at=issued.expires_at.isoformat(),
    )
    header = (
        f"# Kubeconfig for {_comment_line(acting_user.get_username())} in {tenant.name_path} "
        f"on {cluster.name}.\n"
        f"# The token expires at {issued.expires_at.isoformat()}; download a new file then.\n"
    )
    return IssuedKubeconfig(
        filename=f"{cluster.name}-{sync.namespace}-{account}.kubeconfig",
        content=header + yaml.safe_dump(kubeconfig, sort_keys=False),
        namespace=sync.namespace,
        service_account=account,
        expires_at=issued.expires_at,
    )
