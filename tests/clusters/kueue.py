"""A real Kueue test cluster: the control plane of ``kube.py`` plus kube-scheduler, Kueue's
controller manager and KWOK's simulated nodes, all processes on loopback.

- etcd, kube-apiserver, kube-controller-manager (with the job and clusterrole-aggregation
  controllers too) and kube-scheduler, from ``kubernetes/build.sh``;
- Kueue's CRDs, RBAC and webhook configurations, taken from the Kueue module by ``kueue/build.sh``;
  Kueue's controller manager runs as a local process acting as its ServiceAccount
  (``kueue-system/kueue-controller-manager``, with Kueue's own ClusterRole), serving its webhooks
  on 127.0.0.1 with a certificate of the cluster's CA (see ``_start_kueue``);
- KWOK, which plays the kubelets of the nodes in ``NODES`` (node status, leases, pods Running).
  A pod finishes when it carries the annotation ``canopy.test/finish: succeeded`` (or
  ``failed``), through the stages in ``kueue/kwok-stages.yaml``; ``finish_pods`` sets it.

Command line::

    python -m tests.clusters.kueue up     # start, print the kubeconfig path, wait for Ctrl-C
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import fcntl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes.client
import kubernetes.utils
import yaml

from tests.clusters.kube import (
    CONTROLLERS,
    KubeClusterError,
    KubeTestCluster,
    _cert_pem,
    _free_port,
    _http_ok,
    _issue,
    _key_pem,
    _name,
    _new_key,
    _unverified_tls,
    run_until_interrupted,
)
from tests.clusters.processes import stop_process

KUEUE_DIR = Path(__file__).resolve().parent / "kueue"
BUILD_SCRIPT = KUEUE_DIR / "build.sh"
CANOPY_STAGES = KUEUE_DIR / "kwok-stages.yaml"

KUEUE_GROUP = "kueue.x-k8s.io"
KUEUE_API_VERSION = "v1beta2"
# What Kueue's config/default kustomization gives every object: a namespace and a name prefix.
KUEUE_NAMESPACE = "kueue-system"
KUEUE_NAME_PREFIX = "kueue-"
KUEUE_SERVICE_ACCOUNT = "kueue-controller-manager"
# Jobs name their LocalQueue with this label.
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
# KWOK manages exactly the nodes with this annotation (the value KWOK's docs use).
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_NODE_VALUE = "fake"
# A Running pod with this annotation finishes (kueue/kwok-stages.yaml): "succeeded" or "failed".
FINISH_ANNOTATION = "canopy.test/finish"
GPU = "nvidia.com/gpu"
WORKER_ROLE_LABEL = "node-role.kubernetes.io/worker"
POOL_LABEL = "canopy.test/pool"
# Kueue v0.17.0 reads its metrics certificate from this fixed path when its internal certificate
# management is off (cmd/kueue/main.go) and exits if the files are missing.
KUEUE_METRICS_CERT_DIR = Path("/etc/kueue/metrics/certs")


@dataclass(frozen=True)
class SimulatedNode:
    """A node KWOK plays: what it offers and how it is labelled."""

    name: str
    ip: str
    cpu: str
    memory: str
    gpus: int = 0
    labels: dict[str, str] = field(default_factory=dict)

    def capacity(self) -> dict[str, str]:
        capacity = {"cpu": self.cpu, "memory": self.memory, "pods": "110"}
        if self.gpus:
            capacity[GPU] = str(self.gpus)
        return capacity


WORKER_LABELS = {WORKER_ROLE_LABEL: "", POOL_LABEL: "workers"}
T4_LABELS = {"gpu": "t4", POOL_LABEL: "t4"}
# The Arena document's three GPU workers (1 GPU, 4 CPU, 30 GiB each, its addresses); two nodes that are no
# workers and have no GPU (its masters; left untainted on purpose, so only a node selector keeps
# work off them); and a second GPU pool of two T4 nodes with 2 GPUs each.
NODES: tuple[SimulatedNode, ...] = (
    *(
        SimulatedNode(f"worker0{i}", f"10.0.0.9{3 + i}", "4", "30Gi", gpus=1, labels=WORKER_LABELS)
        for i in (1, 2, 3)
    ),
    *(
        SimulatedNode(
            f"master0{i}", f"10.0.0.9{i}", "4", "8Gi", labels={"node-role.kubernetes.io/control-plane": ""}
        )
        for i in (1, 2)
    ),
    *(SimulatedNode(f"t4-0{i}", f"10.0.1.{i}", "8", "32Gi", gpus=2, labels=T4_LABELS) for i in (1, 2)),
)

# Kueue's Configuration (apis/config/v1beta2); the addresses and paths are filled in at start.
KUEUE_CONFIGURATION: dict[str, Any] = {
    "apiVersion": "config.kueue.x-k8s.io/v1beta2",
    "kind": "Configuration",
    "namespace": KUEUE_NAMESPACE,
    "leaderElection": {"leaderElect": False},
    # The webhook's certificate is ours (see _start_kueue): Kueue's own rotator would need a
    # Service the API server can reach, and there is no Service network here.
    "internalCertManagement": {"enable": False},
    "manageJobsWithoutQueueName": False,
    "integrations": {"frameworks": ["batch/job"]},
    # The visibility API is served through an APIService, which needs a Service too; and
    # without internal certificates Kueue reads its certificate from /visibility.
    "featureGates": {"VisibilityOnDemand": False},
    "clientConnection": {"qps": 50, "burst": 100},
}


class KueueClusterError(KubeClusterError):
    """The Kueue test cluster could not be built or started."""


def ensure_build() -> Path:
    """The directory ``kueue/build.sh`` fills (bin/, manifests/), building first if needed."""
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
    if result.returncode != 0:
        raise KueueClusterError(f"{BUILD_SCRIPT} failed with exit code {result.returncode}")
    return Path(result.stdout.strip().splitlines()[-1])


def pinned_versions() -> dict[str, str]:
    """{"kueue": ..., "kwok": ...} from ``kueue/versions.env``."""
    values = dict(
        line.split("=", 1)
        for line in (KUEUE_DIR / "versions.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    return {"kueue": values["KUEUE_VERSION"], "kwok": values["KWOK_VERSION"]}


def _load_all(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


class KueueTestCluster(KubeTestCluster):
    """``KubeTestCluster`` plus kube-scheduler, Kueue and KWOK with the nodes in ``NODES``.

    ``start()`` returns once every node is Ready and Kueue's webhooks answer through the API
    server. Besides the attributes of ``KubeTestCluster``: ``versions`` (Kueue and KWOK),
    ``nodes``; logs are ``<workdir>/logs/{kube-scheduler,kueue,kwok}.log``.
    ``stop_kueue()`` and ``start_kueue()`` take Kueue (and so its webhooks) away and back.
    """

    # Jobs make pods; Kueue's user roles aggregate; node-lifecycle removes the not-ready taint
    # the API server puts on every new node once KWOK reports it Ready (as for a kubelet).
    controllers = (
        *CONTROLLERS,
        "job-controller",
        "clusterrole-aggregation-controller",
        "node-lifecycle-controller",
    )
    # A KWOK lease renewal can come late when the machine is busy (a full suite on 2 cores); after
    # the default 50 s the node-lifecycle controller would taint the node unreachable (NoExecute)
    # and a test would find its nodes tainted. No test is about lost nodes, so the grace is long.
    controller_manager_flags = ("--node-monitor-grace-period=10m",)

    def __init__(
        self, *, keep_workdir: bool = False, start_timeout: float = 300.0, audit_users: tuple[str, ...] = ()
    ) -> None:
        super().__init__(keep_workdir=keep_workdir, start_timeout=start_timeout, audit_users=audit_users)
        self.versions = pinned_versions()
        self.nodes = NODES
        self._build = Path()
        self._webhook_port = 0
        self._kueue_health_port = 0
        self._kueue_argv: list[str] = []

    def start(self) -> KueueTestCluster:
        # Built before the clock of start_timeout starts (a cold build takes minutes).
        self._build = ensure_build()
        super().start()
        return self

    def _start_components(self, bin_dir: Path, deadline: float) -> None:
        super()._start_components(bin_dir, deadline)
        self._start_scheduler(bin_dir, deadline)
        self._webhook_port = _free_port()
        with self.admin_client() as api:
            self._install_kueue_objects(api, deadline)
            self._start_kueue(api, deadline)
            self._start_kwok(api, deadline)

    # -- kube-scheduler

    def _start_scheduler(self, bin_dir: Path, deadline: float) -> None:
        # Its own user, bound by the API server's bootstrap RBAC to system:kube-scheduler.
        user = "system:kube-scheduler"
        cert, key = self._issue_client_certificate(user)
        kubeconfig = self._write_kubeconfig_file(
            "kube-scheduler.kubeconfig",
            self._kubeconfig_for(
                user,
                {
                    "client-certificate-data": base64.b64encode(cert).decode(),
                    "client-key-data": base64.b64encode(key).decode(),
                },
            ),
        )
        port = _free_port()
        self._spawn(
            "kube-scheduler",
            [
                str(bin_dir / "kube-scheduler"),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self._path('kube-scheduler-certs')}",
            ],
        )
        self._wait(
            "kube-scheduler",
            deadline,
            lambda: _http_ok(f"https://127.0.0.1:{port}/healthz", _unverified_tls(), b"ok"),
        )

    # -- Kueue's objects: CRDs, RBAC, namespace, ServiceAccount

    def _webhook_client_config(self, path: str) -> dict[str, Any]:
        # What envtest does for a webhook served by a local process: a URL on loopback and the
        # CA that signed its certificate, in place of Kueue's in-cluster Service.
        assert self.ca_data is not None
        return {
            "url": f"https://127.0.0.1:{self._webhook_port}{path}",
            "caBundle": base64.b64encode(self.ca_data).decode(),
        }

    def kueue_crds(self) -> list[dict[str, Any]]:
        """Kueue's CRDs as installed here: the module's bases with the conversion webhook its
        kustomization enables (on localqueues, clusterqueues, cohorts, workloads and
        multikueueclusters), pointed at the local Kueue."""
        manifests = self._build / "manifests"
        crds = {
            crd["metadata"]["name"]: crd
            for path in sorted((manifests / "crd").glob("*.yaml"))
            for crd in _load_all(path)
        }
        kustomization = yaml.safe_load((manifests / "crd-patches" / "kustomization.yaml").read_text())
        for entry in kustomization.get("patches") or []:
            # build.sh copies patches/*.yaml flat into crd-patches/.
            patch = yaml.safe_load((manifests / "crd-patches" / Path(entry["path"]).name).read_text())
            conversion = patch["spec"]["conversion"]
            webhook = conversion["webhook"]
            webhook["clientConfig"] = self._webhook_client_config(webhook["clientConfig"]["service"]["path"])
            crds[patch["metadata"]["name"]]["spec"]["conversion"] = conversion
        return list(crds.values())

    def kueue_webhook_configurations(self) -> list[dict[str, Any]]:
        """Kueue's Mutating- and ValidatingWebhookConfiguration as installed here: named and
        patched as config/default does, each webhook's Service replaced by the local URL."""
        webhook_dir = self._build / "manifests" / "webhook"
        configurations = {doc["kind"]: doc for doc in _load_all(webhook_dir / "manifests.yaml")}
        kustomization = yaml.safe_load((webhook_dir / "kustomization.yaml").read_text())
        for entry in kustomization.get("patches") or []:
            patch = yaml.safe_load(entry["patch"])
            webhooks = {w["name"]: w for w in configurations[patch["kind"]]["webhooks"]}
            for patched in patch["webhooks"]:
                webhooks[patched["name"]].update({k: v for k, v in patched.items() if k != "name"})
        for configuration in configurations.values():
            configuration["metadata"]["name"] = KUEUE_NAME_PREFIX + configuration["metadata"]["name"]
            for webhook in configuration["webhooks"]:
                webhook["clientConfig"] = self._webhook_client_config(
                    webhook["clientConfig"]["service"]["path"]
                )
        return list(configurations.values())

    def kueue_rbac(self) -> list[dict[str, Any]]:
        """Kueue's RBAC objects (config/components/rbac, as its kustomization lists them), named
        and placed as config/default does: ClusterRoles for Kueue itself and for users."""
        rbac_dir = self._build / "manifests" / "rbac"
        kustomization = yaml.safe_load((rbac_dir / "kustomization.yaml").read_text())
        documents = []
        for resource in kustomization["resources"]:
            for document in _load_all(rbac_dir / resource):
                document = copy.deepcopy(document)
                metadata = document["metadata"]
                metadata["name"] = KUEUE_NAME_PREFIX + metadata["name"]
                if document["kind"] in ("ServiceAccount", "Role", "RoleBinding"):
                    metadata["namespace"] = KUEUE_NAMESPACE
                if "roleRef" in document:
                    document["roleRef"]["name"] = KUEUE_NAME_PREFIX + document["roleRef"]["name"]
                for subject in document.get("subjects") or []:
                    if subject["kind"] == "ServiceAccount":
                        subject["name"] = KUEUE_NAME_PREFIX + subject["name"]
                        subject["namespace"] = KUEUE_NAMESPACE
                documents.append(document)
        return documents

    def _install_kueue_objects(self, api: kubernetes.client.ApiClient, deadline: float) -> None:
        core = kubernetes.client.CoreV1Api(api)
        core.create_namespace(kubernetes.client.V1Namespace(metadata={"name": KUEUE_NAMESPACE}))
        extensions = kubernetes.client.ApiextensionsV1Api(api)
        crds = self.kueue_crds()
        for crd in crds:
            extensions.create_custom_resource_definition(crd)

        def all_established() -> bool:
            for crd in crds:
                status = extensions.read_custom_resource_definition(crd["metadata"]["name"]).status
                if not any(c.type == "Established" and c.status == "True" for c in status.conditions or []):
                    return False
            return True

        self._wait("kube-apiserver", deadline, all_established)
        for document in self.kueue_rbac():
            kubernetes.utils.create_from_dict(api, document)

    # -- Kueue's controller manager

    def _start_kueue(self, api: kubernetes.client.ApiClient, deadline: float) -> None:
        """Run Kueue as its ServiceAccount, serving its webhooks on 127.0.0.1.

        Kueue's internal certificate management creates a Secret and a certificate for
        ``kueue-webhook-service.kueue-system.svc`` and injects its CA into the webhook
        configurations and CRDs; the API server would then call that Service, which nothing
        routes to here (no kube-proxy, and Endpoints may not point at loopback). So, as
        controller-runtime's envtest does: certificate management off, a serving certificate for
        127.0.0.1 signed by the cluster's CA in ``webhook.certDir``, and every webhook and
        conversion registered with ``clientConfig.url: https://127.0.0.1:<port>/<path>`` and
        that CA (``kueue_crds``, ``kueue_webhook_configurations``).
        """
        cert_dir = self._path("kueue-certs")
        cert_dir.mkdir(mode=0o700)
        cert, key = self._issue_serving_certificate(["localhost"], ["127.0.0.1"])
        (cert_dir / "tls.crt").write_bytes(cert)
        (cert_dir / "tls.key").write_bytes(key)
        _ensure_kueue_metrics_certificate()

        token = (
            kubernetes.client.CoreV1Api(api)
            .create_namespaced_service_account_token(
                KUEUE_SERVICE_ACCOUNT,
                KUEUE_NAMESPACE,
                kubernetes.client.AuthenticationV1TokenRequest(
                    spec=kubernetes.client.V1TokenRequestSpec(audiences=[], expiration_seconds=7 * 86400)
                ),
            )
            .status.token
        )
        kubeconfig = self._write_kubeconfig_file(
            "kueue.kubeconfig",
            self._kubeconfig_for(
                f"system:serviceaccount:{KUEUE_NAMESPACE}:{KUEUE_SERVICE_ACCOUNT}", {"token": token}
            ),
        )
        self._kueue_health_port = _free_port()
        configuration = {
            **KUEUE_CONFIGURATION,
            "health": {"healthProbeBindAddress": f"127.0.0.1:{self._kueue_health_port}"},
            "metrics": {"bindAddress": f"127.0.0.1:{_free_port()}"},
            "webhook": {"host": "127.0.0.1", "port": self._webhook_port, "certDir": str(cert_dir)},
        }
        config_path = self._path("kueue-config.yaml")
        config_path.write_text(yaml.safe_dump(configuration))
        self._kueue_argv = [
            str(self._build / "bin" / "kueue"),
            f"--config={config_path}",
            f"--kubeconfig={kubeconfig}",
        ]
        self._spawn("kueue", self._kueue_argv)
        self._wait_for_kueue(deadline)
        registration = kubernetes.client.AdmissionregistrationV1Api(api)
        for configuration in self.kueue_webhook_configurations():
            if configuration["kind"] == "MutatingWebhookConfiguration":
                registration.create_mutating_webhook_configuration(configuration)
            else:
                registration.create_validating_webhook_configuration(configuration)
        self._wait("kueue", deadline, lambda: _webhooks_answer(api))

    def _wait_for_kueue(self, deadline: float) -> None:
        # Ready means its webhook server listens (cmd/kueue/main.go's readyz check).
        self._wait(
            "kueue",
            deadline,
            lambda: _http_ok(f"http://127.0.0.1:{self._kueue_health_port}/readyz", None, b"ok"),
        )

    def stop_kueue(self) -> None:
        """Stop Kueue's controller manager: its webhooks (failurePolicy Fail) then refuse."""
        stop_process(self._processes.pop("kueue", None), timeout=15)
        log = self._logs.pop("kueue", None)
        if log:
            log.close()

    def start_kueue(self, timeout: float = 60) -> None:
        """Start Kueue again after ``stop_kueue()`` and wait until its webhooks answer."""
        if "kueue" in self._processes:
            raise KueueClusterError("Kueue is running")
        self._spawn("kueue", self._kueue_argv, append_log=True)
        deadline = time.monotonic() + timeout
        self._wait_for_kueue(deadline)
        with self.admin_client() as api:
            self._wait("kueue", deadline, lambda: _webhooks_answer(api))

    # -- KWOK and the nodes

    def _start_kwok(self, api: kubernetes.client.ApiClient, deadline: float) -> None:
        stages_dir = self._build / "manifests" / "kwok-stages"
        stages = [doc for path in sorted(stages_dir.glob("*.yaml")) for doc in _load_all(path)]
        stages += _load_all(CANOPY_STAGES)
        stages_path = self._path("kwok-stages.yaml")
        stages_path.write_text(yaml.safe_dump_all(stages))
        self._spawn(
            "kwok",
            [
                str(self._build / "bin" / "kwok"),
                f"--kubeconfig={self.kubeconfig_path}",
                f"--config={stages_path}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}={KWOK_NODE_VALUE}",
                # Pod addresses (KWOK's default /24 is short of a large benchmark's pods). Node and
                # pod addresses are only written into status: nothing here connects to them.
                "--cidr=10.244.0.0/16",
            ],
            # KWOK also reads ~/.kwok/kwok.yaml when it exists: give it a home of its own.
            env={"KWOK_WORKDIR": str(self._path("kwok"))},
        )
        core = kubernetes.client.CoreV1Api(api)
        for node in self.nodes:
            labels = {
                **node.labels,
                "kubernetes.io/hostname": node.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            }
            core.create_node(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": node.name,
                        "labels": labels,
                        "annotations": {KWOK_NODE_ANNOTATION: KWOK_NODE_VALUE},
                    },
                    # What a kubelet registers with; KWOK's node-initialize stage keeps it.
                    "status": {
                        "capacity": node.capacity(),
                        "allocatable": node.capacity(),
                        "addresses": [
                            {"type": "InternalIP", "address": node.ip},
                            {"type": "Hostname", "address": node.name},
                        ],
                    },
                }
            )

        def all_schedulable() -> bool:
            # Ready (KWOK) and no longer tainted not-ready (the node-lifecycle controller).
            schedulable = {
                item.metadata.name
                for item in core.list_node().items
                if any(c.type == "Ready" and c.status == "True" for c in item.status.conditions or [])
                and not any(t.key == "node.kubernetes.io/not-ready" for t in item.spec.taints or [])
            }
            return schedulable >= {node.name for node in self.nodes}

        self._wait("kwok", deadline, all_schedulable)


def _webhooks_answer(api: kubernetes.client.ApiClient) -> bool:
    """True once the API server calls Kueue's webhooks: a Job naming a queue comes back
    suspended (mutating) and a ClusterQueue lending more than it has is refused (validating).
    Both are dry runs: nothing is stored."""
    job = kubernetes.client.BatchV1Api(api).create_namespaced_job(
        "default", job_manifest("webhook-probe", queue="probe"), dry_run="All"
    )
    if not job.spec.suspend:
        return False
    try:
        kubernetes.client.CustomObjectsApi(api).create_cluster_custom_object(
            KUEUE_GROUP,
            KUEUE_API_VERSION,
            "clusterqueues",
            {
                "apiVersion": f"{KUEUE_GROUP}/{KUEUE_API_VERSION}",
                "kind": "ClusterQueue",
                "metadata": {"name": "webhook-probe"},
                "spec": {
                    "cohortName": "probe",
                    "namespaceSelector": {},
                    "resourceGroups": [
                        {
                            "coveredResources": [GPU],
                            "flavors": [
                                {
                                    "name": "probe",
                                    "resources": [{"name": GPU, "nominalQuota": "1", "lendingLimit": "2"}],
                                }
                            ],
                        }
                    ],
                },
            },
            dry_run="All",
        )
    except kubernetes.client.ApiException as error:
        return error.status in (400, 403, 422) and "vclusterqueue.kb.io" in (error.body or "")
    return False


def _ensure_kueue_metrics_certificate() -> None:
    """A self-signed certificate at the fixed path Kueue v0.17.0 reads without internal
    certificate management. Shared by every Kueue on the machine; only its presence matters
    (nothing here scrapes the metrics with verification)."""
    cert_path, key_path = KUEUE_METRICS_CERT_DIR / "tls.crt", KUEUE_METRICS_CERT_DIR / "tls.key"
    if cert_path.is_file() and key_path.is_file():
        return
    try:
        KUEUE_METRICS_CERT_DIR.mkdir(parents=True, exist_ok=True)
        lock = open(KUEUE_METRICS_CERT_DIR / ".lock", "w")  # noqa: SIM115 - closed below
    except PermissionError as error:
        raise KueueClusterError(
            f"Kueue v0.17.0 exits unless {cert_path} and {key_path} exist (its metrics certificate "
            f"when internal certificate management is off); this user cannot create them: run once "
            f"as root, or create them yourself (any certificate and its key)"
        ) from error
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two sessions starting at once write one pair
        if cert_path.is_file() and key_path.is_file():
            return
        key = _new_key()
        cert = _issue(
            _name("kueue-metrics"), key, server_names=["localhost"], server_ips=["127.0.0.1"], days=3650
        )
        for path, data in ((key_path, _key_pem(key)), (cert_path, _cert_pem(cert))):
            scratch = path.with_suffix(".new")
            scratch.write_bytes(data)
            scratch.chmod(0o600)
            scratch.replace(path)


# --------------------------------------------------------------------------- helpers for tests


def job_manifest(
    name: str,
    *,
    queue: str,
    gpus: int = 1,
    finish: str | None = None,
    node_selector: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A one-pod batch/v1 Job for ``queue`` (its LocalQueue) asking for ``gpus`` GPUs and a
    little CPU and memory. With ``finish`` ("succeeded" or "failed") its pod finishes as soon as
    it runs; without, it runs until ``finish_pods``."""
    annotations = {FINISH_ANNOTATION: finish} if finish else {}
    resources = {"cpu": "1", "memory": "1Gi"}
    if gpus:
        resources[GPU] = str(gpus)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {QUEUE_LABEL: queue}},
        "spec": {
            "parallelism": 1,
            "completions": 1,
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": annotations},
                "spec": {
                    "restartPolicy": "Never",
                    "nodeSelector": node_selector or {},
                    "containers": [
                        {
                            "name": "train",
                            "image": "tensorflow/tensorflow:1.5.0-devel-gpu",
                            "resources": {"requests": resources, "limits": resources},
                        }
                    ],
                },
            },
        },
    }


def job_pods(api: kubernetes.client.ApiClient, namespace: str, job: str) -> list[kubernetes.client.V1Pod]:
    """The pods the job controller made for ``job``."""
    return (
        kubernetes.client.CoreV1Api(api)
        .list_namespaced_pod(namespace, label_selector=f"job-name={job}")
        .items
    )


def finish_pods(
    api: kubernetes.client.ApiClient, namespace: str, job: str, outcome: str = "succeeded"
) -> None:
    """Ask KWOK to finish ``job``'s pods (``outcome``: "succeeded" or "failed"), as a kubelet
    would report containers that exited with 0 or 1."""
    core = kubernetes.client.CoreV1Api(api)
    for pod in job_pods(api, namespace, job):
        core.patch_namespaced_pod(
            pod.metadata.name, namespace, {"metadata": {"annotations": {FINISH_ANNOTATION: outcome}}}
        )


def workload_for_job(api: kubernetes.client.ApiClient, namespace: str, job: str) -> dict[str, Any] | None:
    """The Workload Kueue made for the Job ``job`` (owned by it), or None yet."""
    workloads = kubernetes.client.CustomObjectsApi(api).list_namespaced_custom_object(
        KUEUE_GROUP, KUEUE_API_VERSION, namespace, "workloads"
    )["items"]
    for workload in workloads:
        owners = workload["metadata"].get("ownerReferences") or []
        if any(owner["kind"] == "Job" and owner["name"] == job for owner in owners):
            return workload
    return None


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The status condition of type ``kind`` of a custom object, or None."""
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == kind), None)


@contextlib.contextmanager
def kueue_down(cluster: KueueTestCluster) -> Iterator[None]:
    """Kueue (and so its webhooks) stopped for the block, running again after it."""
    cluster.stop_kueue()
    try:
        yield
    finally:
        cluster.start_kueue()


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.clusters.kueue", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start a cluster and wait for Ctrl-C")
    up.add_argument(
        "--keep", action="store_true", help="keep the work directory (logs, certificates) on exit"
    )
    up.set_defaults(func=lambda args: run_until_interrupted(KueueTestCluster(keep_workdir=args.keep)))
    build = commands.add_parser("build", help="only build Kueue and KWOK (no-op when cached)")
    build.set_defaults(func=lambda _args: print(ensure_build()) or 0)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
