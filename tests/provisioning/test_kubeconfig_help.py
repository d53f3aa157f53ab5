"""Issue 18, point 5: a member sees what their kubeconfig looks like and how to use it. In the
embedded default (the export backend: no cluster connected) an example, marked as one, offered as
a file with its placeholders said; on a connected cluster the real file's shape, and the command
the page gives works with the file the download hands out (the real test cluster). The page follows
the download's rules: a tenant one cannot see is a 404 that names nothing, a viewer gets a 403."""

from __future__ import annotations

import html
import re

import pytest
import yaml
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from kubernetes import client

from provisioning import kubeconfigs
from tenants import services as tenant_services
from tenants.demo import load_demo
from tenants.models import Cluster, Membership, Tenant
from tests.clusters.kube import client_from_kubeconfig
from tests.provisioning.conftest import drain, wait_for_namespace_ready
from tests.provisioning.test_kubernetes_arena import allowed, wait_for
from tests.provisioning.test_oidc import mark_provisioned, oidc_connection
from tests.tenants.builders import spec, user
from tests.tenants.test_api_permissions import person

pytestmark = pytest.mark.django_db


def signed_in(someone) -> Client:
    browser = Client()
    browser.force_login(someone)
    return browser


def shown_document(page: str) -> dict:
    """The kubeconfig the help page shows, as YAML."""
    found = re.search(r'<pre class="kubeconfig-document"><code>(.*?)</code></pre>', page, re.S)
    assert found, "the page shows no kubeconfig"
    return yaml.safe_load(html.unescape(found.group(1)))


def test_the_help_page_follows_the_downloads_rules(k8s_world):
    w = k8s_world
    url = f"/tenants/{w.dev1.pk}/kubeconfig/{w.cluster.pk}/help/"
    assert Client().get(url).status_code == 302  # to the sign-in page
    expected = {"outsider": 404, "dev2_admin": 404, "dev1_viewer": 403, "bob": 200, "dept_admin": 200}
    for who, status in expected.items():
        response = signed_in(person(w, who)).get(url)
        assert response.status_code == status, who
        if status == 404:
            assert b"dev1" not in response.content
    # A cluster the tenant has no namespace on is nothing to explain, whoever asks.
    other = tenant_services.cluster_create(acting_user=w.admin, name="other", kind=Cluster.Kind.KUBERNETES)
    hadoop = tenant_services.cluster_create(acting_user=w.admin, name="bigdata", kind=Cluster.Kind.YARN)
    for cluster in (other, hadoop):
        assert (
            signed_in(w.admin).get(f"/tenants/{w.dev1.pk}/kubeconfig/{cluster.pk}/help/").status_code == 404
        )


def test_in_the_demo_a_member_sees_an_example_marked_for_the_export_backend():
    load_demo()
    bob = user("bob")
    dev1 = Tenant.objects.get(name_path="department1/dev1")
    cluster = Cluster.objects.get(name="gpu-cluster")
    browser = signed_in(bob)

    # My access leads there.
    help_url = f"/tenants/{dev1.pk}/kubeconfig/{cluster.pk}/help/"
    assert f'href="{help_url}"' in browser.get("/me/").content.decode()

    with CaptureQueriesContext(connection) as queries:
        response = browser.get(help_url)
    assert response.status_code == 200
    # Session and user, the tenant (with the grants it is seen through), its clusters with their
    # connections, its namespace, its state on the cluster.
    assert len(queries) == 7, [q["sql"] for q in queries.captured_queries]
    page = response.content.decode()
    assert "Example for the export backend — not a working kubeconfig." in page
    assert "gpu-cluster is not connected to Canopy" in page
    # No download of a real file: there is no API server to mint a token from.
    assert f'/tenants/{dev1.pk}/kubeconfig/{cluster.pk}/"' not in page
    document = shown_document(page)
    assert document["contexts"] == [
        {
            "name": "gpu-cluster-department1-dev1",
            "context": {"cluster": "gpu-cluster", "user": "bob@gpu-cluster", "namespace": "department1-dev1"},
        }
    ]
    assert document["clusters"][0]["cluster"]["server"] == "https://<API server of gpu-cluster>"
    assert document["users"][0]["user"]["token"].startswith("<a token of ServiceAccount bob")
    how_to = "kubectl --kubeconfig ~/.kube/gpu-cluster-department1-dev1-bob.kubeconfig get pods -n department1-dev1"
    assert how_to in page
    assert "kubectl create token bob -n department1-dev1 --duration=8h" in page

    example = browser.get(f"{help_url}?download=example")
    assert example.status_code == 200 and example["Content-Type"] == "application/yaml; charset=utf-8"
    assert example["Content-Disposition"] == (
        'attachment; filename="gpu-cluster-department1-dev1-bob.kubeconfig.example"'
    )
    text = example.content.decode()
    assert text.startswith("# EXAMPLE, not a working kubeconfig: gpu-cluster is not connected to Canopy")
    assert yaml.safe_load(text) == document


def test_the_token_lifetime_is_said_as_kubectl_takes_it(settings, k8s_world):
    w = k8s_world
    for seconds, flag, words in (
        (8 * 3600, "8h", "8 hours"),
        (5400, "90m", "90 minutes"),
        (3600, "1h", "1 hour"),
    ):
        settings.CANOPY_KUBECONFIG_TOKEN_SECONDS = seconds
        guide = kubeconfigs.kubeconfig_guide(
            user=w.bob, tenant=w.dev1, cluster=w.cluster, namespace="department1-dev1", status=None
        )
        assert (guide.token_lifetime_flag, guide.token_lifetime) == (flag, words)


@pytest.mark.kubernetes
def test_on_a_connected_cluster_the_page_shows_the_real_file_and_its_command_works(
    platform_admin, gpu_cluster, kube_cluster, kube_admin
):
    cluster, pool = gpu_cluster
    department = tenant_services.tenant_create(
        acting_user=platform_admin, parent=None, name="department1", allocations=[spec(pool, gpu=1)]
    )
    dev1 = tenant_services.tenant_create(
        acting_user=platform_admin, parent=department, name="dev1", allocations=[spec(pool, gpu=1)]
    )
    bob = user("bob")
    tenant_services.membership_grant(
        acting_user=platform_admin, tenant=dev1, user=bob, role=Membership.Role.MEMBER
    )
    drain()
    browser = signed_in(bob)

    page = browser.get(f"/tenants/{dev1.pk}/kubeconfig/{cluster.pk}/help/").content.decode()
    assert "Example for the export backend" not in page
    download = f"/tenants/{dev1.pk}/kubeconfig/{cluster.pk}/"
    assert f'href="{download}" download' in page
    shown = shown_document(page)
    real = yaml.safe_load(browser.get(download).content)

    # The page shows the file the download hands out, but for its secrets.
    assert shown["clusters"][0]["cluster"]["server"] == real["clusters"][0]["cluster"]["server"]
    assert shown["clusters"][0]["cluster"]["server"] == kube_cluster.server  # the URL people use
    assert shown["contexts"] == real["contexts"] and shown["current-context"] == real["current-context"]
    assert [u["name"] for u in shown["users"]] == [u["name"] for u in real["users"]]
    assert shown["users"][0]["user"] == {"token": "<minted when you download: valid 8 hours>"}
    namespace = real["contexts"][0]["context"]["namespace"]
    assert namespace == "department1-dev1" and f"get pods -n {namespace}</code>" in page

    # `kubectl --kubeconfig <file> get pods -n <namespace>`, as the page says, through the official client.
    wait_for_namespace_ready(client.CoreV1Api(kube_admin), namespace)
    with client_from_kubeconfig(real) as bob_api:
        core = client.CoreV1Api(bob_api)
        wait_for(lambda: allowed(lambda: core.list_namespaced_pod(namespace)), "Bob's binding")
        assert core.list_namespaced_pod(namespace).items == []


def test_on_an_oidc_cluster_the_page_shows_the_kubelogin_file_without_its_client_secret(k8s_world):
    w = k8s_world
    oidc_connection(w, oidc_client_secret="s3cret", user_server="https://k8s.example.com:6443")
    mark_provisioned(w, w.dev1)
    browser = signed_in(w.bob)
    page = browser.get(f"/tenants/{w.dev1.pk}/kubeconfig/{w.cluster.pk}/help/").content.decode()
    real = yaml.safe_load(browser.get(f"/tenants/{w.dev1.pk}/kubeconfig/{w.cluster.pk}/").content)
    shown = shown_document(page)
    assert "s3cret" not in page and "kubelogin" in page
    secret = "--oidc-client-secret=s3cret"
    assert secret in real["users"][0]["user"]["exec"]["args"]
    real["users"][0]["user"]["exec"]["args"] = [
        "--oidc-client-secret=<in the file you download>" if arg == secret else arg
        for arg in real["users"][0]["user"]["exec"]["args"]
    ]
    # But for the secret, the page shows the file the download hands out.
    assert shown == real
