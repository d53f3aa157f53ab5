"""The Kubernetes backend: server-side apply through the official client.

Every object is applied with one fixed field manager (`canopy`) and `force=true`, as the
server-side apply documentation recommends for controllers that own their objects: the API server
merges, records ownership, and drops fields Canopy stops sending. No discovery round trips: the
kinds Canopy writes are known, so their paths are too.

Short faults (dropped connections, 429 with Retry-After, 5xx, 409) are retried by urllib3 inside
each request; what remains becomes a `BackendError` (transient or not) for the caller to retry
later with backoff.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import SERVICE_CERT_FILENAME, load_incluster_config
from kubernetes.config.kube_config import load_kube_config_from_dict

from provisioning.backends.base import (
    TLS,
    UNREACHABLE,
    Backend,
    BackendError,
    Endpoint,
    IssuedToken,
    ObjectMissing,
    ObjectRef,
    Reading,
    Scope,
    diff_object,
    owner_tenant,
)
from provisioning.desired.kubernetes import KIND_ORDER, MANAGED_BY, MANAGED_BY_LABEL, TENANT_ID_LABEL
from provisioning.desired.kueue import ADMISSION_API_VERSION, KUEUE_API_VERSION

FIELD_MANAGER = "canopy"  # never rename: ownership recorded under the old name would be orphaned
APPLY_PATCH = "application/apply-patch+yaml"
JSON_PATCH = "application/json-patch+json"
RETRIED_STATUSES = (409, 429, 500, 502, 503, 504)
PAGE_SIZE = 500  # objects per call when listing the whole cluster

# kind -> (apiVersion, plural, namespaced)
RESOURCES: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("v1", "namespaces", False),
    "ServiceAccount": ("v1", "serviceaccounts", True),
    "Role": ("rbac.authorization.k8s.io/v1", "roles", True),
    "RoleBinding": ("rbac.authorization.k8s.io/v1", "rolebindings", True),
    "ResourceQuota": ("v1", "resourcequotas", True),
    "LimitRange": ("v1", "limitranges", True),
    "NetworkPolicy": ("networking.k8s.io/v1", "networkpolicies", True),
    "PersistentVolume": ("v1", "persistentvolumes", False),
    "PersistentVolumeClaim": ("v1", "persistentvolumeclaims", True),
    # The Kueue engine (provisioning.desired.kueue)
    "ValidatingAdmissionPolicy": (ADMISSION_API_VERSION, "validatingadmissionpolicies", False),
    "ValidatingAdmissionPolicyBinding": (ADMISSION_API_VERSION, "validatingadmissionpolicybindings", False),
    "ResourceFlavor": (KUEUE_API_VERSION, "resourceflavors", False),
    "Cohort": (KUEUE_API_VERSION, "cohorts", False),
    "ClusterQueue": (KUEUE_API_VERSION, "clusterqueues", False),
    "LocalQueue": (KUEUE_API_VERSION, "localqueues", True),
}


class Mode:
    TOKEN = "token"  # nosec B105 # a connection mode's name, not a password
    CERTIFICATE = "certificate"
    KUBECONFIG = "kubeconfig"
    IN_CLUSTER = "in_cluster"


@dataclass(frozen=True)
class KubernetesAccess:
    """How to reach one API server, as plain values (decrypted by the caller, never stored here).

    `user_server` / `user_ca_data`: what people's kubeconfigs point at, when that differs from
    how Canopy reaches the cluster (in-cluster, or through a proxy)."""

    mode: str
    server: str = ""
    ca_data: str = ""
    token: str = ""
    client_certificate: str = ""
    client_key: str = ""
    kubeconfig: str = ""
    user_server: str = ""
    user_ca_data: str = ""
    timeout_seconds: float = 10.0
    retries: int = 3

    def as_kubeconfig(self) -> dict[str, Any]:
        if self.mode == Mode.KUBECONFIG:
            return check_kubeconfig(self.kubeconfig)
        cluster: dict[str, Any] = {"server": self.server}
        if self.ca_data:
            cluster["certificate-authority-data"] = _b64(self.ca_data)
        if self.mode == Mode.TOKEN:
            user: dict[str, Any] = {"token": self.token}
        else:
            user = {
                "client-certificate-data": _b64(self.client_certificate),
                "client-key-data": _b64(self.client_key),
            }
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "cluster", "cluster": cluster}],
            "users": [{"name": "canopy", "user": user}],
            "contexts": [{"name": "canopy", "context": {"cluster": "cluster", "user": "canopy"}}],
            "current-context": "canopy",
        }


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


_FORBIDDEN_USER_KEYS = {
    "exec": "runs a command on the Canopy server",
    "auth-provider": "needs a login plugin",
    "tokenFile": "names a file on the Canopy server",
    "client-certificate": "names a file; embed it as client-certificate-data",
    "client-key": "names a file; embed it as client-key-data",
}


# A kubeconfig nests a few levels; PyYAML builds nested collections by recursion, so a document
# nested about a thousand levels deep would end in a RecursionError. Its parser's events do not recurse.
KUBECONFIG_MAX_DEPTH = 32


def _yaml_nesting_deeper_than(text: str, limit: int) -> bool:
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > limit:
                return True
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return False


def check_kubeconfig(text: str) -> dict[str, Any]:
    """Parse an uploaded kubeconfig and refuse what Canopy will not use: a kubeconfig that runs
    commands or reads files on the server. Returns it reduced to its current context."""
    try:
        if _yaml_nesting_deeper_than(text, KUBECONFIG_MAX_DEPTH):
            raise ValueError(f"A kubeconfig nested deeper than {KUBECONFIG_MAX_DEPTH} levels is refused.")
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(f"This is not YAML: {error}") from error
    if not isinstance(data, dict):
        raise ValueError("A kubeconfig is a YAML mapping with clusters, users and contexts.")
    current = data.get("current-context")
    contexts = {
        c.get("name"): c.get("context") or {} for c in data.get("contexts") or [] if isinstance(c, dict)
    }
    if not current or current not in contexts:
        raise ValueError("The kubeconfig needs a current-context that names one of its contexts.")
    context = contexts[current]
    clusters = {
        c.get("name"): c.get("cluster") or {} for c in data.get("clusters") or [] if isinstance(c, dict)
    }
    users = {u.get("name"): u.get("user") or {} for u in data.get("users") or [] if isinstance(u, dict)}
    cluster, user = clusters.get(context.get("cluster")), users.get(context.get("user"))
    if not cluster or not cluster.get("server"):
        raise ValueError(f"Context {current} names no cluster with a server URL.")
    if user is None:
        raise ValueError(f"Context {current} names no user.")
    if "certificate-authority" in cluster:
        raise ValueError("certificate-authority names a file; embed it as certificate-authority-data.")
    for key, why in _FORBIDDEN_USER_KEYS.items():
        if key in user:
            raise ValueError(
                f"The user's {key} {why}; Canopy accepts a token or an embedded client certificate."
            )
    if not user.get("token") and not (user.get("client-certificate-data") and user.get("client-key-data")):
        raise ValueError("The user needs a token or client-certificate-data and client-key-data.")
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": cluster}],
        "users": [{"name": "canopy", "user": user}],
        "contexts": [{"name": "canopy", "context": {"cluster": "cluster", "user": "canopy"}}],
        "current-context": "canopy",
    }


def _collection(kind: str, namespace: str | None = None) -> str:
    api_version, plural, namespaced = RESOURCES[kind]
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    if namespaced and namespace:
        base += f"/namespaces/{quote(namespace, safe='')}"
    return f"{base}/{plural}"


def _path(ref: ObjectRef) -> str:
    return f"{_collection(ref.kind, ref.namespace)}/{quote(ref.name, safe='')}"


def _pointer(path: tuple[str, ...]) -> str:
    return "/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in path)


def _error(status: int, body: bytes | str | None, reason: str = "") -> BackendError:
    """The API server's own message (from its Status object), and whether retrying may help."""
    text = body.decode(errors="replace") if isinstance(body, bytes) else (body or "")
    message = ""
    with contextlib.suppress(ValueError, AttributeError):
        message = json.loads(text).get("message", "")
    message = message or text.strip()[:500] or reason or "no message"
    error_type = ObjectMissing if status == 404 else BackendError
    return error_type(
        f"HTTP {status} from the API server: {message}", status=status, transient=status in RETRIED_STATUSES
    )


def _reach(error: Exception) -> str:
    """TLS when the handshake failed (urllib3 wraps it in MaxRetryError when retries run out),
    otherwise UNREACHABLE: refused, timed out, reset, no such host."""
    cause = error.reason if isinstance(error, urllib3.exceptions.MaxRetryError) else error
    if isinstance(cause, urllib3.exceptions.SSLError | ssl.SSLError):
        return TLS
    return UNREACHABLE


class KubernetesBackend(Backend):
    name = "kubernetes"

    def __init__(self, access: KubernetesAccess) -> None:
        self.access = access
        self._api: k8s.ApiClient | None = None

    def describe(self) -> str:
        return f"Kubernetes API server {self.access.server or 'in-cluster'}"

    # -- the client

    def _configuration(self) -> k8s.Configuration:
        configuration = k8s.Configuration()
        try:
            if self.access.mode == Mode.IN_CLUSTER:
                load_incluster_config(client_configuration=configuration)
            else:
                load_kube_config_from_dict(
                    self.access.as_kubeconfig(), client_configuration=configuration, persist_config=False
                )
        except (ConfigException, ValueError, OSError) as error:
            raise BackendError(f"The connection settings cannot be used: {error}") from error
        retries = self.access.retries
        configuration.retries = urllib3.Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            backoff_factor=0.2,
            backoff_max=2.0,
            status_forcelist=RETRIED_STATUSES,
            allowed_methods=None,  # every call Canopy makes is safe to repeat (apply, delete, tokens)
            raise_on_status=False,
            respect_retry_after_header=True,
        )
        return configuration

    @property
    def api(self) -> k8s.ApiClient:
        if self._api is None:
            self._api = k8s.ApiClient(self._configuration())
        return self._api

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        api = self.api
        method, url, headers, body, _ = api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        host = api.configuration.host
        try:
            response = api.call_api(
                method, url, header_params=headers, body=body, _request_timeout=self.access.timeout_seconds
            )
            data = response.read()
        except k8s.ApiException as error:
            if error.status:
                raise _error(error.status, error.body, error.reason or "") from error
            reach = TLS if str(error.reason).startswith("SSLError") else UNREACHABLE  # the client's wording
            raise BackendError(
                f"Cannot reach the API server at {host}: {error.reason}", transient=True, reach=reach
            ) from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise BackendError(
                f"Cannot reach the API server at {host}: {error}", transient=True, reach=_reach(error)
            ) from error
        if not 200 <= response.status < 300:
            raise _error(response.status, data, response.reason or "")
        return json.loads(data) if data else {}

    # -- the five primitives

    def list_owned(self, scope: Scope) -> list[dict[str, Any]]:
        return self.read_scope(scope).owned

    def read_scope(self, scope: Scope) -> Reading:
        """The tenant's objects of the scope's kinds: its namespace read by name and the namespaced
        kinds listed inside it (its namespace is fixed for life, see TenantSync), so each read costs
        what the tenant has, not what the cluster has; the kinds of `scope.by_name` read by the
        namespace's name; other cluster-wide kinds by label. No namespace, nothing in it."""
        selector = f"{MANAGED_BY_LABEL}={MANAGED_BY},{TENANT_ID_LABEL}={scope.tenant_id}"
        reading = Reading([])

        def read_named(kind: str) -> dict[str, Any] | None:
            ref = ObjectRef(kind, scope.namespace, api_version=RESOURCES[kind][0])
            obj = reading.by_name[ref] = self.read(ref)
            if obj is not None and owner_tenant(obj) == str(scope.tenant_id):
                reading.owned.append(obj)
            return obj

        wants_namespace = scope.namespace and "Namespace" in scope.kinds
        namespace = read_named("Namespace") if wants_namespace else None
        for kind in scope.kinds:
            api_version, _, namespaced = RESOURCES[kind]
            if kind == "Namespace" or (namespaced and namespace is None):
                continue
            if kind in scope.by_name and scope.namespace:
                read_named(kind)
                continue
            path = _collection(kind, scope.namespace if namespaced else None)
            listed = self._request("GET", path, query=[("labelSelector", selector)])
            for item in listed.get("items") or []:
                reading.owned.append({"apiVersion": api_version, "kind": kind, **item})
        return reading

    def list_pages(
        self, path: str, query: list[tuple[str, str]] | None = None, *, page_size: int = PAGE_SIZE
    ) -> Iterator[dict[str, Any]]:
        """A list call per page of `page_size` objects (`limit` / `continue`), each page as listed."""
        resume_from = ""
        while True:
            paged = [*(query or []), ("limit", str(page_size))] + (
                [("continue", resume_from)] if resume_from else []
            )
            listed = self._request("GET", path, query=paged)
            yield listed
            resume_from = (listed.get("metadata") or {}).get("continue") or ""
            if not resume_from:
                return

    def list_owned_by_tenant(self, kinds: tuple[str, ...] = KIND_ORDER) -> dict[int, list[dict[str, Any]]]:
        """One paged list per kind for the whole cluster."""
        owned: dict[int, list[dict[str, Any]]] = {}
        selector = [("labelSelector", f"{MANAGED_BY_LABEL}={MANAGED_BY}")]
        for kind in kinds:
            api_version = RESOURCES[kind][0]
            for listed in self.list_pages(_collection(kind), selector):
                for item in listed.get("items") or []:
                    obj = {"apiVersion": api_version, "kind": kind, **item}
                    tenant_id = owner_tenant(obj)
                    if tenant_id and tenant_id.isdigit():
                        owned.setdefault(int(tenant_id), []).append(obj)
        return owned

    def read(self, ref: ObjectRef) -> dict[str, Any] | None:
        try:
            obj = self._request("GET", _path(ref))
        except ObjectMissing:
            return None
        return {"apiVersion": RESOURCES[ref.kind][0], "kind": ref.kind, **obj}

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        ref = ObjectRef.of(obj)
        live = self._request(
            "PATCH",
            _path(ref),
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            body=obj,
            content_type=APPLY_PATCH,
        )
        # Keys of ours another manager added by hand (`kubectl edit` of a quota) survive an apply;
        # remove them explicitly so the object ends exactly as wanted.
        extra = [change.path for change in diff_object(obj, live) if change.desired is None]
        if extra:
            operations = [{"op": "remove", "path": _pointer(path)} for path in extra]
            live = self._request("PATCH", _path(ref), body=operations, content_type=JSON_PATCH)
        return live

    def delete(self, ref: ObjectRef) -> None:
        try:
            self._request("DELETE", _path(ref), query=[("propagationPolicy", "Background")])
        except ObjectMissing:
            return

    # -- abilities

    def server_version(self) -> str:
        return str(self._request("GET", "/version").get("gitVersion", "unknown"))

    def active_pods(self, namespace: str) -> int | None:
        listed = self._request(
            "GET",
            f"/api/v1/namespaces/{quote(namespace, safe='')}/pods",
            query=[("fieldSelector", "status.phase!=Succeeded,status.phase!=Failed"), ("limit", "500")],
        )
        remaining = (listed.get("metadata") or {}).get("remainingItemCount") or 0
        return len(listed.get("items") or []) + int(remaining)

    def issue_token(self, *, namespace: str, service_account: str, seconds: int) -> IssuedToken:
        """A bound token for the ServiceAccount through the TokenRequest API. The server may shorten
        the lifetime, so the expiry is read from its answer."""
        path = (
            f"/api/v1/namespaces/{quote(namespace, safe='')}/serviceaccounts/"
            f"{quote(service_account, safe='')}/token"
        )
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": seconds},
        }
        status = self._request("POST", path, body=body, content_type="application/json").get("status") or {}
        token, expiry = status.get("token"), status.get("expirationTimestamp")
        if not token or not expiry:
            raise BackendError("The API server answered the token request without a token.")
        expires_at = datetime.datetime.fromisoformat(expiry.replace("Z", "+00:00"))
        return IssuedToken(token=token, expires_at=expires_at)

    def user_endpoint(self) -> Endpoint:
        access = self.access
        server, ca = access.user_server, access.user_ca_data
        if access.mode == Mode.KUBECONFIG:
            cluster = check_kubeconfig(access.kubeconfig)["clusters"][0]["cluster"]
            server = server or cluster["server"]
            if not ca and cluster.get("certificate-authority-data"):
                ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
        elif access.mode == Mode.IN_CLUSTER:
            if not server:
                raise BackendError(
                    "This cluster is reached in-cluster; set the API server URL people use "
                    "(user server URL) on its connection before kubeconfigs can be handed out."
                )
            if not ca and Path(SERVICE_CERT_FILENAME).is_file():
                ca = Path(SERVICE_CERT_FILENAME).read_text()
        server = server or access.server
        ca = ca or access.ca_data
        return Endpoint(server=server, ca_data=ca.encode() if ca else None)
