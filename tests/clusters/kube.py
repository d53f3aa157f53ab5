"""A real Kubernetes control plane for Canopy's tests: etcd, kube-apiserver and
kube-controller-manager, built from source by ``kubernetes/build.sh`` and run on loopback.

No scheduler and no kubelet: pods are admitted (quota, service accounts, RBAC all real) but
never run. Set ``CANOPY_TEST_KUBECONFIG`` to use an existing cluster instead.

Command line::

    python -m tests.clusters.kube up     # start, print the kubeconfig path, wait for Ctrl-C
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

import kubernetes.client
import kubernetes.config
import kubernetes.utils
import urllib3
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.clusters.processes import stop_process

GO_MODULE_DIR = Path(__file__).resolve().parent / "kubernetes"
BUILD_SCRIPT = GO_MODULE_DIR / "build.sh"
ENV_EXTERNAL_KUBECONFIG = "CANOPY_TEST_KUBECONFIG"

# Exactly the controllers the portal relies on; names from
# cmd/kube-controller-manager/names/controller_names.go of the pinned release.
CONTROLLERS = (
    "resourcequota-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "garbage-collector-controller",
)
# What build.sh builds, in the order its stamp names them.
BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
ADMIN_USER = "canopy-admin"

KubeconfigSource = dict[str, Any] | str | os.PathLike[str]


class KubeClusterError(RuntimeError):
    """The test cluster could not be built or started."""


# --------------------------------------------------------------------------- versions / build


def pinned_versions() -> tuple[str, str]:
    """Return (kubernetes_version, etcd_version) pinned in ``kubernetes/go.mod``."""
    wanted = {"k8s.io/kubernetes": "", "go.etcd.io/etcd/server/v3": ""}
    for line in (GO_MODULE_DIR / "go.mod").read_text().splitlines():
        fields = line.split()
        if fields[:1] == ["require"]:
            fields = fields[1:]
        if len(fields) >= 2 and fields[0] in wanted and fields[1].startswith("v"):
            wanted[fields[0]] = fields[1]
    k8s, etcd = wanted["k8s.io/kubernetes"], wanted["go.etcd.io/etcd/server/v3"]
    if not k8s or not etcd:
        raise KubeClusterError(f"cannot find the pinned versions in {GO_MODULE_DIR / 'go.mod'}")
    return k8s, etcd


def binary_dir() -> Path:
    """Where build.sh puts the binaries (same layout as build.sh computes)."""
    cache = os.environ.get("CANOPY_CACHE_DIR") or str(Path.home() / ".cache" / "canopy")
    return Path(cache) / "kubernetes" / pinned_versions()[0] / "bin"


def ensure_binaries() -> Path:
    """Return the bin directory, running build.sh first if the binaries are missing."""
    bin_dir = binary_dir()
    k8s, etcd = pinned_versions()
    stamp = bin_dir / "BUILD-INFO"
    built = all((bin_dir / name).is_file() for name in BINARIES)
    # The same text build.sh writes and compares.
    want_stamp = f"kubernetes={k8s} etcd={etcd} binaries={','.join(BINARIES)}"
    if built and stamp.is_file() and stamp.read_text().strip() == want_stamp:
        return bin_dir
    print(
        f"kube: building Kubernetes {k8s} and etcd {etcd} (takes many minutes the first time)",
        file=sys.stderr,
    )
    # build.sh's progress goes to our stderr so a long first build is visibly alive.
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
    if result.returncode != 0:
        raise KubeClusterError(f"{BUILD_SCRIPT} failed with exit code {result.returncode}")
    return Path(result.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- kubeconfig helpers


def client_from_kubeconfig(kubeconfig: KubeconfigSource) -> kubernetes.client.ApiClient:
    """An ApiClient for a kubeconfig given as a dict or a file path (any user, any auth)."""
    if isinstance(kubeconfig, dict):
        return kubernetes.config.new_client_from_config_dict(config_dict=kubeconfig)
    return kubernetes.config.new_client_from_config(config_file=os.fspath(kubeconfig))


def token_kubeconfig(
    server: str, ca_data: bytes | None, token: str, *, user: str = "user", namespace: str = "default"
) -> dict[str, Any]:
    """A kubeconfig dict that authenticates with a bearer token (e.g. from TokenRequest)."""
    cluster: dict[str, Any] = {"server": server}
    if ca_data:
        cluster["certificate-authority-data"] = base64.b64encode(ca_data).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "canopy-test", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {"name": user, "context": {"cluster": "canopy-test", "user": user, "namespace": namespace}}
        ],
        "current-context": user,
    }


def _current_cluster_entry(kubeconfig: dict[str, Any], base_dir: Path) -> tuple[str, bytes | None]:
    """(server, CA PEM or None) of the kubeconfig's current context."""
    contexts = {c["name"]: c["context"] for c in kubeconfig.get("contexts") or []}
    clusters = {c["name"]: c["cluster"] for c in kubeconfig.get("clusters") or []}
    context = contexts[kubeconfig["current-context"]]
    cluster = clusters[context["cluster"]]
    if "certificate-authority-data" in cluster:
        ca: bytes | None = base64.b64decode(cluster["certificate-authority-data"])
    elif "certificate-authority" in cluster:
        ca = (base_dir / cluster["certificate-authority"]).read_bytes()
    else:
        ca = None
    return cluster["server"], ca


class KubeCluster(Protocol):
    """What tests may rely on, whether the cluster is started here or external."""

    kubeconfig_path: Path
    kubeconfig: dict[str, Any]
    server: str
    ca_data: bytes | None
    expected_version: str | None

    def admin_client(self) -> kubernetes.client.ApiClient: ...
    def client_for(self, kubeconfig: KubeconfigSource) -> kubernetes.client.ApiClient: ...
    def token_kubeconfig(self, token: str, *, user: str = ..., namespace: str = ...) -> dict[str, Any]: ...
    def stop(self) -> None: ...


# Canopy's own ServiceAccount and ClusterRole, as deploy/clusterrole.yaml defines them.
CANOPY_RBAC = Path(__file__).resolve().parents[2] / "deploy" / "clusterrole.yaml"
CANOPY_SERVICE_ACCOUNT_USER = "system:serviceaccount:canopy:canopy"


def canopy_token(cluster: KubeCluster) -> str:
    """deploy/clusterrole.yaml applied as the cluster admin (what is there already is kept), then a
    day-long token of its `canopy` ServiceAccount: what Canopy connects with in tests and benchmarks."""
    documents = list(yaml.safe_load_all(CANOPY_RBAC.read_text()))
    with cluster.admin_client() as api:
        for document in documents:
            try:
                kubernetes.utils.create_from_dict(api, document)
            except kubernetes.utils.FailToCreateError as error:  # already there on an external cluster
                if any(failure.status != 409 for failure in error.api_exceptions):
                    raise
        minted = kubernetes.client.CoreV1Api(api).create_namespaced_service_account_token(
            "canopy",
            "canopy",
            kubernetes.client.AuthenticationV1TokenRequest(
                spec=kubernetes.client.V1TokenRequestSpec(audiences=[], expiration_seconds=86400)
            ),
        )
    return minted.status.token


class _ClientMixin:
    kubeconfig: dict[str, Any]
    server: str
    ca_data: bytes | None

    def admin_client(self) -> kubernetes.client.ApiClient:
        """A new ApiClient acting as the cluster admin; close it when done."""
        return client_from_kubeconfig(self.kubeconfig)

    def client_for(self, kubeconfig: KubeconfigSource) -> kubernetes.client.ApiClient:
        """A new ApiClient for any kubeconfig (dict or path) against this cluster."""
        return client_from_kubeconfig(kubeconfig)

    def token_kubeconfig(
        self, token: str, *, user: str = "user", namespace: str = "default"
    ) -> dict[str, Any]:
        """A kubeconfig for this cluster authenticating with ``token``."""
        return token_kubeconfig(self.server, self.ca_data, token, user=user, namespace=namespace)


class ExternalKubeCluster(_ClientMixin):
    """An existing cluster named by a kubeconfig file; start/stop do nothing to it."""

    expected_version: str | None = None

    def __init__(self, kubeconfig_path: str | os.PathLike[str]) -> None:
        self.kubeconfig_path = Path(kubeconfig_path).expanduser().resolve()
        self.kubeconfig = yaml.safe_load(self.kubeconfig_path.read_text())
        self.server, self.ca_data = _current_cluster_entry(self.kubeconfig, self.kubeconfig_path.parent)

    def start(self) -> ExternalKubeCluster:
        return self

    def stop(self) -> None:
        pass


# --------------------------------------------------------------------------- PKI


def _free_port() -> int:
    # The port can in principle be taken again before the server binds it; on a test
    # machine that race is rare enough, and a start failure says so in the logs.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _new_key() -> ec.EllipticCurvePrivateKey:
    # P-256 instead of RSA: key generation is instant and Kubernetes accepts it everywhere.
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _issue(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    *,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    server_names: list[str] | None = None,
    server_ips: list[str] | None = None,
    client: bool = False,
    days: int = 7,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    is_ca = issuer is None
    issuer_name, signing_key = (subject, key) if issuer is None else (issuer[0].subject, issuer[1])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False
        )
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [ExtendedKeyUsageOID.SERVER_AUTH]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if server_names or server_ips:
        alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in server_names or []]
        alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in server_ips or []]
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


# --------------------------------------------------------------------------- the local cluster


def _die_with_parent() -> None:
    # Runs in the child before exec: ask Linux to SIGKILL it if the test process dies
    # without calling stop() (killed runner, OOM, a second Ctrl-C), so no control plane
    # outlives the tests. SIGKILL, not SIGTERM: the apiserver's graceful shutdown can hang
    # when etcd goes away at the same moment. PR_SET_PDEATHSIG fires when the *thread* that
    # started the child exits, so start() belongs on a long-lived thread (pytest's and the
    # CLI's main thread).
    PR_SET_PDEATHSIG = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class KubeTestCluster(_ClientMixin):
    """etcd + kube-apiserver + kube-controller-manager on loopback, in a temporary directory.

    ``start()`` builds the binaries if needed (see ``kubernetes/build.sh``), creates a CA, the
    apiserver's serving certificate, an admin client certificate (CN=canopy-admin,
    O=system:masters) and a service-account signing key, starts the three processes on free
    loopback ports and returns once the apiserver is ready and the controllers work (the
    ``default`` ServiceAccount exists). ``stop()`` ends every process it started, even after
    a failed start, and removes the directory unless ``keep_workdir`` is true.

    Attributes once started: ``kubeconfig_path`` and ``kubeconfig`` (admin, with embedded
    certificates), ``server`` (https URL), ``ca_data`` (CA certificate PEM, also the client
    CA), ``expected_version`` (the pinned Kubernetes version), ``workdir`` (logs are
    ``<workdir>/logs/<process>.log``).

    With ``audit_users``, the apiserver writes an audit log (``audit_log``, JSON lines): one event
    per request of those users, when its answer is complete (what a benchmark counts calls from,
    with nothing in between client and server).

    Usable as a context manager. Subclasses add processes by extending ``_start_components``
    (``tests/clusters/kueue.py``).
    """

    # kube-controller-manager's --controllers; a subclass may run more.
    controllers: tuple[str, ...] = CONTROLLERS
    # More kube-controller-manager flags a subclass needs.
    controller_manager_flags: tuple[str, ...] = ()

    def __init__(
        self, *, keep_workdir: bool = False, start_timeout: float = 180.0, audit_users: tuple[str, ...] = ()
    ) -> None:
        self.keep_workdir = keep_workdir
        self.start_timeout = start_timeout
        self.audit_users = audit_users
        self.audit_log: Path | None = None
        k8s_version, self.etcd_version = pinned_versions()
        self.expected_version: str | None = k8s_version
        self.workdir: Path | None = None
        self.kubeconfig_path = Path()
        self.kubeconfig: dict[str, Any] = {}
        self.server = ""
        self.ca_data: bytes | None = None
        self._admin_cert = b""
        self._admin_key = b""
        self._ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}

    def __enter__(self) -> KubeTestCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- lifecycle

    def start(self) -> KubeTestCluster:
        if self._processes:
            raise KubeClusterError("cluster already started")
        bin_dir = ensure_binaries()
        self.workdir = Path(tempfile.mkdtemp(prefix="canopy-kube-"))
        deadline = time.monotonic() + self.start_timeout
        try:
            self._write_pki()
            self._start_components(bin_dir, deadline)
        except BaseException as error:
            details = self._log_tails() if isinstance(error, KubeClusterError) else ""
            self.stop()
            if details:
                raise KubeClusterError(f"{error}\n{details}") from error
            raise
        return self

    def stop(self) -> None:
        """Terminate all processes (controllers first, etcd last); safe to call repeatedly."""
        for name, process in reversed(list(self._processes.items())):
            stop_process(process, timeout=15)
            self._processes.pop(name)
        for log in self._logs.values():
            log.close()
        self._logs.clear()
        if self.workdir and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def _start_components(self, bin_dir: Path, deadline: float) -> None:
        """Start the processes in order, each ready before the next; all must be ready by ``deadline``."""
        etcd_url = self._start_etcd(bin_dir, deadline)
        self._start_apiserver(bin_dir, etcd_url, deadline)
        self._start_controller_manager(bin_dir, deadline)

    def running(self) -> bool:
        return bool(self._processes) and all(p.poll() is None for p in self._processes.values())

    # -- steps

    def _path(self, name: str) -> Path:
        assert self.workdir is not None
        return self.workdir / name

    def _write_pki(self) -> None:
        pki = self._path("pki")
        pki.mkdir(mode=0o700)
        ca_key = _new_key()
        ca_cert = _issue(_name("canopy-test-ca"), ca_key)
        server_key = _new_key()
        server_cert = _issue(
            _name("kube-apiserver"),
            server_key,
            issuer=(ca_cert, ca_key),
            server_names=["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
            server_ips=["127.0.0.1", "10.0.0.1"],
        )
        admin_key = _new_key()
        admin_cert = _issue(
            _name(ADMIN_USER, "system:masters"), admin_key, issuer=(ca_cert, ca_key), client=True
        )
        sa_key = _new_key()
        files = {
            "ca.crt": _cert_pem(ca_cert),
            "ca.key": _key_pem(ca_key),
            "apiserver.crt": _cert_pem(server_cert),
            "apiserver.key": _key_pem(server_key),
            "admin.crt": _cert_pem(admin_cert),
            "admin.key": _key_pem(admin_key),
            "sa.key": _key_pem(sa_key),
            "sa.pub": sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        }
        for name, data in files.items():
            (pki / name).write_bytes(data)
            (pki / name).chmod(0o600)
        self.ca_data = files["ca.crt"]
        self._ca = (ca_cert, ca_key)
        self._admin_cert = files["admin.crt"]
        self._admin_key = files["admin.key"]

    def _issue_client_certificate(self, user: str, group: str | None = None) -> tuple[bytes, bytes]:
        """(certificate PEM, key PEM) of a client certificate for ``user`` signed by the cluster's CA."""
        assert self._ca is not None
        key = _new_key()
        return _cert_pem(_issue(_name(user, group), key, issuer=self._ca, client=True)), _key_pem(key)

    def _issue_serving_certificate(self, names: list[str], ips: list[str]) -> tuple[bytes, bytes]:
        """(certificate PEM, key PEM) of a server certificate for ``names`` and ``ips`` signed by the CA."""
        assert self._ca is not None
        key = _new_key()
        cert = _issue(_name(names[0]), key, issuer=self._ca, server_names=names, server_ips=ips)
        return _cert_pem(cert), _key_pem(key)

    def _spawn(
        self, name: str, argv: list[str], *, env: dict[str, str] | None = None, append_log: bool = False
    ) -> subprocess.Popen[bytes]:
        logs = self._path("logs")
        logs.mkdir(exist_ok=True)
        log = open(logs / f"{name}.log", "ab" if append_log else "wb")  # noqa: SIM115 - closed in stop()
        self._logs[name] = log
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env=None if env is None else {**os.environ, **env},
            # Own session: Ctrl-C in a terminal reaches only Python, which then stops these
            # in order instead of all of them dying at once.
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self._processes[name] = process
        return process

    def _start_etcd(self, bin_dir: Path, deadline: float) -> str:
        client_url = f"http://127.0.0.1:{_free_port()}"
        peer_url = f"http://127.0.0.1:{_free_port()}"
        self._spawn(
            "etcd",
            [
                str(bin_dir / "etcd"),
                "--name=canopy-test",
                f"--data-dir={self._path('etcd-data')}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=canopy-test={peer_url}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )
        self._wait("etcd", deadline, lambda: _http_ok(f"{client_url}/health", None, b'"health":"true"'))
        return client_url

    def _start_apiserver(self, bin_dir: Path, etcd_url: str, deadline: float) -> None:
        port = _free_port()
        pki = self._path("pki")
        self._spawn(
            "kube-apiserver",
            [
                str(bin_dir / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self._path('apiserver-certs')}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                "--authorization-mode=RBAC",
                "--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,ResourceQuota",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-cluster-ip-range=10.0.0.0/24",
                # Loopback cannot be published as the `kubernetes` Service endpoint.
                "--endpoint-reconciler-type=none",
                "--allow-privileged=true",
                "--profiling=false",
                *self._audit_arguments(),
            ],
        )
        self.server = f"https://127.0.0.1:{port}"
        self._write_kubeconfig()
        context = ssl.create_default_context(cadata=self.ca_data.decode() if self.ca_data else None)
        context.load_cert_chain(self._path("pki") / "admin.crt", self._path("pki") / "admin.key")
        self._wait("kube-apiserver", deadline, lambda: _http_ok(f"{self.server}/readyz", context, b"ok"))

    def _audit_arguments(self) -> list[str]:
        if not self.audit_users:
            return []
        policy = {
            "apiVersion": "audit.k8s.io/v1",
            "kind": "Policy",
            "omitStages": ["RequestReceived", "ResponseStarted"],
            "rules": [{"level": "Metadata", "users": list(self.audit_users)}, {"level": "None"}],
        }
        policy_path = self._path("audit-policy.yaml")
        policy_path.write_text(json.dumps(policy))  # JSON is YAML
        self.audit_log = self._path("logs") / "audit.log"
        return [
            f"--audit-policy-file={policy_path}",
            f"--audit-log-path={self.audit_log}",
            "--audit-log-format=json",
            "--audit-log-mode=blocking",  # each event written before the request ends
        ]

    def _start_controller_manager(self, bin_dir: Path, deadline: float) -> None:
        port = _free_port()
        pki = self._path("pki")
        self._spawn(
            "kube-controller-manager",
            [
                str(bin_dir / "kube-controller-manager"),
                f"--kubeconfig={self.kubeconfig_path}",
                f"--controllers={','.join(self.controllers)}",
                "--use-service-account-credentials=true",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self._path('controller-manager-certs')}",
                f"--root-ca-file={pki / 'ca.crt'}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                *self.controller_manager_flags,
            ],
        )
        self._wait(
            "kube-controller-manager",
            deadline,
            lambda: _http_ok(f"https://127.0.0.1:{port}/healthz", _unverified_tls(), b"ok"),
        )
        # Healthy is not yet working: wait until the serviceaccount controller has acted.
        with self.admin_client() as api:
            core = kubernetes.client.CoreV1Api(api)

            def default_sa_exists() -> bool:
                try:
                    core.read_namespaced_service_account("default", "default")
                    return True
                except kubernetes.client.ApiException as error:
                    if error.status == 404:
                        return False
                    raise

            self._wait("kube-controller-manager", deadline, default_sa_exists)

    def _write_kubeconfig(self) -> None:
        self.kubeconfig = self._kubeconfig_for(
            ADMIN_USER,
            {
                "client-certificate-data": base64.b64encode(self._admin_cert).decode(),
                "client-key-data": base64.b64encode(self._admin_key).decode(),
            },
        )
        self.kubeconfig_path = self._write_kubeconfig_file("admin.kubeconfig", self.kubeconfig)

    def _kubeconfig_for(self, user: str, credentials: dict[str, str]) -> dict[str, Any]:
        """A kubeconfig for this cluster acting as ``user`` with ``credentials`` (a kubeconfig user entry)."""
        assert self.ca_data is not None
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "canopy-test",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority-data": base64.b64encode(self.ca_data).decode(),
                    },
                }
            ],
            "users": [{"name": user, "user": credentials}],
            "contexts": [{"name": "canopy-test", "context": {"cluster": "canopy-test", "user": user}}],
            "current-context": "canopy-test",
        }

    def _write_kubeconfig_file(self, name: str, kubeconfig: dict[str, Any]) -> Path:
        path = self._path(name)
        path.write_text(yaml.safe_dump(kubeconfig))
        path.chmod(0o600)
        return path

    def _wait(self, name: str, deadline: float, ready: Callable[[], bool]) -> None:
        process = self._processes[name]
        while True:
            if process.poll() is not None:
                raise KubeClusterError(f"{name} exited with code {process.returncode} during start-up")
            try:
                if ready():
                    return
            except (OSError, urllib3.exceptions.HTTPError, kubernetes.client.ApiException):
                pass  # not listening yet, or still bootstrapping
            if time.monotonic() > deadline:
                raise KubeClusterError(f"{name} not ready within {self.start_timeout:.0f}s")
            time.sleep(0.2)

    def _log_tails(self, lines: int = 40) -> str:
        if not self.workdir:
            return ""
        parts = []
        for name in self._logs:
            self._logs[name].flush()
            text = (self.workdir / "logs" / f"{name}.log").read_text(errors="replace").splitlines()
            parts.append(f"----- last {lines} lines of {name}.log -----\n" + "\n".join(text[-lines:]))
        return "\n".join(parts)


def _unverified_tls() -> ssl.SSLContext:
    # For a component's self-signed serving certificate, where only liveness is being checked.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _http_ok(url: str, context: ssl.SSLContext | None, expect: bytes) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return response.status == 200 and expect in response.read()
    except urllib.error.HTTPError:
        return False


def cluster_from_env() -> KubeCluster:
    """A started cluster: the external one named by CANOPY_TEST_KUBECONFIG, else a local one."""
    external = os.environ.get(ENV_EXTERNAL_KUBECONFIG)
    if external:
        return ExternalKubeCluster(external).start()
    return KubeTestCluster().start()


# --------------------------------------------------------------------------- CLI


def _interrupt(signum: int, frame: object) -> None:
    # SIGTERM (e.g. from a CI script) cleans up exactly like Ctrl-C.
    raise KeyboardInterrupt


def _up(args: argparse.Namespace) -> int:
    return run_until_interrupted(KubeTestCluster(keep_workdir=args.keep))


def run_until_interrupted(cluster: KubeTestCluster) -> int:
    """Start ``cluster``, print where it is, and stop it on Ctrl-C or SIGTERM (the CLIs' ``up``)."""
    started = time.monotonic()
    # Installed explicitly: a shell starting us in the background leaves SIGINT ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        cluster.start()
        print(
            json.dumps(
                {
                    "kubeconfig": str(cluster.kubeconfig_path),
                    "server": cluster.server,
                    "version": cluster.expected_version,
                    "workdir": str(cluster.workdir),
                    "started_in_seconds": round(time.monotonic() - started, 1),
                },
                indent=2,
            ),
            flush=True,
        )
        print(f"export KUBECONFIG={cluster.kubeconfig_path}", file=sys.stderr)
        print("Running; press Ctrl-C to stop.", file=sys.stderr, flush=True)
        while cluster.running():
            time.sleep(1)
        print("A control-plane process exited; stopping.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        # A second Ctrl-C must not cut the orderly shutdown short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        cluster.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.clusters.kube", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start a cluster and wait for Ctrl-C")
    up.add_argument(
        "--keep", action="store_true", help="keep the work directory (logs, certificates) on exit"
    )
    up.set_defaults(func=_up)
    build = commands.add_parser("build", help="only build the binaries (no-op when cached)")
    build.set_defaults(func=lambda _args: print(ensure_binaries()) or 0)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
