"""Usage collectors (issue 7): what each tenant uses on a cluster, read through the same clients
the provisioning backends use (so authentication, Kerberos, retries and ResourceManager/NameNode
failover are theirs), turned into `tenants.usage` readings.

One small interface: `Collector.collect(targets) -> Collection` (readings and workloads of one
pass, plus how many HTTP calls it cost). `targets` is a plain dataclass built from the database by
`provisioning.selectors.usage_targets` (namespace, queue and directory -> tenant id; tenant tree
paths; who the people are): collectors never touch the ORM, like the backends.

Every reading a collector returns is already a subtree total (`subtree=True`), computed here from
the tree paths, because one cluster can give both summed and read-as-is figures for the same
tenant and partition (a YARN parent queue's usage includes its children's; an HDFS directory's
usage is counted once, in the directory itself; a Kubernetes parent namespace only holds what it
keeps for itself) and `usage_record` stores one row per tenant and partition.

Cost per pass, whatever the number of tenants (see docs/provisioning.md, "Usage collection"):

- Kubernetes: 1 namespace list, 1 ResourceQuota list, 1 pod list, 1 Job list, 1 discovery call for kubeflow.org and
  1 list per training-job kind served there; each list is paged by 500 (`limit`/`continue`).
- YARN: 1 scheduler call, 1 application list, 1 cluster-metrics call.
- HDFS: 1 call per tenant directory: WebHDFS has no bulk read of quotas and usage.
"""

from __future__ import annotations

import abc
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
from provisioning.desired.kubernetes import MANAGED_BY, MANAGED_BY_LABEL, QUOTA_NAME
from provisioning.desired.yarn import ROOT
from tenants.models import Workload
from tenants.usage import UsageReading, WorkloadReading, subtree_totals

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


@dataclass
class Collection:
    """One pass over one cluster."""

    readings: list[UsageReading] = field(default_factory=list)
    workloads: list[WorkloadReading] = field(default_factory=list)
    calls: int = 0
    notes: list[str] = field(default_factory=list)  # what was left out, and why
    details: dict[str, Any] = field(default_factory=dict)  # cluster-wide figures (YARN metrics)


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
    """Subtree totals (`tenants.usage.subtree_totals`) from each tenant's own figures, keyed by
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
        token = ""  # nosec B105 # a list's continue token from the API server, not a password
        while True:
            page = [*(query or []), ("limit", str(PAGE))] + ([("continue", token)] if token else [])
            listed = self._get(path, page)
            yield from listed.get("items") or []
            token = (listed.get("metadata") or {}).get("continue") or ""
            if not token:
                return

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
        readings = subtree_readings({(t, ""): f for t, f in own.items()}, targets.paths, K8S_LIMITS)
        return Collection(readings=readings, workloads=workloads, calls=self.calls, notes=self.notes)

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
