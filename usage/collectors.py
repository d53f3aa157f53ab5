"""Usage collectors (issue 7): what each tenant uses on a cluster, read through the same clients
the provisioning backends use (so authentication, Kerberos, retries and ResourceManager/NameNode
failover are theirs), turned into `usage.measures` readings.

One small interface: `Collector.collect(targets) -> Collection` (readings and workloads of one
pass, plus how many HTTP calls it cost). `targets` is a plain dataclass built from the database by
`usage.selectors.usage_targets` (namespace, queue and directory -> tenant id; tenant tree
paths; who the people are): collectors never touch the ORM, like the backends.

Every reading a collector returns is already a subtree total (`subtree=True`), computed here from
the tree paths, because one cluster can give both summed and read-as-is figures for the same
tenant and partition (a YARN parent queue's usage includes its children's; an HDFS directory's
usage is counted once, in the directory itself; a Kubernetes parent namespace only holds what it
keeps for itself) and `usage_record` stores one row per tenant and partition.

Cost per pass, whatever the number of tenants (see docs/provisioning.md, "Usage collection"):

- Kubernetes: 1 namespace list, 1 ResourceQuota list, 1 pod list, 1 Job list, 1 discovery call for kubeflow.org and
  1 list per training-job kind served there; each list is paged by 500 (`limit`/`continue`).
  With the Kueue quota engine, also 1 ClusterQueue, 1 LocalQueue and 1 Workload list; when some
  workload waits, 1 discovery call for Kueue's visibility API and, where it is served, 1 call per
  ClusterQueue that holds waiting workloads.
- YARN: 1 scheduler call, 1 application list, 1 cluster-metrics call.
- HDFS: 1 call per tenant directory: WebHDFS has no bulk read of quotas and usage.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime
import posixpath
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import requests
from kubernetes.utils.quantity import parse_quantity

from provisioning.backends.base import BackendError, ObjectMissing
from provisioning.backends.kubernetes import KubernetesBackend
from provisioning.backends.yarn import YarnBackend, as_list
from provisioning.desired.kubernetes import (
    KUEUE_ENGINE,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    QUOTA_NAME,
    RESOURCE_QUOTA_ENGINE,
)
from provisioning.desired.kueue import KUEUE_API_VERSION, UNBOUNDED
from provisioning.desired.yarn import ROOT
from tenants.models import Tenant
from usage.measures import (
    FLAVOR_FIGURES,
    FLAVOR_RESOURCES,
    FlavorReading,
    UsageReading,
    WorkloadReading,
    flavor_column,
    subtree_totals,
)
from usage.models import Workload

PAGE = 500  # items per list call; a continue token fetches the next page
KUBEFLOW_GROUP = "kubeflow.org/v1"
# Figures that are limits: summed over a subtree only where each tenant's own value is the part
# of the subtree's limit it holds (a Kubernetes namespace's quota), None when any part is unlimited.
K8S_LIMITS = frozenset({"gpu_allocated", "cpu_allocated_millicores", "memory_allocated_bytes"})
# ResourceQuota key -> (used figure, allocated figure, scale), in the order of `_pod_requests`.
K8S_FIGURES = (
    ("requests.{gpu}", "gpu_used", "gpu_allocated", 1),
    ("requests.cpu", "cpu_used_millicores", "cpu_allocated_millicores", 1000),
    ("requests.memory", "memory_used_bytes", "memory_allocated_bytes", 1),
)


@dataclass(frozen=True)
class UsageTargets:
    """What the database knows about one cluster's tenants, for mapping what the cluster says back
    to them. `paths` holds the treebeard path of every tenant below plus their ancestors."""

    paths: Mapping[int, str]
    namespaces: Mapping[str, int] = field(default_factory=dict)  # Kubernetes namespace -> tenant
    queues: Mapping[str, int] = field(default_factory=dict)  # YARN queue path -> tenant
    directories: Mapping[str, int] = field(default_factory=dict)  # HDFS path -> tenant
    service_accounts: Mapping[str, str] = field(default_factory=dict)  # ServiceAccount -> username
    usernames: frozenset[str] = frozenset()  # people who hold a role (YARN users are usernames)
    gpu_resource: str = "nvidia.com/gpu"
    remainder_queue: str = "default"
    quota_engine: str = RESOURCE_QUOTA_ENGINE
    flavors: Mapping[str, str] = field(default_factory=dict)  # Kueue ResourceFlavor -> pool name


@dataclass
class Collection:
    """One pass over one cluster."""

    readings: list[UsageReading] = field(default_factory=list)
    workloads: list[WorkloadReading] = field(default_factory=list)
    calls: int = 0
    notes: list[str] = field(default_factory=list)  # what was left out, and why
    remarks: list[str] = field(default_factory=list)  # worth saying, but nothing was left out
    details: dict[str, Any] = field(default_factory=dict)  # cluster-wide figures (YARN metrics, Kueue)
    # Kueue clusters: each tenant's subtree per pool (None: not read, e.g. Kueue is not installed).
    flavors: list[FlavorReading] | None = None


class Collector(abc.ABC):
    """Reads one cluster's usage. Subclasses wrap a provisioning backend and implement `collect`."""

    @abc.abstractmethod
    def collect(self, targets: UsageTargets) -> Collection: ...

    def close(self) -> None:  # noqa: B027 - optional: only collectors holding a connection close one
        """Release what the collector holds (an HTTP session); nothing by default."""

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# Arithmetic


def _number(value: Any) -> Decimal:
    """A Kubernetes quantity, leniently (the cluster wrote it, so it is valid for the cluster)."""
    try:
        return parse_quantity(value)
    except (ValueError, TypeError, InvalidOperation) as error:
        raise BackendError(f"The API server returned a quantity Canopy cannot read: {value!r}") from error


def _time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def subtree_readings(
    own: Mapping[tuple[int, str], dict[str, float | None]],
    paths: Mapping[int, str],
    limits: frozenset[str] = frozenset(),
) -> list[UsageReading]:
    """Subtree totals (`usage.measures.subtree_totals`) from each tenant's own figures, keyed by
    (tenant, partition)."""
    readings = (
        UsageReading(tenant_id, dict(figures), partition) for (tenant_id, partition), figures in own.items()
    )
    return subtree_totals(readings, paths, limits=limits)


# ---------------------------------------------------------------------------------------------
# Kubernetes


def _pod_requests(spec: Mapping[str, Any], gpu_resource: str) -> tuple[float, float, float]:
    """What a pod asks the scheduler for, as the quota counts it: the containers' requests summed,
    or the largest init container's if that is more, plus the pod overhead. (Requests default to
    limits.)"""

    def amounts(resources: Mapping[str, Any] | None) -> list[Decimal]:
        # A limit without a request is the request too: the API server defaults it so in pods,
        # not in the templates of Jobs and training jobs.
        asked = {**((resources or {}).get("limits") or {}), **((resources or {}).get("requests") or {})}
        return [_number(asked.get(name, 0)) for name in (gpu_resource, "cpu", "memory")]

    total = [Decimal(0)] * 3
    for container in spec.get("containers") or []:
        total = [a + b for a, b in zip(total, amounts(container.get("resources")), strict=True)]
    for container in spec.get("initContainers") or []:
        total = [max(a, b) for a, b in zip(total, amounts(container.get("resources")), strict=True)]
    overhead = spec.get("overhead") or {}
    total[1] += _number(overhead.get("cpu", 0))
    total[2] += _number(overhead.get("memory", 0))
    return float(total[0]), float(total[1] * 1000), float(total[2])


def _controller(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for owner in obj.get("metadata", {}).get("ownerReferences") or []:
        if owner.get("controller"):
            return owner
    return None


def _condition_state(conditions: list[Mapping[str, Any]] | None, running_when: tuple[str, ...]) -> str:
    """The state of a Job or training job from its true conditions (last one wins)."""
    state = Workload.State.PENDING
    for condition in conditions or []:
        if condition.get("status") != "True":
            continue
        kind = condition.get("type")
        if kind in ("Complete", "Succeeded"):
            state = Workload.State.SUCCEEDED
        elif kind == "Failed":
            state = Workload.State.FAILED
        elif kind in running_when:
            state = Workload.State.RUNNING
    return state


class KubernetesCollector(Collector):
    """ResourceQuota `canopy-quota` of every tenant namespace (status.used and hard), every pod not
    finished, every batch Job and every Kubeflow training job, each with one paged list across
    namespaces; objects outside tenant namespaces are skipped."""

    def __init__(self, backend: KubernetesBackend) -> None:
        self.backend = backend
        self.calls = 0
        self.notes: list[str] = []

    def close(self) -> None:
        self.backend.close()

    def _get(self, path: str, query: list[tuple[str, str]] | None = None) -> dict[str, Any]:
        self.calls += 1
        return self.backend._request("GET", path, query=query)

    def _list(self, path: str, query: list[tuple[str, str]] | None = None) -> Iterator[dict[str, Any]]:
        try:
            for listed in self.backend.list_pages(path, query, page_size=PAGE):
                self.calls += 1
                yield from listed.get("items") or []
        except BackendError:
            self.calls += 1  # a refused call was made all the same
            raise

    def _training_kinds(self) -> list[tuple[str, str]]:
        """(plural, kind) of every training-job resource kubeflow.org/v1 serves: PyTorchJob,
        TFJob, MPIJob, XGBoostJob, PaddleJob, JAXJob... None when the group is not installed."""
        try:
            resources = self._get(f"/apis/{KUBEFLOW_GROUP}").get("resources") or []
        except ObjectMissing:
            return []
        return sorted(
            (r["name"], r["kind"])
            for r in resources
            if "/" not in r["name"] and r.get("namespaced") and r["kind"].endswith("Job")
        )

    def collect(self, targets: UsageTargets) -> Collection:
        self.calls, self.notes = 0, []
        gpu = targets.gpu_resource
        # Only namespaces that exist on the cluster get figures (one not pushed yet has none).
        selector = [("labelSelector", f"{MANAGED_BY_LABEL}={MANAGED_BY}")]
        existing = {item["metadata"]["name"] for item in self._list("/api/v1/namespaces", selector)}
        namespaces = {ns: tenant_id for ns, tenant_id in targets.namespaces.items() if ns in existing}
        own: dict[int, dict[str, float | None]] = {}
        quotas: dict[int, dict[str, Any]] = {}
        for quota in self._list(
            "/api/v1/resourcequotas",
            [*selector, ("fieldSelector", f"metadata.name={QUOTA_NAME}")],
        ):
            tenant_id = namespaces.get(quota["metadata"]["namespace"])
            if tenant_id is not None:
                quotas[tenant_id] = quota
        # Pods: what the quota does not count (a resource it does not limit) is summed from them,
        # and they are the running/pending counts.
        pod_sums: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
        counts: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])
        workloads: list[WorkloadReading] = []
        training_kinds = self._training_kinds()
        owned_elsewhere = {"Job", *(kind for _, kind in training_kinds)}
        for pod in self._list(
            "/api/v1/pods", [("fieldSelector", "status.phase!=Succeeded,status.phase!=Failed")]
        ):
            meta = pod["metadata"]
            tenant_id = namespaces.get(meta["namespace"])
            if tenant_id is None or meta.get("deletionTimestamp"):
                continue
            spec, status = pod.get("spec") or {}, pod.get("status") or {}
            asked = _pod_requests(spec, gpu)
            pod_sums[tenant_id] = [a + b for a, b in zip(pod_sums[tenant_id], asked, strict=True)]
            running = status.get("phase") not in (None, "Pending")
            counts[tenant_id][0 if running else 1] += 1
            controller = _controller(pod)
            if controller is not None and controller.get("kind") in owned_elsewhere:
                continue  # listed as its Job or training job
            account = spec.get("serviceAccountName") or "default"
            workloads.append(
                WorkloadReading(
                    tenant_id=tenant_id,
                    kind="Pod",
                    namespace=meta["namespace"],
                    name=meta["name"],
                    submitted_by=account,
                    username=targets.service_accounts.get(account, ""),
                    state=Workload.State.RUNNING if running else Workload.State.PENDING,
                    gpu=asked[0],
                    cpu_millicores=asked[1],
                    memory_bytes=asked[2],
                    started_at=_time(status.get("startTime") or meta.get("creationTimestamp")),
                )
            )
        for tenant_id in namespaces.values():
            quota = quotas.get(tenant_id) or {}
            status = quota.get("status") or {}
            used, hard = (
                status.get("used") or {},
                status.get("hard") or (quota.get("spec") or {}).get("hard") or {},
            )
            sums = pod_sums.get(tenant_id, [0.0, 0.0, 0.0])
            figures: dict[str, float | None] = {}
            for index, (key, used_name, allocated_name, scale) in enumerate(K8S_FIGURES):
                key = key.format(gpu=gpu)
                # No key in hard: that resource is unlimited in this namespace (None).
                figures[allocated_name] = float(_number(hard[key]) * scale) if key in hard else None
                figures[used_name] = float(_number(used[key]) * scale) if key in used else sums[index]
            figures["workloads_running"], figures["workloads_pending"] = counts.get(tenant_id, [0.0, 0.0])
            own[tenant_id] = figures
        workloads += self._jobs(targets)
        for plural, kind in training_kinds:
            workloads += self._training_jobs(targets, plural, kind)
        queues = self._kueue(targets, namespaces) if targets.quota_engine == KUEUE_ENGINE else None
        if queues is not None:
            queues.add_own(own)
            workloads = [queues.explain(w) for w in workloads]
        readings = subtree_readings({(t, ""): f for t, f in own.items()}, targets.paths, K8S_LIMITS)
        collection = Collection(readings=readings, workloads=workloads, notes=self.notes)
        if queues is not None:
            flavors = queues.flavor_totals(targets.paths)
            queues.add_subtree(readings, flavors)
            collection.flavors = flavors
            collection.remarks = queues.remarks
            collection.details["kueue"] = queues.details
        collection.calls = self.calls
        return collection

    # -- Kueue (issue 16): the queues' status and the workloads they hold back

    def _kueue(self, targets: UsageTargets, namespaces: Mapping[str, int]) -> KueueQueues | None:
        """The tenants' ClusterQueues (what each uses, reserves and borrows per flavor), the
        LocalQueues (which ClusterQueue a workload waits in) and Kueue's Workloads (which wait,
        why, in what order). None, with a note, when the cluster does not serve Kueue's API."""
        base = f"/apis/{KUEUE_API_VERSION}"
        selector = [("labelSelector", f"{MANAGED_BY_LABEL}={MANAGED_BY}")]
        try:
            cluster_queues = list(self._list(f"{base}/clusterqueues", selector))
            local_queues = list(self._list(f"{base}/localqueues"))
            workloads = list(self._list(f"{base}/workloads"))
        except ObjectMissing:
            self.notes.append(
                f"Kueue: {KUEUE_API_VERSION} is not served on this cluster (is Kueue installed?), though its "
                "quota engine is Kueue: what the queues use, borrow and hold back was left out; the "
                "quota figures were collected."
            )
            return None
        except BackendError as error:
            if error.status != 403:
                raise
            self.notes.append(
                f"Kueue: not read, Canopy's ClusterRole does not allow it ({error.message}); apply "
                "deploy/clusterrole.yaml again."
            )
            return None
        queues = KueueQueues(targets, namespaces)
        for queue in cluster_queues:
            queues.add_cluster_queue(queue)
        for local in local_queues:
            meta = local["metadata"]
            queues.local_queues[(meta["namespace"], meta["name"])] = (local.get("spec") or {}).get(
                "clusterQueue", ""
            )
        for workload in workloads:
            queues.add_workload(workload)
        served = bool(queues.waiting) and self._visibility_served(queues)
        queues.place_in_line(self._visibility_positions(queues) if served else {})
        return queues

    def _visibility_served(self, queues: KueueQueues) -> bool:
        """Whether Kueue's visibility API answers here (an aggregated API: an APIService and Kueue's
        visibility server behind a Service; off by default in some installs). Not served: positions
        are computed from the Workloads, as Kueue orders them, and the pass says so."""
        try:
            group = self._get(f"/apis/{VISIBILITY_API_VERSION}")
        except BackendError as error:
            queues.visibility = f"not served ({error.message})"
        else:
            names = {r.get("name") for r in group.get("resources") or []}
            if "clusterqueues/pendingworkloads" in names:
                queues.visibility = "served"
                return True
            queues.visibility = "not served (no clusterqueues/pendingworkloads resource)"
        queues.remarks.append(
            f"Kueue's visibility API ({VISIBILITY_API_VERSION}) is {queues.visibility}: each waiting "
            "workload's place in line was computed from the Workloads as Kueue orders a queue "
            "(priority, then creation time)."
        )
        return False

    def _visibility_positions(self, queues: KueueQueues) -> dict[tuple[str, str], int]:
        """(namespace, Workload name) -> place in its ClusterQueue's line (1 first), from the
        visibility API: one call per ClusterQueue holding waiting workloads."""
        positions: dict[tuple[str, str], int] = {}
        for name in sorted(queues.waiting_queues()):
            path = f"/apis/{VISIBILITY_API_VERSION}/clusterqueues/{quote(name, safe='')}/pendingworkloads"
            try:
                summary = self._get(path, [("limit", str(VISIBILITY_LIMIT))])
            except BackendError as error:
                queues.remarks.append(
                    f"Kueue's visibility API did not answer for ClusterQueue {name} ({error.message}): "
                    "its places in line were computed from the Workloads."
                )
                continue
            for item in summary.get("items") or []:
                meta = item.get("metadata") or {}
                position = item.get("positionInClusterQueue")
                if isinstance(position, int):
                    positions[(meta.get("namespace", ""), meta.get("name", ""))] = position + 1
        return positions

    def _workload(
        self,
        targets: UsageTargets,
        obj: Mapping[str, Any],
        kind: str,
        templates: list[tuple[int, Mapping]],
        state: str,
    ) -> WorkloadReading | None:
        meta = obj["metadata"]
        tenant_id = targets.namespaces.get(meta["namespace"])
        if tenant_id is None:
            return None
        total = [0.0, 0.0, 0.0]
        account = ""
        for replicas, template in templates:
            spec = template.get("spec") or {}
            asked = _pod_requests(spec, targets.gpu_resource)
            total = [t + replicas * a for t, a in zip(total, asked, strict=True)]
            account = account or spec.get("serviceAccountName") or ""
        account = account or "default"
        return WorkloadReading(
            tenant_id=tenant_id,
            kind=kind,
            namespace=meta["namespace"],
            name=meta["name"],
            submitted_by=account,
            username=targets.service_accounts.get(account, ""),
            state=state,
            gpu=total[0],
            cpu_millicores=total[1],
            memory_bytes=total[2],
            started_at=_time((obj.get("status") or {}).get("startTime") or meta.get("creationTimestamp")),
        )

    def _jobs(self, targets: UsageTargets) -> list[WorkloadReading]:
        """batch Jobs: what one pod asks for times the parallelism."""
        found = []
        for job in self._list("/apis/batch/v1/jobs"):
            spec, status = job.get("spec") or {}, job.get("status") or {}
            state = _condition_state(status.get("conditions"), ())
            if state == Workload.State.PENDING and (status.get("ready") or 0) > 0:
                state = Workload.State.RUNNING
            parallelism = spec.get("parallelism", 1) or 0
            reading = self._workload(targets, job, "Job", [(parallelism, spec.get("template") or {})], state)
            if reading is not None:
                found.append(reading)
        return found

    def _training_jobs(self, targets: UsageTargets, plural: str, kind: str) -> list[WorkloadReading]:
        """Kubeflow training jobs: every `*ReplicaSpecs` entry's template times its replicas."""
        found = []
        try:
            listed = list(self._list(f"/apis/{KUBEFLOW_GROUP}/{quote(plural, safe='')}"))
        except ObjectMissing:  # the CRD went away between discovery and the list
            return []
        except BackendError as error:
            if error.status != 403:
                raise
            self.notes.append(
                f"{kind}: not listed, Canopy's ClusterRole does not allow it ({error.message})."
            )
            return []
        for job in listed:
            spec = job.get("spec") or {}
            templates = [
                (int(replica.get("replicas", 1) or 0), replica.get("template") or {})
                for key, replicas in sorted(spec.items())
                if key.endswith("ReplicaSpecs") and isinstance(replicas, dict)
                for replica in replicas.values()
                if isinstance(replica, dict)
            ]
            state = _condition_state((job.get("status") or {}).get("conditions"), ("Running",))
            reading = self._workload(targets, job, kind, templates, state)
            if reading is not None:
                found.append(reading)
        return found


# ---------------------------------------------------------------------------------------------
# Kueue


VISIBILITY_API_VERSION = "visibility.kueue.x-k8s.io/v1beta2"
VISIBILITY_LIMIT = 1000  # the visibility API's own default page
# Kueue's figures per resource name -> the flavor resource key and the scale to stored units.
_UNBOUNDED = {"gpu": UNBOUNDED.gpu, "cpu": UNBOUNDED.cpu_millicores, "memory": UNBOUNDED.memory_bytes}
# Why a workload waits when Kueue has not said (yet): it has not looked at it since it came.
NOT_LOOKED_AT = "Waiting for Kueue to consider it."


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return condition
    return None


def _true(obj: Mapping[str, Any], kind: str) -> bool:
    return ((_condition(obj, kind) or {}).get("status")) == "True"


def queue_order_key(workload: Mapping[str, Any]) -> tuple[int, str, str]:
    """Where a waiting Workload stands in its ClusterQueue, as Kueue orders both StrictFIFO and
    BestEffortFIFO queues (pkg/cache/queue, `baseCompareFunc`): higher priority first, then the
    earlier queue-order time (its creation, or when it was evicted by a PodsReady timeout or an
    admission check, which sends it to the back), then its UID."""
    meta = workload.get("metadata") or {}
    spec = workload.get("spec") or {}
    since = meta.get("creationTimestamp") or ""
    evicted = _condition(workload, "Evicted")
    if (
        evicted
        and evicted.get("status") == "True"
        and evicted.get("reason") in ("PodsReadyTimeout", "AdmissionCheck")
    ):
        since = evicted.get("lastTransitionTime") or since
    # RFC 3339 times in UTC with "Z", as the API server writes them, sort as text.
    return (-int(spec.get("priority") or 0), since, meta.get("uid") or "")


def _owner(workload: Mapping[str, Any]) -> tuple[str, str] | None:
    for owner in (workload.get("metadata") or {}).get("ownerReferences") or []:
        if owner.get("controller") or len(workload["metadata"]["ownerReferences"]) == 1:
            return owner.get("kind", ""), owner.get("name", "")
    return None


@dataclass
class _Waiting:
    namespace: str
    name: str
    tenant_id: int
    owner: tuple[str, str] | None
    cluster_queue: str  # "" when its LocalQueue is unknown
    order: tuple[int, str, str]
    reason: str
    position: int | None = None


class KueueQueues:
    """One pass's reading of Kueue on a cluster, kept as plain figures: each tenant's own
    ClusterQueue per flavor and resource (used, reserved, nominal, borrowed), its counts, and the
    workloads waiting in it with their reasons and places in line."""

    def __init__(self, targets: UsageTargets, namespaces: Mapping[str, int]) -> None:
        self.targets = targets
        self.namespaces = namespaces
        # (tenant, pool) -> flavor_column -> value: the tenant's own queue
        self.own: dict[tuple[int, str], dict[str, float | None]] = {}
        self.counts: dict[int, dict[str, int]] = {}
        self.local_queues: dict[tuple[str, str], str] = {}
        self.waiting: list[_Waiting] = []
        self.asks: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
        self.visibility = "not asked (nothing waits)"
        self.remarks: list[str] = []
        self._owners: dict[tuple[str, str, str], _Waiting] = {}

    # -- reading

    def _resource(self, name: str) -> str | None:
        return {self.targets.gpu_resource: "gpu", "cpu": "cpu", "memory": "memory"}.get(name)

    @staticmethod
    def _stored(resource: str, value: Any) -> float:
        return float(_number(value) * (1000 if resource == "cpu" else 1))

    def add_cluster_queue(self, queue: Mapping[str, Any]) -> None:
        tenant_id = self.namespaces.get(queue["metadata"]["name"])  # a queue is named as its namespace
        if tenant_id is None:
            return
        status = queue.get("status") or {}
        self.counts[tenant_id] = {
            key: int(status.get(key) or 0)
            for key in ("pendingWorkloads", "reservingWorkloads", "admittedWorkloads")
        }
        for group in (queue.get("spec") or {}).get("resourceGroups") or []:
            for flavor in group.get("flavors") or []:
                pool = self.targets.flavors.get(flavor.get("name", ""))
                if pool is None:
                    continue
                figures = self.own.setdefault((tenant_id, pool), self._empty())
                for entry in flavor.get("resources") or []:
                    resource = self._resource(entry.get("name", ""))
                    if resource is None:
                        continue
                    nominal = self._stored(resource, entry.get("nominalQuota", 0))
                    bound = _UNBOUNDED[resource]  # set for every resource
                    unlimited = bound is not None and nominal >= bound
                    figures[flavor_column(resource, "guaranteed")] = None if unlimited else nominal
        for status_key, figure in (("flavorsUsage", "used"), ("flavorsReservation", "reserved")):
            for flavor in status.get(status_key) or []:
                pool = self.targets.flavors.get(flavor.get("name", ""))
                if pool is None:
                    continue
                figures = self.own.setdefault((tenant_id, pool), self._empty())
                for entry in flavor.get("resources") or []:
                    resource = self._resource(entry.get("name", ""))
                    if resource is None:
                        continue
                    figures[flavor_column(resource, figure)] = self._stored(resource, entry.get("total", 0))
                    if figure == "used":
                        borrowed = self._stored(resource, entry.get("borrowed", 0))
                        figures[flavor_column(resource, "borrowed")] = borrowed

    @staticmethod
    def _empty() -> dict[str, float | None]:
        return {flavor_column(r, f): 0.0 for r, _ in FLAVOR_RESOURCES for f in FLAVOR_FIGURES}

    def add_workload(self, workload: Mapping[str, Any]) -> None:
        """A Workload of a tenant namespace that waits: not finished, no quota reserved."""
        meta = workload.get("metadata") or {}
        tenant_id = self.namespaces.get(meta.get("namespace", ""))
        if tenant_id is None or meta.get("deletionTimestamp"):
            return
        if _true(workload, "Finished") or _true(workload, "QuotaReserved"):
            return
        spec = workload.get("spec") or {}
        if spec.get("active") is False:
            reason = "Deactivated: Kueue does not queue it until it is active again."
            cluster_queue = ""
        else:
            cluster_queue = self.local_queues.get((meta["namespace"], spec.get("queueName") or ""), "")
            held = _condition(workload, "QuotaReserved")
            reason = (held or {}).get("message") or NOT_LOOKED_AT
            if not cluster_queue:
                reason = (held or {}).get("message") or (
                    f"LocalQueue {spec.get('queueName') or '(none)'} does not exist in {meta['namespace']}."
                )
        self.waiting.append(
            _Waiting(
                namespace=meta["namespace"],
                name=meta.get("name", ""),
                tenant_id=tenant_id,
                owner=_owner(workload),
                cluster_queue=cluster_queue,
                order=queue_order_key(workload),
                reason=reason,
            )
        )
        if cluster_queue:  # what Kueue may admit once quota frees
            asks = self.asks[tenant_id]
            for pod_set in spec.get("podSets") or []:
                count = int(pod_set.get("count") or 0)
                one = _pod_requests(
                    (pod_set.get("template") or {}).get("spec") or {}, self.targets.gpu_resource
                )
                for index in range(3):
                    asks[index] += count * one[index]

    def waiting_queues(self) -> set[str]:
        return {w.cluster_queue for w in self.waiting if w.cluster_queue}

    def place_in_line(self, served: Mapping[tuple[str, str], int]) -> None:
        """Each waiting workload's place in its ClusterQueue's line: as the visibility API said
        (`served`), else computed with `queue_order_key`."""
        lines: dict[str, list[_Waiting]] = defaultdict(list)
        for waiting in self.waiting:
            if waiting.cluster_queue:
                lines[waiting.cluster_queue].append(waiting)
        for line in lines.values():
            for index, waiting in enumerate(sorted(line, key=lambda w: w.order), start=1):
                waiting.position = served.get((waiting.namespace, waiting.name), index)
        self._owners = {(w.namespace, *w.owner): w for w in self.waiting if w.owner}

    # -- what the pass stores

    @property
    def details(self) -> dict[str, Any]:
        return {
            "cluster_queues": len(self.counts),
            "pending_workloads": sum(c["pendingWorkloads"] for c in self.counts.values()),
            "reserving_workloads": sum(c["reservingWorkloads"] for c in self.counts.values()),
            "admitted_workloads": sum(c["admittedWorkloads"] for c in self.counts.values()),
            "visibility_api": self.visibility,
        }

    def add_own(self, own: dict[int, dict[str, float | None]]) -> None:
        """Each tenant's own figures get what its waiting workloads ask for, and those workloads
        among the waiting ones (they have no pods yet)."""
        for tenant_id, figures in own.items():
            asks = self.asks.get(tenant_id, [0.0, 0.0, 0.0])
            figures["gpu_pending"], figures["cpu_pending_millicores"], figures["memory_pending_bytes"] = asks
            waiting = self.counts.get(tenant_id, {}).get("pendingWorkloads")
            if waiting is None:  # no status yet: count them here
                waiting = sum(1 for w in self.waiting if w.tenant_id == tenant_id and w.cluster_queue)
            figures["workloads_pending"] = (figures.get("workloads_pending") or 0.0) + waiting

    def explain(self, reading: WorkloadReading) -> WorkloadReading:
        """A job's reading with its Workload's place in line and reason, when Kueue holds it back."""
        waiting = self._owners.get((reading.namespace, reading.kind, reading.name))
        if waiting is None:
            return reading
        return dataclasses.replace(
            reading,
            state=Workload.State.PENDING,
            queue_position=waiting.position,
            waiting_reason=waiting.reason[:2000],
        )

    def flavor_totals(self, paths: Mapping[int, str]) -> list[FlavorReading]:
        """Each tenant's subtree per pool: used, reserved and guaranteed summed over its queues and
        its descendants' (guaranteed None when one is unlimited); borrowed is what its own queue
        borrows when it is alone there, else what the subtree uses above its whole guaranteed
        amount (a sub-tenant using its sibling's idle quota borrows nothing from outside)."""
        id_by_path = {path: tenant_id for tenant_id, path in paths.items()}
        sums: dict[tuple[int, str], dict[str, float | None]] = {}
        members: dict[tuple[int, str], int] = defaultdict(int)
        for (tenant_id, pool), figures in self.own.items():
            path = paths.get(tenant_id)
            if path is None:
                continue
            for prefix in Tenant.path_prefixes(path):
                ancestor = id_by_path.get(prefix)
                if ancestor is None:
                    continue
                key = (ancestor, pool)
                members[key] += 1
                target = sums.setdefault(key, self._empty())
                for name, value in figures.items():
                    before = target[name]
                    target[name] = None if value is None or before is None else before + value
        result = []
        for (tenant_id, pool), figures in sorted(sums.items()):
            if members[(tenant_id, pool)] > 1 or (tenant_id, pool) not in self.own:
                for resource, _ in FLAVOR_RESOURCES:
                    used = figures[flavor_column(resource, "used")] or 0.0
                    guaranteed = figures[flavor_column(resource, "guaranteed")]
                    figures[flavor_column(resource, "borrowed")] = (
                        0.0 if guaranteed is None else max(0.0, used - guaranteed)
                    )
            result.append(FlavorReading(tenant_id, pool, figures))
        return result

    @staticmethod
    def add_subtree(readings: list[UsageReading], flavors: list[FlavorReading]) -> None:
        """On the cluster's figures (partition ""): allocated becomes what Kueue guarantees (the
        namespace quota is only the ceiling, guaranteed + burst) and borrowed is summed over pools."""
        by_tenant: dict[int, list[FlavorReading]] = defaultdict(list)
        for flavor in flavors:
            by_tenant[flavor.tenant_id].append(flavor)
        for reading in readings:
            pools = by_tenant.get(reading.tenant_id)
            if not pools or reading.partition:
                continue
            for resource, allocated, borrowed in (
                ("gpu", "gpu_allocated", "gpu_borrowed"),
                ("cpu", "cpu_allocated_millicores", "cpu_borrowed_millicores"),
                ("memory", "memory_allocated_bytes", "memory_borrowed_bytes"),
            ):
                guaranteed: float | None = 0.0
                for pool in pools:
                    value = pool.figures[flavor_column(resource, "guaranteed")]
                    guaranteed = None if value is None or guaranteed is None else guaranteed + value
                reading.figures[allocated] = guaranteed
                reading.figures[borrowed] = sum(
                    p.figures[flavor_column(resource, "borrowed")] or 0.0 for p in pools
                )


# ---------------------------------------------------------------------------------------------
# YARN and HDFS


def _mb(resource: Mapping[str, Any] | None) -> float:
    return float((resource or {}).get("memory") or 0) * 2**20


def _millicores(resource: Mapping[str, Any] | None) -> float:
    return float((resource or {}).get("vCores") or 0) * 1000


class HadoopCollector(Collector):
    """YARN from the Capacity Scheduler's live tree (one call: per queue and partition, used and
    guaranteed resources, AM used and limit; applications per leaf), the running and waiting
    applications, the cluster metrics; HDFS per tenant directory, one call each within a time
    budget."""

    WAITING = "NEW,NEW_SAVING,SUBMITTED,ACCEPTED"

    def __init__(self, backend: YarnBackend, *, hdfs_budget_seconds: float = 30.0) -> None:
        self.backend = backend
        self.hdfs_budget_seconds = hdfs_budget_seconds

    def close(self) -> None:
        self.backend.close()

    def _json(self, response: requests.Response, what: str) -> dict[str, Any]:
        if response.status_code >= 400:
            raise BackendError(
                f"{what}: HTTP {response.status_code} {response.text.strip()[:300]}",
                status=response.status_code,
                transient=response.status_code >= 500,
            )
        return response.json()

    def _rm(self, path: str, what: str, **params: Any) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        return self._json(self.backend.http.rm("GET", path, headers=headers, params=params), what)

    def collect(self, targets: UsageTargets) -> Collection:
        http = self.backend.http
        calls_before = len(http.calls)
        collection = Collection()
        try:
            scheduler = self._rm("/scheduler", "Reading the scheduler")
            leaves: dict[str, str] = {}
            own: dict[tuple[int, str], dict[str, float | None]] = {}
            root = scheduler["scheduler"]["schedulerInfo"]
            for queue in as_list((root.get("queues") or {}).get("queue")):
                self._queue(queue, targets, own, leaves)
            apps = self._rm("/apps", "Reading the applications", states=f"RUNNING,{self.WAITING}")
            collection.workloads = self._applications(apps, targets, leaves)
            metrics = self._rm("/metrics", "Reading the cluster metrics").get("clusterMetrics") or {}
            collection.details["yarn"] = metrics
            hdfs = self._directories(targets, collection)
        except requests.RequestException as error:
            raise BackendError(f"The cluster did not answer: {error}", transient=True) from error
        readings = {(r.tenant_id, r.partition): r for r in subtree_readings(hdfs, targets.paths)}
        for key, figures in own.items():  # queue figures are subtree totals already
            if key in readings:
                readings[key].figures.update(figures)
            else:
                readings[key] = UsageReading(key[0], dict(figures), key[1], subtree=True)
        collection.readings = list(readings.values())
        collection.calls = len(http.calls) - calls_before
        return collection

    def _queue(
        self,
        queue: Mapping[str, Any],
        targets: UsageTargets,
        own: dict[tuple[int, str], dict[str, float | None]],
        leaves: dict[str, str],
    ) -> dict[str, list[float]]:
        """Record one queue (and its children). Returns its subtree's leaf figures YARN gives on
        leaves only, summed: per partition [AM vCores used, AM vCores limit, AM memory used, AM
        memory limit], and under "apps" [running, pending] applications."""
        path = queue.get("queuePath") or f"{ROOT}.{queue['queueName']}"
        children = as_list((queue.get("queues") or {}).get("queue"))
        usages = as_list((queue.get("resources") or {}).get("resourceUsagesByPartition"))
        totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
        if children:
            for child in children:
                for key, values in self._queue(child, targets, own, leaves).items():
                    totals[key] = [a + b for a, b in zip(totals[key], values, strict=False)]
        else:
            leaves.setdefault(queue["queueName"], path)
            totals["apps"] = [
                float(queue.get("numActiveApplications") or 0),
                float(queue.get("numPendingApplications") or 0),
            ]
            for usage in usages:
                am_used, am_limit = usage.get("amUsed"), usage.get("amLimit")
                totals[usage.get("partitionName") or ""] = [
                    _millicores(am_used),
                    _millicores(am_limit),
                    _mb(am_used),
                    _mb(am_limit),
                ]
        tenant_id = targets.queues.get(path)
        if tenant_id is None:
            return totals
        capacities = {
            p.get("partitionName") or "": p
            for p in as_list((queue.get("capacities") or {}).get("queueCapacitiesByPartition"))
        }
        for usage in usages:
            partition = usage.get("partitionName") or ""
            if partition not in capacities:
                continue
            guaranteed = capacities[partition].get("effectiveMinResource")
            # A parent queue's used resources include its children's; AM figures are the leaves'.
            am = totals.get(partition, [0.0, 0.0, 0.0, 0.0])
            figures: dict[str, float | None] = {
                "cpu_used_millicores": _millicores(usage.get("used")),
                "cpu_allocated_millicores": _millicores(guaranteed),
                "memory_used_bytes": _mb(usage.get("used")),
                "memory_allocated_bytes": _mb(guaranteed),
                "am_cpu_used_millicores": am[0],
                "am_cpu_limit_millicores": am[1],
                "am_memory_used_bytes": am[2],
                "am_memory_limit_bytes": am[3],
            }
            if partition == "":
                figures["workloads_running"], figures["workloads_pending"] = totals.get("apps", [0.0, 0.0])[
                    :2
                ]
            own[(tenant_id, partition)] = figures
        return totals

    def _tenant_of_queue(self, queue: str, targets: UsageTargets, leaves: Mapping[str, str]) -> int | None:
        path = queue if queue.startswith(f"{ROOT}.") else leaves.get(queue, queue)
        if path in targets.queues:
            return targets.queues[path]
        parent, _, leaf = path.rpartition(".")
        if leaf == targets.remainder_queue:  # a parent tenant's own work runs in its remainder leaf
            return targets.queues.get(parent)
        return None

    def _applications(
        self, apps: Mapping[str, Any], targets: UsageTargets, leaves: Mapping[str, str]
    ) -> list[WorkloadReading]:
        found = []
        for app in as_list((apps.get("apps") or {}).get("app")):
            queue = app.get("queue") or ""
            tenant_id = self._tenant_of_queue(queue, targets, leaves)
            if tenant_id is None:
                continue
            started = int(app.get("startedTime") or 0)
            # ACCEPTED with its AM container allocated is active for the scheduler (it counts in
            # numActiveApplications): running here too, so the list agrees with the queue figures.
            running = app.get("state") == "RUNNING" or int(app.get("runningContainers") or 0) > 0
            user = app.get("user") or ""
            found.append(
                WorkloadReading(
                    tenant_id=tenant_id,
                    kind="YARN application",
                    namespace=leaves.get(queue, queue),
                    name=f"{app['id']} {app.get('name') or ''}".strip()[:253],
                    submitted_by=user,
                    username=user if user in targets.usernames else "",
                    state=Workload.State.RUNNING if running else Workload.State.PENDING,
                    cpu_millicores=float(app.get("allocatedVCores") or 0) * 1000,
                    memory_bytes=float(app.get("allocatedMB") or 0) * 2**20,
                    started_at=datetime.datetime.fromtimestamp(started / 1000, datetime.UTC)
                    if started > 0
                    else None,
                )
            )
        return found

    def _summary(self, path: str) -> tuple[float, float, float | None, float | None]:
        """(space consumed, files and directories, space quota, name quota) of one directory.
        GETQUOTAUSAGE reads the NameNode's cached counts for a directory with a quota instead of
        walking the tree like GETCONTENTSUMMARY; the latter serves NameNodes before 3.3."""
        http = self.backend.http
        response = http.hdfs("GET", path, "GETQUOTAUSAGE")
        if response.status_code == 400 and "GETQUOTAUSAGE" in response.text:
            summary = self._json(http.hdfs("GET", path, "GETCONTENTSUMMARY"), f"Reading {path}")[
                "ContentSummary"
            ]
            files = float(summary.get("fileCount", 0)) + float(summary.get("directoryCount", 0))
        else:
            summary = self._json(response, f"Reading {path}")["QuotaUsage"]
            files = float(summary.get("fileAndDirectoryCount", 0))
        space_quota, name_quota = summary.get("spaceQuota", -1), summary.get("quota", -1)
        return (
            float(summary.get("spaceConsumed", 0)),
            files,
            None if space_quota is None or space_quota < 0 else float(space_quota),
            None if name_quota is None or name_quota < 0 else float(name_quota),
        )

    def _directories(
        self, targets: UsageTargets, collection: Collection
    ) -> dict[tuple[int, str], dict[str, float | None]]:
        """Each tenant's own HDFS figures. One call per directory, sequential (the Kerberos session
        is not shared between threads) and stopped after the time budget: what was not read is
        named in the pass's notes. A directory nested in another tenant directory (the default
        layout: /tenant/t1/etl inside /tenant/t1) is taken out of the outer one's figures so the
        subtree sums count it once; the quotas are each tenant's own directories'."""
        paths = sorted(targets.directories)
        deadline = time.monotonic() + self.hdfs_budget_seconds
        read: dict[str, tuple[float, float, float | None, float | None]] = {}
        missing: set[str] = set()
        for path in paths:
            if time.monotonic() > deadline:
                collection.notes.append(
                    f"HDFS: {len(paths) - len(read) - len(missing)} of {len(paths)} directories not read "
                    f"within {self.hdfs_budget_seconds:.0f} s; their tenants have no HDFS figures this pass."
                )
                break
            try:
                read[path] = self._summary(path)
            except BackendError as error:
                if error.status != 404:
                    raise
                missing.add(path)  # not created yet (its push is pending): nothing used there
        # The tenant directories directly inside each one (nearest enclosing tenant directory).
        nested: dict[str, list[str]] = defaultdict(list)
        for path in paths:
            outer = posixpath.dirname(path)
            while outer not in targets.directories and outer not in ("/", ""):
                outer = posixpath.dirname(outer)
            if outer in targets.directories:
                nested[outer].append(path)
        own: dict[tuple[int, str], dict[str, float | None]] = {}
        for path, (space, files, space_quota, name_quota) in read.items():
            inner = [p for p in nested.get(path, []) if p not in missing]
            if any(p not in read for p in inner):
                continue  # a nested directory was not read in time: this one's own share is unknown
            figures = own.setdefault((targets.directories[path], ""), {})
            space -= sum(read[p][0] for p in inner)
            files -= sum(read[p][1] for p in inner)
            figures["hdfs_space_used_bytes"] = (figures.get("hdfs_space_used_bytes") or 0.0) + space
            figures["hdfs_files_used"] = (figures.get("hdfs_files_used") or 0.0) + files
            for name, value in (("hdfs_space_quota_bytes", space_quota), ("hdfs_files_quota", name_quota)):
                before = figures.get(name, 0.0)
                figures[name] = None if value is None or before is None else before + value
        return own
