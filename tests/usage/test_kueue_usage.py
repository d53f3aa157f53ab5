"""Usage from Kueue (issue 16, point 3), on the real Kueue cluster: Canopy's collector reads each
tenant's ClusterQueue status and Kueue's Workloads through its own ServiceAccount (with
deploy/clusterrole.yaml), and the console says why a job waits and what is borrowed.

- Bob's jobs beyond dev1's quota wait, suspended by Kueue: each is stored pending with its place
  in line and Kueue's reason, the place computed as Kueue orders its queue (priority, then creation
  time) since this cluster does not serve Kueue's visibility API; Kueue then admits them in that
  very order. My access says "dev1 uses 1 of 1 GPU; 2 jobs waiting, the next first in line".
- With a burst, dev1 runs above its guaranteed GPU on dev2's idle one: the pass stores what dev1
  borrows (its department, using no more than its own allocation, borrows nothing), My access
  shows "now borrowing 1 GPU", Monitoring a Borrowed and a Pending line beside Used.
- Where the visibility API is served (answered here by the fault proxy in the place of Kueue's
  aggregated server, which this cluster cannot route to), its places in line are the ones kept.
- A cluster set to the Kueue engine that has no Kueue at all is still collected, with a note.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client
from kubernetes import client

from tenants import services as tenant_services
from tenants.amounts import RESOURCE_BY_NAME
from tenants.models import Membership
from tests.clusters.kube import client_from_kubeconfig
from tests.clusters.kueue import KUEUE_API_VERSION, KUEUE_GROUP, finish_pods, job_manifest
from tests.clusters.processes import wait_until
from tests.provisioning.conftest import connect, drain
from tests.provisioning.test_kueue_arena import (
    admitted,
    burst_set,
    kubeconfig_of,
    running_on,
    wait_ready,
    waiting_for_quota,
)
from tests.tenants.builders import spec, user
from usage import collectors, dashboards
from usage import services as usage_services
from usage.models import FlavorUsage, UsageCollection, UsageSample, Workload

GPU = "nvidia.com/gpu"
HIGH = "canopy-usage-high"
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"


def bobs_job(name: str, *, priority: str | None = None) -> dict[str, Any]:
    """A one-GPU Job sent to dev1's default queue, running as Bob's ServiceAccount (how Canopy
    knows it is his)."""
    job = job_manifest(name, queue="default")
    job["spec"]["template"]["spec"]["serviceAccountName"] = "bob"
    if priority:
        job["metadata"]["labels"][PRIORITY_LABEL] = priority
    return job


def collect(cluster) -> usage_services.UsageOutcome:
    outcome = usage_services.usage_collect(cluster_id=cluster.pk)
    assert outcome.state in ("ok", "partial"), outcome.message
    return outcome


def sample(cluster, tenant) -> UsageSample:
    return UsageSample.objects.filter(cluster=cluster, tenant=tenant, partition="").latest("time")


def jobs(cluster) -> dict[str, Workload]:
    return {w.name: w for w in Workload.objects.filter(cluster=cluster, kind="Job")}


def console(person, url: str, **headers: str) -> str:
    browser = Client()
    browser.force_login(person)
    response = browser.get(url, **headers)
    assert response.status_code == 200
    return response.content.decode()


def my_access(person) -> str:
    return re.sub(r"\s+", " ", console(person, "/me/"))


@pytest.fixture
def high_priority(kueue_admin):
    custom = client.CustomObjectsApi(kueue_admin)
    custom.create_cluster_custom_object(
        KUEUE_GROUP,
        KUEUE_API_VERSION,
        "workloadpriorityclasses",
        {
            "apiVersion": f"{KUEUE_GROUP}/{KUEUE_API_VERSION}",
            "kind": "WorkloadPriorityClass",
            "metadata": {"name": HIGH},
            "value": 100,
        },
    )
    yield HIGH
    custom.delete_cluster_custom_object(KUEUE_GROUP, KUEUE_API_VERSION, "workloadpriorityclasses", HIGH)


@pytest.mark.kueue
@pytest.mark.django_db
def test_waiting_jobs_their_place_in_line_and_borrowing_from_kueue(
    platform_admin, kueue_gpu_cluster, kueue_admin, kueue_proxy, high_priority
):
    cluster, workers, _ = kueue_gpu_cluster
    department1 = tenant_services.tenant_create(
        acting_user=platform_admin, parent=None, name="department1", allocations=[spec(workers, gpu=3)]
    )
    dev1 = tenant_services.tenant_create(
        acting_user=platform_admin, parent=department1, name="dev1", allocations=[spec(workers, gpu=1)]
    )
    dev2 = tenant_services.tenant_create(
        acting_user=platform_admin, parent=department1, name="dev2", allocations=[spec(workers, gpu=2)]
    )
    bob = user("bob")
    tenant_services.membership_grant(
        acting_user=platform_admin, tenant=dev1, user=bob, role=Membership.Role.MEMBER
    )
    drain()
    wait_ready(kueue_admin, ["department1", "department1-dev1", "department1-dev2"])
    namespace = "department1-dev1"

    with client_from_kubeconfig(kubeconfig_of(bob, dev1, cluster)) as bob_api:
        batch = client.BatchV1Api(bob_api)
        # Bob's first job takes dev1's one GPU; the second waits; a third of higher priority,
        # sent last, goes before it.
        batch.create_namespaced_job(namespace, bobs_job("bob-01"))
        wait_until(lambda: running_on(kueue_admin, namespace, "bob-01"), "Bob's first job to run")
        batch.create_namespaced_job(namespace, bobs_job("bob-02"))
        wait_until(lambda: waiting_for_quota(kueue_admin, namespace, "bob-02"), "bob-02 to wait")
        batch.create_namespaced_job(namespace, bobs_job("bob-03", priority=high_priority))
        wait_until(lambda: waiting_for_quota(kueue_admin, namespace, "bob-03"), "bob-03 to wait")

        def queue_counts() -> tuple[int, int]:
            status = (
                client.CustomObjectsApi(kueue_admin)
                .get_cluster_custom_object(KUEUE_GROUP, KUEUE_API_VERSION, "clusterqueues", namespace)
                .get("status", {})
            )
            return status.get("pendingWorkloads"), status.get("admittedWorkloads")

        wait_until(lambda: queue_counts() == (2, 1), "dev1's queue to count 2 waiting, 1 admitted")

        kueue_proxy.clear()
        outcome = collect(cluster)
        # Namespaces, quotas, kubeflow discovery, pods, Jobs; ClusterQueues, LocalQueues,
        # Workloads; the visibility API's discovery (something waits).
        assert outcome.calls == 9, [e.path for e in kueue_proxy.log]
        assert outcome.state == "ok"
        assert "visibility API (visibility.kueue.x-k8s.io/v1beta2) is not served" in outcome.message
        assert "computed from the Workloads as Kueue orders a queue (priority, then creation time)" in (
            outcome.message
        )
        row = UsageCollection.objects.get(cluster=cluster)
        assert row.details["kueue"]["visibility_api"].startswith("not served (HTTP 404")
        assert row.details["kueue"]["pending_workloads"] == 2
        assert row.details["kueue"]["admitted_workloads"] == 1

        found = jobs(cluster)
        assert (found["bob-01"].state, found["bob-01"].queue_position) == ("running", None)
        for name, place in (("bob-03", 1), ("bob-02", 2)):
            job = found[name]
            assert (job.state, job.username, job.queue_position) == ("pending", "bob", place)
            assert f"insufficient unused quota for {GPU} in flavor canopy-workers, 1 more needed" in (
                job.waiting_reason
            )
        figures = sample(cluster, dev1)
        assert (figures.gpu_used, figures.gpu_allocated, figures.gpu_borrowed) == (1, 1, 0)
        assert figures.gpu_pending == 2 and figures.workloads_pending == 2
        assert figures.cpu_pending_millicores == 2000
        parent = sample(cluster, department1)
        assert (parent.gpu_used, parent.gpu_allocated, parent.gpu_pending) == (1, 3, 2)

        page = my_access(bob)
        assert "dev1 uses 1 of 1 GPU; 2 jobs waiting, the next first in line." in page
        assert "Pending</span> <small>first in line</small>" in page
        assert "Pending</span> <small>second in line</small>" in page
        assert "insufficient unused quota for nvidia.com/gpu in flavor canopy-workers" in page

        # The first finishes: Kueue admits bob-03, the one Canopy put first.
        finish_pods(kueue_admin, namespace, "bob-01")
        wait_until(lambda: running_on(kueue_admin, namespace, "bob-03"), "bob-03 to run")
        assert not admitted(kueue_admin, namespace, "bob-02")
        collect(cluster)
        found = jobs(cluster)
        assert found["bob-02"].queue_position == 1 and found["bob-03"].queue_position is None
        assert "dev1 uses 1 of 1 GPU; 1 job waiting, first in line." in my_access(bob)

        # A burst of 2: bob-02 runs on dev2's idle GPU, borrowed through department1's cohort.
        burst_set(platform_admin, dev1, workers, 2)
        drain()
        wait_until(lambda: running_on(kueue_admin, namespace, "bob-02"), "bob-02 to run, borrowing")

        def borrowed() -> float:
            collect(cluster)
            return FlavorUsage.objects.get(cluster=cluster, tenant=dev1, pool=workers).gpu_borrowed

        wait_until(lambda: borrowed() == 1, "dev1's queue status to show 1 GPU borrowed")
        flavor = FlavorUsage.objects.get(cluster=cluster, tenant=dev1, pool=workers)
        assert (flavor.gpu_used, flavor.gpu_guaranteed, flavor.gpu_reserved) == (2, 1, 2)
        # The department uses 2 of its 3 GPUs: the GPU dev1 borrows is its own sub-tenant's.
        whole = FlavorUsage.objects.get(cluster=cluster, tenant=department1, pool=workers)
        assert (whole.gpu_used, whole.gpu_guaranteed, whole.gpu_borrowed) == (2, 3, 0)
        assert FlavorUsage.objects.get(cluster=cluster, tenant=dev2, pool=workers).gpu_used == 0
        figures = sample(cluster, dev1)
        assert (figures.gpu_used, figures.gpu_allocated, figures.gpu_borrowed, figures.gpu_pending) == (
            2,
            1,
            1,
            0,
        )
        assert sample(cluster, department1).gpu_borrowed == 0
        assert not jobs(cluster)["bob-02"].waiting_reason

        page = my_access(bob)
        assert "guaranteed 1 GPU, may burst to 2 GPUs, now borrowing 1 GPU" in page
        assert "Used: 2 GPUs (100 %)" in page
        assert 'class="waiting"' not in page and "in line" not in page

        # Monitoring: a Borrowed and a Pending line beside Used and Allocated.
        html = console(bob, f"/tenants/{dev1.pk}/?tab=monitoring", HTTP_HX_REQUEST="true")
        chart = json.loads(
            re.search(rf'id="chart-{cluster.pk}--gpu"[^>]*>(.*?)</script>', html, re.S).group(1)
        )
        assert chart["extra_labels"] == ["Borrowed", "Pending"]
        # (time, used, allocated, borrowed, pending); passes of one minute are averaged in a point.
        points = chart["points"]
        assert {len(point) for point in points} == {5}
        assert max(p[3] for p in points) > 0 and max(p[4] for p in points) > 0
        assert (
            '<th scope="col" class="num">Borrowed (GPUs)</th><th scope="col" class="num">Pending (GPUs)</th>'
            in html
        )

        finish_pods(kueue_admin, namespace, "bob-02")
        finish_pods(kueue_admin, namespace, "bob-03")


@pytest.mark.kueue
@pytest.mark.django_db
def test_places_in_line_come_from_kueues_visibility_api_where_it_is_served(
    platform_admin, kueue_gpu_cluster, kueue_admin, kueue_proxy
):
    cluster, workers, _ = kueue_gpu_cluster
    tenant_services.tenant_create(
        acting_user=platform_admin, parent=None, name="vis", allocations=[spec(workers, gpu=1)]
    )
    drain()
    wait_ready(kueue_admin, ["vis"])
    batch = client.BatchV1Api(kueue_admin)
    for name in ("vis-01", "vis-02", "vis-03"):
        batch.create_namespaced_job("vis", job_manifest(name, queue="default"))
    wait_until(lambda: running_on(kueue_admin, "vis", "vis-01"), "vis-01 to run")
    for name in ("vis-02", "vis-03"):
        wait_until(lambda n=name: waiting_for_quota(kueue_admin, "vis", n), f"{name} to wait")
    listed = client.CustomObjectsApi(kueue_admin).list_namespaced_custom_object(
        KUEUE_GROUP, KUEUE_API_VERSION, "vis", "workloads"
    )["items"]
    workloads = {w["metadata"]["ownerReferences"][0]["name"]: w["metadata"] for w in listed}
    # Kueue's own order for equal priorities: creation time (to the second), then UID.
    kueue_order = sorted(
        ("vis-02", "vis-03"),
        key=lambda job: (workloads[job]["creationTimestamp"], workloads[job]["uid"]),
    )
    # What Kueue's visibility server answers (apis/visibility/v1beta2): here the other way round,
    # as after a requeue Canopy cannot see in the Workloads.
    served_order = kueue_order[::-1]
    group = "/apis/visibility.kueue.x-k8s.io/v1beta2"
    kueue_proxy.answer(
        {
            "kind": "APIResourceList",
            "groupVersion": "visibility.kueue.x-k8s.io/v1beta2",
            "resources": [
                {"name": "clusterqueues", "namespaced": False, "kind": "ClusterQueue", "verbs": ["get"]},
                {
                    "name": "clusterqueues/pendingworkloads",
                    "namespaced": False,
                    "kind": "PendingWorkloadsSummary",
                    "verbs": ["get"],
                },
            ],
        },
        path=f"^{re.escape(group)}$",
    )
    kueue_proxy.answer(
        {
            "kind": "PendingWorkloadsSummary",
            "apiVersion": "visibility.kueue.x-k8s.io/v1beta2",
            "items": [
                {
                    "metadata": {"name": workloads[job]["name"], "namespace": "vis"},
                    "priority": 0,
                    "localQueueName": "default",
                    "positionInClusterQueue": index,
                    "positionInLocalQueue": index,
                }
                for index, job in enumerate(served_order)
            ],
        },
        path=rf"^{re.escape(group)}/clusterqueues/vis/pendingworkloads\?limit=1000$",
    )
    outcome = collect(cluster)
    assert outcome.state == "ok" and outcome.message == ""
    assert outcome.calls == 10  # 8 lists and discoveries, the visibility API's discovery and one queue
    assert [e.fault for e in kueue_proxy.injected()] == ["answer 200", "answer 200"]
    assert UsageCollection.objects.get(cluster=cluster).details["kueue"]["visibility_api"] == "served"
    found = jobs(cluster)
    assert [found[job].queue_position for job in served_order] == [1, 2]

    # Not served again: the order computed from the Workloads, as Kueue's.
    collect(cluster)
    found = jobs(cluster)
    assert [found[job].queue_position for job in kueue_order] == [1, 2]
    finish_pods(kueue_admin, "vis", "vis-01")


@pytest.mark.kubernetes
@pytest.mark.django_db
def test_a_cluster_set_to_kueue_without_kueue_is_collected_with_a_note(
    platform_admin, gpu_cluster, kube_cluster, proxy, canopy_token
):
    cluster, pool = gpu_cluster
    plain = tenant_services.tenant_create(
        acting_user=platform_admin, parent=None, name="plain", allocations=[spec(pool, gpu=1)]
    )
    drain()
    # Switched to the Kueue engine on a cluster without Kueue's CRDs (its pushes will fail until
    # Kueue is installed); collection goes on with what the cluster has.
    connect(platform_admin, cluster, kube_cluster, proxy, canopy_token, quota_engine="kueue")
    outcome = usage_services.usage_collect(cluster_id=cluster.pk)
    assert outcome.state == "partial" and outcome.calls == 6  # the 5 of a ResourceQuota cluster + 1
    assert outcome.message.startswith(
        "Kueue: kueue.x-k8s.io/v1beta2 is not served on this cluster (is Kueue installed?)"
    )
    assert "the quota figures were collected" in outcome.message
    row = UsageCollection.objects.get(cluster=cluster)
    assert row.state == "partial" and row.message == outcome.message and "kueue" not in row.details
    figures = sample(cluster, plain)
    assert (figures.gpu_used, figures.gpu_allocated) == (0, 1)  # the namespace quota, as before
    assert figures.gpu_borrowed is None and figures.gpu_pending is None
    assert not FlavorUsage.objects.filter(cluster=cluster).exists()


# --------------------------------------------------------------------------- the arithmetic alone


def a_workload(name: str, created: str, *, priority: int = 0, evicted: tuple[str, str] | None = None) -> dict:
    conditions = []
    if evicted:
        reason, when = evicted
        conditions.append({"type": "Evicted", "status": "True", "reason": reason, "lastTransitionTime": when})
    return {
        "metadata": {"name": name, "uid": f"uid-{name}", "creationTimestamp": created},
        "spec": {"priority": priority},
        "status": {"conditions": conditions},
    }


def test_the_order_of_a_queue_is_kueues_priority_then_time_and_an_eviction_sends_to_the_back():
    line = [
        a_workload("old", "2026-12-05T10:00:00Z"),
        a_workload("urgent", "2026-12-05T10:05:00Z", priority=100),
        a_workload("newer", "2026-12-05T10:01:00Z"),
        a_workload("timed-out", "2026-12-05T09:00:00Z", evicted=("PodsReadyTimeout", "2026-12-05T10:02:00Z")),
        a_workload("preempted", "2026-12-05T09:30:00Z", evicted=("Preempted", "2026-12-05T10:03:00Z")),
    ]
    ordered = [w["metadata"]["name"] for w in sorted(line, key=collectors.queue_order_key)]
    # Preemption keeps a workload's creation time (Kueue's PrioritySortingWithinCohort, on by default).
    assert ordered == ["urgent", "preempted", "old", "newer", "timed-out"]


def test_a_subtree_borrows_only_what_it_uses_above_its_whole_guarantee():
    """department1 (guaranteed 3 GPUs in all) > dev1 (1, using 2: 1 borrowed from dev2), dev2 (2,
    using 0); org (2) > team (own queue 0, using 3: borrowed 1 from outside org)."""
    paths = {1: "0001", 2: "00010001", 3: "00010002", 4: "0002", 5: "00020001"}
    namespaces = {"department1": 1, "department1-dev1": 2, "department1-dev2": 3, "org": 4, "org-team": 5}
    queues = collectors.KueueQueues(
        collectors.UsageTargets(paths=paths, flavors={"canopy-workers": "workers"}), namespaces
    )

    def queue(name: str, nominal: int, used: int, borrowed: int) -> dict:
        resources = [{"name": GPU, "nominalQuota": str(nominal)}]
        usage = [{"name": GPU, "total": str(used), "borrowed": str(borrowed)}]
        return {
            "metadata": {"name": name},
            "spec": {"resourceGroups": [{"flavors": [{"name": "canopy-workers", "resources": resources}]}]},
            "status": {"flavorsUsage": [{"name": "canopy-workers", "resources": usage}]},
        }

    for name, nominal, used, borrowed in (
        ("department1", 0, 0, 0),
        ("department1-dev1", 1, 2, 1),
        ("department1-dev2", 2, 0, 0),
        ("org", 2, 0, 0),
        ("org-team", 0, 3, 3),
    ):
        queues.add_cluster_queue(queue(name, nominal, used, borrowed))
    totals = {r.tenant_id: r.figures for r in queues.flavor_totals(paths)}
    figures = {t: (f["gpu_used"], f["gpu_guaranteed"], f["gpu_borrowed"]) for t, f in totals.items()}
    assert figures == {1: (2, 3, 0), 2: (2, 1, 1), 3: (0, 2, 0), 4: (3, 2, 1), 5: (3, 0, 3)}


def test_places_and_amounts_as_people_read_them():
    assert [dashboards.in_line(n) for n in (1, 2, 10, 11, 12, 13, 21, 22, 23, 112)] == [
        "first in line",
        "second in line",
        "tenth in line",
        "11th in line",
        "12th in line",
        "13th in line",
        "21st in line",
        "22nd in line",
        "23rd in line",
        "112th in line",
    ]
    gpu, cpu, memory = (RESOURCE_BY_NAME[name] for name in ("gpu", "cpu", "memory"))
    assert dashboards.uses_of(gpu, 1, 1) == "1 of 1 GPU"
    assert dashboards.uses_of(gpu, 1, 2) == "1 of 2 GPUs"
    assert dashboards.uses_of(cpu, 500, 4000) == "500m of 4 CPU"
    assert dashboards.uses_of(memory, 2**30, 60 * 2**30) == "1 of 60 GiB"
    assert dashboards.uses_of(gpu, 3, None) == "3 GPUs (unlimited)"
