"""The Arena document with the Kueue quota engine, on the real Kueue cluster (kube-scheduler, Kueue
v0.17.0, KWOK's worker nodes): Canopy renders and applies flavors, cohorts, queues and the
admission policy through its own services, people submit batch Jobs with the kubeconfigs Canopy
hands them, and Kueue, the scheduler and the API server do the rest.

- Bob's first one-GPU Job is admitted and runs on a worker; his second waits, suspended, for want of
  dev1's quota (dev2's GPUs idle), and runs once the first finishes; Tom's jobs never see Bob's.
- A job asking for a pool dev1 lacks never lands on that pool's nodes; plain pods must be pinned to
  the tenant's pools.
- A burst (guaranteed 1, burst 2) borrows dev2's idle GPU and is preempted when dev2 needs it.
- A three-level tree is two levels of cohorts, and a sub-tree never uses more than its top tenant.
- With Kueue's webhook down a push is retried and shown failed, and completes once Kueue is back.

Every test shares the session's Kueue cluster; the cluster's own objects (flavors, root cohort,
policy) stay for the session, each test's tenants are removed after it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiException

from provisioning import services
from provisioning.models import ClusterSyncStatus, ProvisioningIntent
from tenants import services as tenant_services
from tenants.models import Allocation, Membership
from tests.clusters.kube import client_from_kubeconfig
from tests.clusters.kueue import (
    KUEUE_API_VERSION,
    KUEUE_GROUP,
    QUEUE_LABEL,
    WORKER_ROLE_LABEL,
    condition,
    finish_pods,
    job_manifest,
    job_pods,
    kueue_down,
    workload_for_job,
)
from tests.clusters.processes import wait_until
from tests.provisioning.conftest import GI, connect, drain
from tests.tenants.builders import TokenClient, spec, user

pytestmark = [pytest.mark.kueue, pytest.mark.django_db]

WORKERS = {"worker01", "worker02", "worker03"}
T4_NODES = {"t4-01", "t4-02"}
GPU = "nvidia.com/gpu"


# --------------------------------------------------------------------------- reading the cluster


def custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def kueue_get(api: client.ApiClient, plural: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    if namespace:
        return custom(api).get_namespaced_custom_object(
            KUEUE_GROUP, KUEUE_API_VERSION, namespace, plural, name
        )
    return custom(api).get_cluster_custom_object(KUEUE_GROUP, KUEUE_API_VERSION, plural, name)


def active(obj: dict[str, Any]) -> bool:
    return (condition(obj, "Active") or {}).get("status") == "True"


def gpu_quota(queue: dict[str, Any], flavor: str = "canopy-workers") -> tuple[str, str | None]:
    """(nominal, borrowing limit) of GPUs in one flavor of a ClusterQueue or Cohort."""
    for group in queue["spec"]["resourceGroups"]:
        for entry in group["flavors"]:
            if entry["name"] == flavor:
                gpus = next(r for r in entry["resources"] if r["name"] == GPU)
                return gpus["nominalQuota"], gpus.get("borrowingLimit")
    raise AssertionError(f"no flavor {flavor}")


def wait_ready(api: client.ApiClient, namespaces: list[str]) -> None:
    """Each tenant's queues active (Kueue found their flavors and cohort), its quota computed and its
    default ServiceAccount made: then Jobs are defaulted to its queue and their pods admitted."""
    core = client.CoreV1Api(api)
    for namespace in namespaces:
        wait_until(
            lambda ns=namespace: active(kueue_get(api, "clusterqueues", ns)), f"ClusterQueue {namespace}"
        )
        wait_until(
            lambda ns=namespace: active(kueue_get(api, "localqueues", "default", ns)),
            f"LocalQueue {namespace}",
        )
        wait_until(
            lambda ns=namespace: core.read_namespaced_resource_quota("canopy-quota", ns).status.hard,
            f"the quota of {namespace}",
        )
        wait_until(
            lambda ns=namespace: exists(lambda: core.read_namespaced_service_account("default", ns)), "SA"
        )


def exists(read: Any) -> bool:
    try:
        read()
        return True
    except ApiException as error:
        if error.status == 404:
            return False
        raise


def admitted(api: client.ApiClient, namespace: str, job: str) -> bool:
    workload = workload_for_job(api, namespace, job)
    return bool(workload) and (condition(workload, "Admitted") or {}).get("status") == "True"


def running_on(api: client.ApiClient, namespace: str, job: str) -> str | None:
    """The node the job's one pod runs on, once it runs."""
    pods = [p for p in job_pods(api, namespace, job) if not p.metadata.deletion_timestamp]
    if len(pods) == 1 and pods[0].status.phase == "Running":
        return pods[0].spec.node_name
    return None


def waiting_for_quota(api: client.ApiClient, namespace: str, job: str) -> dict[str, Any] | None:
    """The job's QuotaReserved=False condition, once Kueue has looked at it."""
    workload = workload_for_job(api, namespace, job)
    reserved = condition(workload, "QuotaReserved") if workload else None
    return reserved if reserved and reserved["status"] == "False" else None


def submit(
    api: client.ApiClient, namespace: str, name: str, *, queue: str | None = "default", **extra
) -> None:
    job = job_manifest(name, queue=queue or "default", **extra)
    if queue is None:  # no label: Kueue's LocalQueueDefaulting sends it to the `default` LocalQueue
        del job["metadata"]["labels"][QUEUE_LABEL]
    client.BatchV1Api(api).create_namespaced_job(namespace, job)


def pod(name: str, *, node_selector: dict[str, str] | None = None, node_name: str | None = None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": node_selector or {},
            **({"nodeName": node_name} if node_name else {}),
            "containers": [{"name": "main", "image": "registry.invalid/train:1"}],
        },
    }


def refusal(call: Any) -> str:
    with pytest.raises(ApiException) as refused:
        call()
    assert refused.value.status == 403, refused.value.body
    return json.loads(refused.value.body)["message"]


def kubeconfig_of(person, tenant, cluster) -> dict[str, Any]:
    response = (
        TokenClient().as_user(person).get(f"/api/v1/tenants/{tenant.pk}/kubeconfig/?cluster={cluster.pk}")
    )
    assert response.status_code == 200, response.content
    return yaml.safe_load(response.content)


def burst_set(admin, tenant, pool, gpus: int) -> None:
    """The tenant's GPUs in the pool keep their guaranteed amount and may burst to `gpus` (the
    allocation service, with its burst rules; the rest of the allocation as it is)."""
    allocation = Allocation.objects.get(tenant=tenant, pool=pool)
    amounts = {name: getattr(allocation, name) for name in ("gpu", "cpu_millicores", "memory_bytes")}
    tenant_services.allocation_set(
        acting_user=admin, tenant=tenant, spec=spec(pool, **amounts, gpu_burst=gpus)
    )


def synced(*tenants) -> dict[str, str]:
    return {
        s.sync.tenant_path: s.state
        for s in ClusterSyncStatus.objects.filter(sync__tenant_id__in=[t.pk for t in tenants]).select_related(
            "sync"
        )
    }


# --------------------------------------------------------------------------- the Arena document


def test_arena_with_kueue_jobs_wait_for_their_tenants_quota_on_their_pools_and_bursts_are_reclaimed(
    platform_admin, kueue_gpu_cluster, kueue_admin
):
    cluster, workers, t4 = kueue_gpu_cluster
    admin = kueue_admin
    dev1 = tenant_services.tenant_create(
        acting_user=platform_admin, parent=None, name="dev1", allocations=[spec(workers, gpu=1)]
    )
    dev2 = tenant_services.tenant_create(
        acting_user=platform_admin,
        parent=None,
        name="dev2",
        allocations=[spec(workers, gpu=2, cpu_millicores=8000, memory_bytes=60 * GI)],
    )
    bob, tom = user("bob"), user("tom")
    tenant_services.membership_grant(
        acting_user=platform_admin, tenant=dev1, user=bob, role=Membership.Role.MEMBER
    )
    tenant_services.membership_grant(
        acting_user=platform_admin, tenant=dev2, user=tom, role=Membership.Role.MEMBER
    )
    drain()
    assert synced(dev1, dev2) == {"dev1": "synced", "dev2": "synced"}

    # What Canopy put there: a flavor per pool on the pools' nodes, the root cohort, a queue per
    # tenant only for its namespace, the quota as the ceiling.
    flavor = kueue_get(admin, "resourceflavors", "canopy-workers")
    assert flavor["spec"]["nodeLabels"] == {WORKER_ROLE_LABEL: ""}
    assert kueue_get(admin, "resourceflavors", "canopy-t4")["spec"]["nodeLabels"] == {"gpu": "t4"}
    assert kueue_get(admin, "cohorts", "canopy-root")["metadata"]["labels"]["canopy.io/tenant-id"] == "0"
    queue = kueue_get(admin, "clusterqueues", "dev1")
    assert queue["spec"]["cohortName"] == "canopy-root"
    assert queue["spec"]["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "dev1"}}
    assert gpu_quota(queue) == ("1", "0")
    assert gpu_quota(kueue_get(admin, "clusterqueues", "dev2")) == ("2", "0")
    wait_ready(admin, ["dev1", "dev2"])

    bob_config, tom_config = kubeconfig_of(bob, dev1, cluster), kubeconfig_of(tom, dev2, cluster)
    with client_from_kubeconfig(bob_config) as bob_api, client_from_kubeconfig(tom_config) as tom_api:
        # Bob's first one-GPU job (no queue named: Kueue gives it dev1's default queue) is admitted
        # and runs on a worker, with the flavor's node label Kueue put on its pod.
        submit(bob_api, "dev1", "tf-git-bob-01", queue=None)
        node = wait_until(lambda: running_on(admin, "dev1", "tf-git-bob-01"), "Bob's first job to run")
        assert node in WORKERS
        [first_pod] = job_pods(admin, "dev1", "tf-git-bob-01")
        assert first_pod.spec.node_selector == {WORKER_ROLE_LABEL: ""}
        first_job = client.BatchV1Api(admin).read_namespaced_job("tf-git-bob-01", "dev1")
        assert first_job.metadata.labels[QUEUE_LABEL] == "default"
        assert (
            workload_for_job(admin, "dev1", "tf-git-bob-01")["status"]["admission"]["clusterQueue"] == "dev1"
        )

        # His second waits, suspended, with Kueue's reason, though dev2's two GPUs are idle.
        submit(bob_api, "dev1", "tf-git-bob-02")
        reserved = wait_until(
            lambda: waiting_for_quota(admin, "dev1", "tf-git-bob-02"), "Bob's second to wait"
        )
        assert reserved["reason"] == "Pending"
        assert (
            f"insufficient unused quota for {GPU} in flavor canopy-workers, 1 more needed"
            in reserved["message"]
        )
        assert client.BatchV1Api(admin).read_namespaced_job("tf-git-bob-02", "dev1").spec.suspend is True
        assert job_pods(admin, "dev1", "tf-git-bob-02") == []

        # Tom's job runs at once: dev2's queue is its own. He sees his workloads, not Bob's.
        submit(tom_api, "dev2", "tf-git-tom-01")
        assert wait_until(lambda: running_on(admin, "dev2", "tf-git-tom-01"), "Tom's job to run") in WORKERS
        tom_workloads = custom(tom_api).list_namespaced_custom_object(
            KUEUE_GROUP, KUEUE_API_VERSION, "dev2", "workloads"
        )["items"]
        assert [w["metadata"]["ownerReferences"][0]["name"] for w in tom_workloads] == ["tf-git-tom-01"]
        for plural in ("workloads", "localqueues"):
            with pytest.raises(ApiException) as forbidden:
                custom(tom_api).list_namespaced_custom_object(KUEUE_GROUP, KUEUE_API_VERSION, "dev1", plural)
            assert forbidden.value.status == 403
        # Bob reads why he waits from his own queue.
        wait_until(
            lambda: (
                kueue_get(bob_api, "localqueues", "default", "dev1").get("status", {}).get("pendingWorkloads")
                == 1
            ),
            "dev1's queue to count the waiting job",
        )
        assert kueue_get(bob_api, "localqueues", "default", "dev1")["status"]["admittedWorkloads"] == 1

        # Plain pods must be pinned to dev1's pool, and may not pick their node.
        core = client.CoreV1Api(bob_api)
        on_t4 = refusal(lambda: core.create_namespaced_pod("dev1", pod("on-t4", node_selector={"gpu": "t4"})))
        assert "ValidatingAdmissionPolicy 'canopy-tenant-node-pools'" in on_t4
        assert (
            f"Pods in namespace dev1 run only on its pools' nodes: set spec.nodeSelector to {WORKER_ROLE_LABEL}="
            in on_t4
        )
        assert "its pools' nodes" in refusal(lambda: core.create_namespaced_pod("dev1", pod("anywhere")))
        named = pod("named", node_selector={WORKER_ROLE_LABEL: ""}, node_name="t4-01")
        assert "spec.nodeName may not be set" in refusal(lambda: core.create_namespaced_pod("dev1", named))
        core.create_namespaced_pod("dev1", pod("pinned", node_selector={WORKER_ROLE_LABEL: ""}))
        assert (
            wait_until(lambda: core.read_namespaced_pod("pinned", "dev1").spec.node_name, "pinned") in WORKERS
        )
        core.delete_namespaced_pod("pinned", "dev1")

        # The first finishes: the second is admitted and runs on a worker.
        finish_pods(admin, "dev1", "tf-git-bob-01")
        assert (
            wait_until(lambda: running_on(admin, "dev1", "tf-git-bob-02"), "Bob's second to run") in WORKERS
        )

        # A job asking for the T4 pool, which dev1 lacks, gets dev1's flavor (workers) added to its
        # selector: it can land nowhere, and never on a T4 node.
        finish_pods(admin, "dev1", "tf-git-bob-02")
        submit(bob_api, "dev1", "tf-on-t4", node_selector={"gpu": "t4"})
        wait_until(lambda: admitted(admin, "dev1", "tf-on-t4"), "the T4 job's admission by Kueue")

        def unschedulable() -> Any:
            pods = job_pods(admin, "dev1", "tf-on-t4")
            scheduled = pods and next(
                (c for c in pods[0].status.conditions or [] if c.type == "PodScheduled"), None
            )
            return scheduled if scheduled and scheduled.reason == "Unschedulable" else None

        wait_until(unschedulable, "the scheduler to find no node for the T4 job")
        [t4_pod] = job_pods(admin, "dev1", "tf-on-t4")
        assert t4_pod.spec.node_selector == {"gpu": "t4", WORKER_ROLE_LABEL: ""}
        assert not t4_pod.spec.node_name
        client.BatchV1Api(bob_api).delete_namespaced_job("tf-on-t4", "dev1", propagation_policy="Background")
        wait_until(lambda: workload_for_job(admin, "dev1", "tf-on-t4") is None, "the T4 job's workload to go")

        # Guaranteed 1, burst 2: dev1 borrows one of dev2's idle GPUs...
        finish_pods(admin, "dev2", "tf-git-tom-01")
        burst_set(platform_admin, dev1, workers, 2)
        drain()
        assert gpu_quota(kueue_get(admin, "clusterqueues", "dev1")) == ("1", "1")
        assert client.CoreV1Api(admin).read_namespaced_resource_quota("canopy-quota", "dev1").spec.hard == {
            f"requests.{GPU}": "2"
        }
        submit(bob_api, "dev1", "tf-burst-01")
        wait_until(lambda: running_on(admin, "dev1", "tf-burst-01"), "Bob's guaranteed job to run")
        submit(bob_api, "dev1", "tf-burst-02")
        wait_until(lambda: running_on(admin, "dev1", "tf-burst-02"), "Bob's borrowing job to run")

        def gpus_used_and_borrowed() -> tuple[str, str]:
            usage = kueue_get(admin, "clusterqueues", "dev1").get("status", {}).get("flavorsUsage") or []
            gpus = [r for flavor in usage for r in flavor["resources"] if r["name"] == GPU]
            return (gpus[0]["total"], gpus[0].get("borrowed", "0")) if gpus else ("", "")

        wait_until(
            lambda: gpus_used_and_borrowed() == ("2", "1"), "dev1's queue to show 2 GPUs used, 1 borrowed"
        )

        # ...and gives it back when dev2 needs it: one of Bob's jobs is preempted, Tom's both run.
        submit(tom_api, "dev2", "tf-reclaim-01")
        submit(tom_api, "dev2", "tf-reclaim-02")
        for job in ("tf-reclaim-01", "tf-reclaim-02"):
            assert (
                wait_until(lambda j=job: running_on(admin, "dev2", j), f"Tom's {job} to run", timeout=90)
                in WORKERS
            )

        def preempted(job: str) -> bool:
            evicted = condition(workload_for_job(admin, "dev1", job) or {}, "Preempted")
            return (
                bool(evicted) and evicted["status"] == "True" and evicted["reason"] == "InCohortReclamation"
            )

        assert [preempted(job) for job in ("tf-burst-01", "tf-burst-02")].count(True) == 1
        assert [bool(running_on(admin, "dev1", job)) for job in ("tf-burst-01", "tf-burst-02")].count(
            True
        ) == 1


# --------------------------------------------------------------------------- a deeper tree


def test_a_three_level_tree_is_cohorts_within_cohorts_and_a_subtree_never_exceeds_its_top(
    platform_admin, kueue_gpu_cluster, kueue_admin, kueue_proxy
):
    _, workers, _ = kueue_gpu_cluster
    admin = kueue_admin
    org = tenant_services.tenant_create(
        acting_user=platform_admin, parent=None, name="org", allocations=[spec(workers, gpu=2)]
    )
    team = tenant_services.tenant_create(
        acting_user=platform_admin, parent=org, name="team", allocations=[spec(workers, gpu=2)]
    )
    x = tenant_services.tenant_create(  # x may burst to 2: borrow y's idle GPU, inside team
        acting_user=platform_admin, parent=team, name="x", allocations=[spec(workers, gpu=1, gpu_burst=2)]
    )
    y = tenant_services.tenant_create(
        acting_user=platform_admin, parent=team, name="y", allocations=[spec(workers, gpu=1)]
    )
    other = tenant_services.tenant_create(
        acting_user=platform_admin, parent=None, name="other", allocations=[spec(workers, gpu=1)]
    )
    drain()
    assert set(synced(org, team, x, y, other).values()) == {"synced"}

    # org and team are cohorts (team inside org); every tenant has its queue, x and y in team's cohort.
    assert kueue_get(admin, "cohorts", "org")["spec"]["parentName"] == "canopy-root"
    assert kueue_get(admin, "cohorts", "org-team")["spec"]["parentName"] == "org"
    cohorts = {
        name: kueue_get(admin, "clusterqueues", name)["spec"]["cohortName"]
        for name in ("org", "org-team", "org-team-x", "org-team-y", "other")
    }
    assert cohorts == {
        "org": "org",
        "org-team": "org-team",
        "org-team-x": "org-team",
        "org-team-y": "org-team",
        "other": "canopy-root",
    }
    # Each cohort brings nothing of its own and borrows nothing from outside (no burst above x).
    assert gpu_quota(kueue_get(admin, "cohorts", "org")) == ("0", "0")
    assert gpu_quota(kueue_get(admin, "clusterqueues", "org-team")) == ("0", "0")  # its children hold it all
    namespaces = ["org", "org-team", "org-team-x", "org-team-y", "other"]
    wait_ready(admin, namespaces)

    # Nothing to do: the full reconcile compares the whole cluster and pushes no one; each push
    # with drift checking reads but writes nothing.
    tenants = [org, team, x, y, other]
    kueue_proxy.clear()
    assert services.reconcile_all() == []
    for tenant in tenants:
        services.tenant_reconcile(tenant_id=tenant.pk, check_drift=True)
    assert kueue_proxy.writes() == []
    # Edited by hand: a queue's borrowing limit (only x is pushed) and a flavor's node labels (the
    # cluster's own objects: they alone are pushed, as their own owner, id 0).
    groups = kueue_get(admin, "clusterqueues", "org-team-x")["spec"]["resourceGroups"]
    del groups[0]["flavors"][0]["resources"][2]["borrowingLimit"]
    custom(admin).patch_cluster_custom_object(
        KUEUE_GROUP, KUEUE_API_VERSION, "clusterqueues", "org-team-x", {"spec": {"resourceGroups": groups}}
    )
    assert services.reconcile_all() == [x.pk]
    assert gpu_quota(kueue_get(admin, "clusterqueues", "org-team-x")) == ("1", "1")
    status = ClusterSyncStatus.objects.get(sync__tenant_id=x.pk)
    assert (
        status.drift_detected_at is not None and "borrowingLimit is None, wanted '1'" in status.drift_detail
    )
    custom(admin).patch_cluster_custom_object(
        KUEUE_GROUP,
        KUEUE_API_VERSION,
        "resourceflavors",
        "canopy-workers",
        {"spec": {"nodeLabels": {"gpu": "t4"}}},
    )
    assert services.reconcile_all() == [0]
    assert kueue_get(admin, "resourceflavors", "canopy-workers")["spec"]["nodeLabels"] == {
        WORKER_ROLE_LABEL: ""
    }
    own = ClusterSyncStatus.objects.get(sync__tenant_id=0)
    assert own.state == "synced" and "nodeLabels.gpu is 't4', wanted None" in own.drift_detail

    # y uses its GPU; x its own, and would burst, but team and org may not borrow the GPU `other`
    # leaves idle: the subtree stays at org's 2 GPUs.
    submit(admin, "org-team-y", "y-01")
    submit(admin, "org-team-x", "x-01")
    for namespace, job in (("org-team-y", "y-01"), ("org-team-x", "x-01")):
        assert wait_until(lambda n=namespace, j=job: running_on(admin, n, j), f"{job} to run") in WORKERS
    submit(admin, "org-team-x", "x-02")
    reserved = wait_until(lambda: waiting_for_quota(admin, "org-team-x", "x-02"), "x's burst to wait")
    assert f"insufficient unused quota for {GPU} in flavor canopy-workers" in reserved["message"]

    # Give org (and team) a burst of 3: the same job now borrows other's idle GPU through both cohorts.
    burst_set(platform_admin, org, workers, 3)
    burst_set(platform_admin, team, workers, 3)
    drain()
    assert gpu_quota(kueue_get(admin, "cohorts", "org")) == ("0", "1")
    assert wait_until(lambda: running_on(admin, "org-team-x", "x-02"), "x's burst to run") in WORKERS


# --------------------------------------------------------------------------- Kueue's webhook down


def test_with_kueues_webhook_down_a_push_is_retried_and_shown_failed_then_completes(
    platform_admin, kueue_gpu_cluster, kueue_cluster, kueue_admin, kueue_proxy, kueue_canopy_token
):
    cluster, workers, _ = kueue_gpu_cluster
    lab = tenant_services.tenant_create(
        acting_user=platform_admin,
        parent=None,
        name="lab",
        allocations=[spec(workers, gpu=1, cpu_millicores=4000, memory_bytes=8 * GI)],
    )
    drain()
    assert synced(lab) == {"lab": "synced"}

    with kueue_down(kueue_cluster):
        tenant_services.allocation_set(
            acting_user=platform_admin,
            tenant=lab,
            spec=spec(workers, gpu=1, cpu_millicores=2000, memory_bytes=8 * GI),
        )
        # The preview reads only: it shows what the push will change, Kueue or not.
        [preview] = services.tenant_preview(acting_user=platform_admin, tenant=lab)
        assert {str(c.ref) for c in preview.plan.changes} == {
            "ResourceQuota lab/canopy-quota",
            "ClusterQueue lab",
        }
        kueue_proxy.clear()
        with pytest.raises(services.RetryLater) as retry:  # the task retries it with backoff
            services.tenant_reconcile(tenant_id=lab.pk)
        assert "failed calling webhook" in str(retry.value)

        status = ClusterSyncStatus.objects.get(sync__tenant_id=lab.pk)
        assert status.state == "failed"
        assert status.message.startswith("ClusterQueue lab: HTTP 500 from the API server")
        assert "failed calling webhook" in status.message and "kb.io" in status.message
        [intent] = ProvisioningIntent.objects.filter(tenant_id=lab.pk, state__in=services.OPEN)
        assert (
            intent.state == "failed"
            and intent.attempts == 1
            and "failed calling webhook" in intent.last_error
        )
        # Each write to the queue was tried again inside the push before it gave up (urllib3 retries).
        queue_writes = [e for e in kueue_proxy.writes() if "/clusterqueues/lab" in e.path]
        assert len(queue_writes) == 4 and {e.status for e in queue_writes} == {500}
        # The queue on the cluster is as it was: Kueue still admits by the old quota until the retry.
        old = kueue_get(kueue_admin, "clusterqueues", "lab")
        cpu = next(
            r for r in old["spec"]["resourceGroups"][0]["flavors"][0]["resources"] if r["name"] == "cpu"
        )
        assert cpu["nominalQuota"] == "4"

    # Kueue is back: once its backoff has passed, beat's re-drive sends the push again (the task
    # runs in-process here) and it completes, nothing of the change lost.
    wait_until(lambda: services.intents_redrive() == [lab.pk], "beat to re-drive the failed push")
    new = kueue_get(kueue_admin, "clusterqueues", "lab")
    cpu = next(r for r in new["spec"]["resourceGroups"][0]["flavors"][0]["resources"] if r["name"] == "cpu")
    assert cpu["nominalQuota"] == "2"
    assert not ProvisioningIntent.objects.filter(tenant_id=lab.pk, state__in=services.OPEN).exists()
    status = ClusterSyncStatus.objects.get(sync__tenant_id=lab.pk)
    assert status.state == "synced" and status.last_result["quota_engine"] == "kueue"

    # The cluster goes back to ResourceQuotas alone: the next push takes Kueue's objects away, the
    # tenant's and the cluster's own (the policy first of all: the namespace is no longer pinned).
    connect(
        platform_admin, cluster, kueue_cluster, kueue_proxy, kueue_canopy_token, quota_engine="resourcequota"
    )
    drain()
    status = ClusterSyncStatus.objects.get(sync__tenant_id=lab.pk)
    assert status.state == "synced" and status.last_result["quota_engine"] == "resourcequota"

    def gone(plural: str, name: str, namespace: str | None = None) -> bool:
        try:
            return bool(kueue_get(kueue_admin, plural, name, namespace)["metadata"].get("deletionTimestamp"))
        except ApiException as error:
            return error.status == 404

    assert gone("clusterqueues", "lab") and gone("localqueues", "default", "lab")
    assert gone("cohorts", "canopy-root") and gone("resourceflavors", "canopy-workers")
    policies = client.AdmissionregistrationV1Api(kueue_admin).list_validating_admission_policy(
        label_selector="app.kubernetes.io/managed-by=canopy"
    )
    assert policies.items == []
    namespace = client.CoreV1Api(kueue_admin).read_namespace("lab").metadata
    assert "canopy.io/quota-engine" not in namespace.labels
    assert "canopy.io/node-pools" not in (namespace.annotations or {})
    # Then a push lists no Kueue kind any more and has nothing to do.
    kueue_proxy.clear()
    services.tenant_reconcile(tenant_id=lab.pk, check_drift=True)
    assert kueue_proxy.writes() == [] and not [e for e in kueue_proxy.log if "kueue.x-k8s.io" in e.path]
    # Flavors wait for their queues to go (Kueue's finalizer); the next test makes them again.
    wait_until(
        lambda: not exists(lambda: kueue_get(kueue_admin, "resourceflavors", "canopy-workers")), "flavor"
    )
