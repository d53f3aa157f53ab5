"""Issue 18, point 4, in Chromium: a platform admin creates a cluster and a pool in real units, sees a
unit error kept with what was typed, connects the cluster to the real test kube-apiserver by URL,
token and CA, tests it (the server's version), sees a clear failure for a closed port, and deletes
a pool after a confirmation dialog; a tenant admin sees none of these forms. Every page of it goes
through the console: no Django admin, no curl."""

from __future__ import annotations

import re
import socket

import pytest
from playwright.sync_api import expect

from provisioning.models import KubernetesConnection
from tenants import services
from tenants.models import Cluster, ResourcePool
from tests.browser.conftest import sign_in
from tests.clusters import kube
from tests.tenants.builders import GI, build_k8s_world

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture(scope="module")
def canopy_token(kube_cluster) -> str:
    """A token of Canopy's ServiceAccount on the test cluster, bound to deploy/clusterrole.yaml."""
    return kube.canopy_token(kube_cluster)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def submitted(response) -> bool:
    """A form's submit (a POST that is no check as the user types)."""
    request = response.request
    return request.method == "POST" and "validate=1" not in (request.post_data or "")


def card(page, name: str):
    return page.locator(f"article.cluster-card:has(h3:has-text('{name}'))")


@pytest.mark.kubernetes
def test_a_platform_admin_builds_and_connects_a_cluster_in_the_console(
    page, platform_admin, kube_cluster, canopy_token
):
    sign_in(page, platform_admin.username)
    page.goto("/pools/")
    page.click("a:has-text('New cluster')")
    expect(page.locator("h1")).to_have_text("New cluster")
    page.fill("#id_name", "gpu2")
    page.check("input[name=kind][value=kubernetes]")
    page.fill("#id_description", "A100 nodes")
    page.click("main button:has-text('Create cluster')")
    expect(page.locator(".messages")).to_contain_text("Cluster gpu2 created with its default pool")
    gpu2 = card(page, "gpu2")
    expect(gpu2).to_contain_text("A100 nodes")

    # A pool in real units; a unit error is shown as it is typed, and kept with its input on submit.
    gpu2.locator("a:has-text('Add a pool')").click()
    expect(page.locator("h1")).to_have_text("New pool of gpu2")
    page.fill("#id_name", "a100")
    page.fill("#id_node_selector", "gpu=a100")
    page.fill("#id_gpu_capacity", "8")
    page.fill("#id_cpu_capacity", "96 cores")
    page.fill("#id_memory_capacity", "640Gi")
    expect(page.locator("#err-cpu_capacity")).to_contain_text("'96 cores' is not a Kubernetes quantity")
    with page.expect_response(submitted):  # the submit's own answer, not a check's
        page.click("main button:has-text('Create pool')")
    expect(page.locator("#err-cpu_capacity")).to_contain_text("is not a Kubernetes quantity")
    expect(page.locator("#id_cpu_capacity")).to_have_value("96 cores")
    expect(page.locator("#id_memory_capacity")).to_have_value("640Gi")
    assert not ResourcePool.objects.filter(name="a100").exists()
    page.fill("#id_cpu_capacity", "96")
    expect(page.locator("#err-cpu_capacity")).to_be_empty()
    page.click("main button:has-text('Create pool')")
    expect(page.locator(".messages")).to_contain_text("Pool gpu2/a100 created.")
    pool = ResourcePool.objects.get(name="a100")
    assert (pool.gpu_capacity, pool.cpu_capacity_millicores, pool.memory_capacity_bytes) == (
        8,
        96_000,
        640 * GI,
    )
    capacities = page.locator("table.data").first
    expect(capacities).to_contain_text("8 GPUs")
    expect(capacities).to_contain_text("96 CPU")
    expect(capacities).to_contain_text("640 GiB")

    # Connect it to the real test API server by URL, token and CA, and test it.
    gpu2 = card(page, "gpu2")
    gpu2.locator("a:has-text('Connect…')").click()
    expect(page.locator("h1")).to_have_text("Connect gpu2")
    expect(page.locator("#id_server")).to_be_hidden()  # the kubeconfig upload is offered first
    page.check("input[name=mode][value=token]")
    expect(page.locator("#id_kubeconfig")).to_be_hidden()
    page.fill("#id_server", kube_cluster.server)
    page.fill("#id_token", canopy_token)
    page.fill("#id_ca_data", kube_cluster.ca_data.decode())
    page.click("main button:has-text('Save connection')")
    expect(page.locator(".messages")).to_contain_text("gpu2: connection saved")
    assert KubernetesConnection.objects.get(cluster__name="gpu2").token == canopy_token
    expect(page.locator("main")).not_to_contain_text(canopy_token)
    gpu2 = card(page, "gpu2")
    gpu2.locator("button:has-text('Test connection')").click()
    answer = gpu2.locator(".connection-check")
    expect(answer).to_contain_text("✓ Connected")
    expect(answer).to_contain_text(re.compile(r"Connected: Kubernetes v1\.\d+"))

    # A closed port: a clear failure, said the same way, in place.
    gpu2.locator("a:has-text('Change connection')").click()
    expect(page.locator("#id_token")).to_have_value("")  # never shown back
    expect(page.locator("#id_token_hint")).to_contain_text("Set: type a new one to replace it")
    closed = f"https://127.0.0.1:{closed_port()}"
    page.fill("#id_server", closed)
    page.click("main button:has-text('Save connection')")
    expect(page.locator(".messages")).to_contain_text("gpu2: connection saved")
    gpu2 = card(page, "gpu2")
    gpu2.locator("button:has-text('Test connection')").click()
    answer = gpu2.locator(".connection-check")
    expect(answer).to_contain_text("✗ Unreachable")
    expect(answer).to_contain_text(f"Cannot reach the API server at {closed}")
    expect(answer).to_contain_text("Connection refused")
    expect(answer).to_contain_text("Nothing answered: check the API server URL and port")
    assert KubernetesConnection.objects.get(cluster__name="gpu2").token == canopy_token  # kept


def test_deleting_asks_in_a_dialog_that_says_what_depends_on_it(page, platform_admin):
    w = build_k8s_world(platform_admin)
    spare = services.pool_create(acting_user=platform_admin, cluster=w.cluster, name="t4", gpu_capacity=2)
    sign_in(page, platform_admin.username)
    page.goto("/pools/")
    cluster = card(page, "gpu-cluster")
    dialog = page.locator("dialog#delete-dialog")

    cluster.locator(".tenant-head a:has-text('Delete…')").click()
    expect(dialog).to_be_visible()
    assert page.evaluate("document.getElementById('delete-dialog').matches(':modal')")
    expect(dialog.locator("h2")).to_have_text("Cluster gpu-cluster cannot be deleted")
    expect(dialog).to_contain_text("the allocations of department1 in its pools")
    expect(dialog.locator("button[type=submit]")).to_have_count(0)
    dialog.locator("button:has-text('Close')").click()
    expect(dialog).to_be_hidden()

    cluster.locator("tr:has-text('t4') a:has-text('Delete…')").click()
    expect(dialog).to_be_visible()
    expect(dialog.locator("h2")).to_have_text("Delete pool gpu-cluster/t4?")
    expect(dialog).to_contain_text("No tenant holds an allocation in gpu-cluster/t4")
    confirm = dialog.locator("button[type=submit]")
    expect(confirm).to_have_text("Delete t4")
    assert confirm.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(207, 34, 46)"
    confirm.click()
    expect(page.locator(".messages")).to_contain_text("Pool gpu-cluster/t4 deleted.")
    assert not ResourcePool.objects.filter(pk=spare.pk).exists()
    assert Cluster.objects.filter(pk=w.cluster.pk).exists()


def test_a_tenant_admin_sees_none_of_these_forms(page, platform_admin):
    w = build_k8s_world(platform_admin)
    sign_in(page, w.people.dept_admin.username)
    page.goto("/pools/")
    main = page.locator("main")
    expect(main).to_contain_text("gpu-cluster")  # the pools, for everyone
    for text in ("New cluster", "Clusters", "Connect", "Test connection", "Delete", "Edit", "Add a pool"):
        expect(main).not_to_contain_text(text)
    expect(main.locator("form, a[href^='/clusters/'], a[href*='/admin/']")).to_have_count(0)
    response = page.goto("/clusters/new/")
    assert response.status == 403
    page.console_errors.expect(r"status of 403")
    expect(page.locator("main")).not_to_contain_text("Create cluster")
