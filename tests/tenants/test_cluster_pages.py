"""Issue 18, point 4: platform admins create, change and delete clusters and pools on the console, in
real units, through the same services as the API; every refusal is a form error that keeps what
was typed; a deletion is asked first, saying what depends on it. Nobody else gets the forms (403)
or sees them on the Pools page, and the page costs the same queries for 1 cluster as for 6."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from provisioning import services as provisioning_services
from tenants import services
from tenants.models import Allocation, AuditEvent, Cluster, QuotaPlan, ResourcePool
from tests.tenants.builders import GI, spec
from tests.tenants.test_api_permissions import person, state_of_the_world

pytestmark = pytest.mark.django_db

NOT_PLATFORM = ["outsider", "bob", "dev1_viewer", "dev1_admin", "dept_admin"]


def client_as(world, who: str) -> Client:
    client = Client()
    client.force_login(person(world, who))
    return client


def htmx(client: Client, url: str, data: dict) -> str:
    return client.post(url, data, HTTP_HX_REQUEST="true").content.decode()


def errors_of(fragment: str, field: str) -> list[str]:
    """The errors the live check swaps into one field's list."""
    found = re.search(rf'<ul class="errorlist" id="err-{field}"[^>]*>(.*?)</ul>', fragment, re.S)
    assert found, f"no error list for {field}"
    return re.findall(r"<li>(.*?)</li>", found.group(1), re.S)


# ---------------------------------------------------------------------------------------------
# Clusters


def test_a_platform_admin_creates_a_cluster_with_its_default_pool(k8s_world):
    w = k8s_world
    client = client_as(w, "platform")
    assert 'href="/clusters/new/"' in client.get("/pools/").content.decode()
    form = client.get("/clusters/new/").content.decode()
    assert 'name="name"' in form and 'value="yarn"' in form

    saved = client.post(
        "/clusters/new/", {"name": "bigdata", "kind": "yarn", "description": "MRS"}, HTTP_HX_REQUEST="true"
    )
    cluster = Cluster.objects.get(name="bigdata")
    assert saved["HX-Redirect"] == f"/pools/#cluster-{cluster.pk}"
    assert (cluster.kind, cluster.description) == ("yarn", "MRS")
    assert list(cluster.pools.values_list("name", flat=True)) == ["default"]
    assert AuditEvent.objects.filter(action="CLUSTER_CREATED", target_repr="bigdata").exists()


def test_a_refused_cluster_keeps_what_was_typed_and_a_check_saves_nothing(k8s_world):
    w = k8s_world
    client = client_as(w, "platform")
    events = AuditEvent.objects.count()
    check = htmx(client, "/clusters/new/", {"name": "gpu-cluster", "kind": "kubernetes", "validate": "1"})
    assert errors_of(check, "name") == ["Cluster with this Name already exists."]
    check = htmx(client, "/clusters/new/", {"name": "new-one", "kind": "kubernetes", "validate": "1"})
    assert errors_of(check, "name") == [] and not Cluster.objects.filter(name="new-one").exists()
    # Without JavaScript: the page again, as typed, with the service's words on the field.
    page = client.post("/clusters/new/", {"name": "Bad_Name", "kind": "yarn", "description": "typed"})
    html = page.content.decode()
    assert page.status_code == 200 and 'value="Bad_Name"' in html and "typed</textarea>" in html
    assert "DNS-1123 label" in html and re.search(r'value="yarn"[^>]*checked', html)
    assert AuditEvent.objects.count() == events and Cluster.objects.count() == 1


def test_a_clusters_name_and_kind_are_fixed_its_description_changes(k8s_world):
    w = k8s_world
    client = client_as(w, "platform")
    form = client.get(f"/clusters/{w.cluster.pk}/").content.decode()
    assert re.search(r'name="name"[^>]*disabled', form)
    saved = client.post(
        f"/clusters/{w.cluster.pk}/", {"name": "renamed", "kind": "yarn", "description": "Arena's cluster"}
    )
    assert saved.status_code == 302
    w.cluster.refresh_from_db()
    assert (w.cluster.name, w.cluster.kind, w.cluster.description) == (
        "gpu-cluster",
        "kubernetes",
        "Arena's cluster",
    )


# ---------------------------------------------------------------------------------------------
# Pools, in real units


def test_a_pool_is_created_in_real_units(k8s_world):
    w = k8s_world
    client = client_as(w, "platform")
    form = client.get(f"/clusters/{w.cluster.pk}/pools/new/").content.decode()
    assert "GPUs" in form and "Node selector" in form
    body = {
        "name": "a100",
        "node_selector": "gpu=a100",
        "gpu_capacity": "8",
        "cpu_capacity": "96",
        "memory_capacity": "1.5Ti",
    }
    saved = client.post(f"/clusters/{w.cluster.pk}/pools/new/", body)
    assert saved.status_code == 302 and saved["Location"] == f"/pools/#cluster-{w.cluster.pk}"
    pool = ResourcePool.objects.get(cluster=w.cluster, name="a100")
    assert (pool.gpu_capacity, pool.cpu_capacity_millicores, pool.memory_capacity_bytes) == (
        8,
        96_000,
        1536 * GI,
    )
    assert pool.node_selector == "gpu=a100"
    # The form shows it back as it was written.
    edit = client.get(f"/pools/{pool.pk}/").content.decode()
    assert 'value="96"' in edit and 'value="1536Gi"' in edit and 'value="8"' in edit


def test_a_unit_error_is_kept_with_its_input_and_the_other_checks_still_run(k8s_world):
    w = k8s_world
    client = client_as(w, "platform")
    url = f"/clusters/{w.cluster.pk}/pools/new/"
    body = {
        "name": "Bad_Name",
        "node_selector": "gpu in (a100)",
        "gpu_capacity": "8",
        "cpu_capacity": "96x",
        "memory_capacity": "60Gi",
    }
    check = htmx(client, url, {**body, "validate": "1"})
    assert errors_of(check, "cpu_capacity") == [
        "&#x27;96x&#x27; is not a Kubernetes quantity (examples: 8, 500m, 1.5, 60Gi, 512Mi)."
    ]
    assert "DNS-1123 label" in errors_of(check, "name")[0]
    # The service checks the selector after the name: it is checked anyway, under a stand-in name.
    assert "is not a key=value pair" in errors_of(check, "node_selector")[0]
    page = client.post(url, body).content.decode()
    assert 'value="96x"' in page and "is not a Kubernetes quantity" in page and 'value="60Gi"' in page
    assert not ResourcePool.objects.filter(cluster=w.cluster).exclude(name="default").exists()


def test_yarn_pools_count_whole_vcores_and_take_a_node_label(yarn_world):
    w = yarn_world
    client = client_as_user(w.admin)
    form = client.get(f"/clusters/{w.cluster.pk}/pools/new/").content.decode()
    assert 'name="gpu_capacity"' not in form and "vCores" in form and "Node label (partition)" in form
    body = {"name": "gpu-nodes", "node_selector": "a=b", "cpu_capacity": "1.5", "memory_capacity": "64Gi"}
    check = htmx(client, f"/clusters/{w.cluster.pk}/pools/new/", {**body, "validate": "1"})
    assert errors_of(check, "cpu_capacity") == ["YARN counts whole vCores."]
    assert "node label" in errors_of(check, "node_selector")[0]
    saved = client.post(
        f"/clusters/{w.cluster.pk}/pools/new/", {**body, "node_selector": "GPU", "cpu_capacity": "16"}
    )
    assert saved.status_code == 302
    assert ResourcePool.objects.get(name="gpu-nodes").cpu_capacity_millicores == 16_000


def client_as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_pool_is_never_lowered_below_what_tenants_hold_and_the_refusal_names_them(k8s_world):
    w = k8s_world
    client = client_as(w, "platform")
    body = {"node_selector": "", "gpu_capacity": "2", "cpu_capacity": "12", "memory_capacity": "90Gi"}
    events = AuditEvent.objects.count()
    page = client.post(f"/pools/{w.pool.pk}/", body, HTTP_HX_REQUEST="true").content.decode()
    assert errors_of(page, "gpu_capacity") == [
        "Level-1 tenants hold 3 GPUs of pool gpu-cluster/default: department1 (3 GPUs). Lower their "
        "allocations before the pool goes below that."
    ]
    w.pool.refresh_from_db()
    assert w.pool.gpu_capacity == 3 and AuditEvent.objects.count() == events
    again = client.post(f"/pools/{w.pool.pk}/", body).content.decode()  # without JavaScript
    assert 'value="2"' in again and "Level-1 tenants hold 3 GPUs of pool gpu-cluster/default" in again


def test_a_pool_name_is_unique_in_its_cluster(k8s_world):
    w = k8s_world
    client = client_as(w, "platform")
    body = {
        "name": "default",
        "gpu_capacity": "1",
        "cpu_capacity": "1",
        "memory_capacity": "1Gi",
        "validate": "1",
    }
    check = htmx(client, f"/clusters/{w.cluster.pk}/pools/new/", body)
    assert errors_of(check, "name") == ["Resource pool with this Cluster and Name already exists."]


# ---------------------------------------------------------------------------------------------
# Deleting, asked first


def test_deleting_a_pool_is_asked_in_a_dialog_saying_what_depends_on_it(k8s_world):
    w = k8s_world
    client = client_as(w, "platform")
    a100 = services.pool_create(acting_user=w.admin, cluster=w.cluster, name="a100", gpu_capacity=4)
    services.plan_create(acting_user=w.admin, name="a100-small", allocations=[spec(a100, gpu=1)])
    services.allocation_set(acting_user=w.admin, tenant=w.department1, spec=spec(a100, gpu=2))

    dialog = client.get(f"/pools/{a100.pk}/delete/", HTTP_HX_REQUEST="true").content.decode()
    assert dialog.startswith("<dialog") or "<dialog" in dialog.split("\n", 2)[1]
    assert "Pool gpu-cluster/a100 cannot be deleted" in dialog
    assert f'href="/tenants/{w.department1.pk}/?tab=resources">department1</a>' in dialog
    assert 'type="submit"' not in dialog  # nothing to confirm
    refused = client.post(f"/pools/{a100.pk}/delete/", follow=True).content.decode()
    assert "Tenants department1 have allocations in gpu-cluster/a100; remove them first." in refused

    services.allocation_delete(acting_user=w.admin, allocation=Allocation.objects.get(pool=a100))
    dialog = client.get(f"/pools/{a100.pk}/delete/", HTTP_HX_REQUEST="true").content.decode()
    assert "Delete pool gpu-cluster/a100?" in dialog and "a100-small loses its entry for this pool" in dialog
    assert 'class="danger">Delete a100</button>' in dialog
    page = client.get(f"/pools/{a100.pk}/delete/").content.decode()  # without JavaScript: a page
    assert "<dialog" not in page and "Delete pool gpu-cluster/a100?" in page
    done = client.post(f"/pools/{a100.pk}/delete/", follow=True).content.decode()
    assert "Pool gpu-cluster/a100 deleted." in done
    assert not ResourcePool.objects.filter(pk=a100.pk).exists()
    assert not QuotaPlan.objects.get(name="a100-small").allocations.exists()


def test_the_default_pool_is_kept(k8s_world):
    w = k8s_world
    client = client_as(w, "platform")
    assert f'href="/pools/{w.pool.pk}/delete/"' not in client.get("/pools/").content.decode()
    dialog = client.get(f"/pools/{w.pool.pk}/delete/", HTTP_HX_REQUEST="true").content.decode()
    assert "Every cluster keeps its <code>default</code> pool" in dialog
    assert (
        "Every cluster keeps its default pool."
        in client.post(f"/pools/{w.pool.pk}/delete/", follow=True).content.decode()
    )
    assert ResourcePool.objects.filter(pk=w.pool.pk).exists()


def test_deleting_a_cluster_names_what_keeps_it_and_what_goes(k8s_world):
    w = k8s_world
    client = client_as(w, "platform")
    dialog = client.get(f"/clusters/{w.cluster.pk}/delete/", HTTP_HX_REQUEST="true").content.decode()
    assert "Cluster gpu-cluster cannot be deleted" in dialog
    for tenant in (w.department1, w.dev1, w.dev2):
        assert f'href="/tenants/{tenant.pk}/?tab=resources">{tenant.name_path}</a>' in dialog
    assert "the NFS share nas" in dialog
    refused = client.post(f"/clusters/{w.cluster.pk}/delete/", follow=True).content.decode()
    assert (
        "Cluster gpu-cluster is still used by tenants department1, department1/dev1, department1/dev2 and "
        "NFS shares nas; remove those first."
    ) in refused
    assert Cluster.objects.filter(pk=w.cluster.pk).exists()

    spare = services.cluster_create(acting_user=w.admin, name="spare", kind="kubernetes")
    services.pool_create(acting_user=w.admin, cluster=spare, name="t4")
    provisioning_services.connection_set(
        acting_user=w.admin,
        cluster=spare,
        spec=provisioning_services.ConnectionSpec(mode="token", server="https://10.0.0.9:6443", token="t"),
    )
    dialog = client.get(f"/clusters/{spare.pk}/delete/", HTTP_HX_REQUEST="true").content.decode()
    assert "Delete cluster spare?" in dialog and "its pools: default, t4" in dialog
    assert "its connection (API server URL, CA and a bearer token, https://10.0.0.9:6443)" in dialog
    done = client.post(f"/clusters/{spare.pk}/delete/", follow=True).content.decode()
    assert "Cluster spare deleted with its pools." in done
    assert not Cluster.objects.filter(name="spare").exists()


# ---------------------------------------------------------------------------------------------
# Nobody else


@pytest.mark.parametrize("who", NOT_PLATFORM)
def test_only_platform_admins_get_the_forms_and_see_them(k8s_world, who):
    w = k8s_world
    client = client_as(w, who)
    before = state_of_the_world()
    urls = [
        "/clusters/new/",
        f"/clusters/{w.cluster.pk}/",
        f"/clusters/{w.cluster.pk}/delete/",
        f"/clusters/{w.cluster.pk}/pools/new/",
        f"/pools/{w.pool.pk}/",
        f"/pools/{w.pool.pk}/delete/",
        f"/clusters/{w.cluster.pk}/connection/",
    ]
    for url in urls:
        assert client.get(url).status_code == 403, url
        assert client.post(url, {"name": "x", "kind": "yarn", "gpu_capacity": "1"}).status_code == 403, url
    assert state_of_the_world() == before
    refusal = client.get("/clusters/new/").content.decode()
    assert "Only platform admins manage clusters, pools and connections." in refusal
    assert "A tenant admin of a tenant above it can" not in refusal  # no tenant admin can
    page = client.get("/pools/").content.decode()
    assert "gpu-cluster" in page  # the pools are listed for everyone
    for link in ("/clusters/", "/pools/1", "New cluster", "Connect", "Test connection", "<form"):
        assert link not in page.split('<main class="content" id="main">')[1], link


# ---------------------------------------------------------------------------------------------
# What the Pools page costs


def pools_page_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/pools/")
    assert response.status_code == 200
    return len(queries)


def test_the_pools_page_costs_the_same_for_1_cluster_as_for_6(k8s_world, yarn_world):
    w = k8s_world
    platform, tenant_admin = client_as(w, "platform"), client_as(w, "dept_admin")
    counts = [(pools_page_queries(platform), pools_page_queries(tenant_admin))]
    for number in range(4):
        cluster = services.cluster_create(acting_user=w.admin, name=f"extra{number}", kind="kubernetes")
        services.pool_create(acting_user=w.admin, cluster=cluster, name="more")
        provisioning_services.connection_set(
            acting_user=w.admin, cluster=cluster, spec=provisioning_services.ConnectionSpec(mode="export")
        )
    counts.append((pools_page_queries(platform), pools_page_queries(tenant_admin)))
    # A platform admin: session and user (2), the pools with what level-1 tenants hold (1), the
    # clusters (1), their Kubernetes and Hadoop connections (2). A tenant admin: the same pools (pools
    # are no one's, so no grants are read), and no clusters' forms or connections.
    assert counts == [(6, 3), (6, 3)]


def test_no_page_sends_people_to_the_django_admin_or_to_the_api():
    templates = Path(__file__).resolve().parents[2] / "templates"
    found = [
        f"{path.relative_to(templates)}: {hint}"
        for path in sorted(templates.rglob("*.html"))
        for hint in re.findall(
            r"{% url ['\"]admin:[^%]*%}|/api/v1/[\w/-]*|curl |provisioning-hadoop-export", path.read_text()
        )
    ]
    assert found == []
