"""Issue 18, point 4: platform admins connect clusters on the console (a Kubernetes cluster by an
uploaded kubeconfig, or its API server URL with a token and CA, or export only; a Hadoop cluster by
its ResourceManager and WebHDFS URLs, as a user or with Kerberos), through the same services as the
API, secrets stored encrypted and never shown back. "Test connection" answers the same way for every
state of a cluster: the real test API server and Hadoop mini cluster, a closed port, a CA that did
not sign the server's certificate, a refused token, and the fault proxy's errors and dropped
connections."""

from __future__ import annotations

import base64
import datetime
import re

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection as db_connection
from django.test import Client

from provisioning import services
from provisioning.models import HadoopConnection, KubernetesConnection
from tenants import services as tenant_services
from tenants.models import AuditEvent, Cluster
from tests.clusters.fault_proxy import FaultProxy
from tests.clusters.hadoop import HadoopTestCluster
from tests.provisioning.test_yarn_kerberos import keytab_for
from tests.tenants.test_api_permissions import person

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(platform_admin) -> Client:
    client = Client()
    client.force_login(platform_admin)
    return client


@pytest.fixture
def gpu2(platform_admin) -> Cluster:
    return tenant_services.cluster_create(
        acting_user=platform_admin, name="gpu2", kind=Cluster.Kind.KUBERNETES
    )


@pytest.fixture
def bigdata(platform_admin) -> Cluster:
    return tenant_services.cluster_create(acting_user=platform_admin, name="bigdata", kind=Cluster.Kind.YARN)


def checked(client: Client, cluster: Cluster) -> str:
    """What Test connection draws in place (htmx)."""
    answer = client.post(f"/clusters/{cluster.pk}/test/", HTTP_HX_REQUEST="true")
    assert answer.status_code == 200
    return answer.content.decode()


def state_of(check_html: str) -> str:
    found = re.search(r'class="connection-check check-([\w_]+)"', check_html)
    assert found, check_html
    return found.group(1)


def errors_of(fragment: str, field: str) -> list[str]:
    found = re.search(rf'<ul class="errorlist" id="err-{field}"[^>]*>(.*?)</ul>', fragment, re.S)
    assert found, f"no error list for {field}"
    return re.findall(r"<li>(.*?)</li>", found.group(1), re.S)


def token_form(server: str, token: str, ca: str) -> dict[str, str]:
    return {"mode": "token", "server": server, "token": token, "ca_data": ca, "quota_engine": "resourcequota"}


def another_ca() -> str:
    """A CA certificate (PEM) that signed nothing the test clusters serve."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not-the-cluster-ca")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the probe is closed


# ---------------------------------------------------------------------------------------------
# Kubernetes


@pytest.mark.kubernetes
def test_connecting_by_url_token_and_ca_to_the_real_api_server(admin, gpu2, kube_cluster, canopy_token):
    ca = kube_cluster.ca_data.decode()
    assert state_of(checked(admin, gpu2)) == "not_connected"
    form = admin.get(f"/clusters/{gpu2.pk}/connection/").content.decode()
    assert "Connect gpu2" in form and 'enctype="multipart/form-data"' in form

    saved = admin.post(
        f"/clusters/{gpu2.pk}/connection/",
        token_form(kube_cluster.server, canopy_token, ca),
        HTTP_HX_REQUEST="true",
    )
    assert saved["HX-Redirect"] == f"/pools/#cluster-{gpu2.pk}"
    connection = KubernetesConnection.objects.get(cluster=gpu2)
    assert (connection.mode, connection.server, connection.token) == (
        "token",
        kube_cluster.server,
        canopy_token,
    )
    with db_connection.cursor() as cursor:  # encrypted at rest, as the API stores it
        cursor.execute("SELECT token FROM provisioning_kubernetesconnection WHERE cluster_id = %s", [gpu2.pk])
        assert canopy_token not in cursor.fetchone()[0]
    event = AuditEvent.objects.filter(action="CONNECTION_CREATED").latest("pk")
    assert event.after["token_set"] is True and canopy_token not in str(event.after)

    answer = checked(admin, gpu2)
    assert state_of(answer) == "connected"
    assert "✓ Connected" in answer and "Connected: Kubernetes v1." in answer
    if kube_cluster.expected_version:
        assert kube_cluster.expected_version in answer

    # The token is never shown again: the form says it is set, and keeps it when left empty.
    again = admin.get(f"/clusters/{gpu2.pk}/connection/").content.decode()
    assert canopy_token not in again and "Set: type a new one to replace it" in again
    kept = admin.post(f"/clusters/{gpu2.pk}/connection/", token_form(kube_cluster.server, "", ca))
    assert kept.status_code == 302
    assert KubernetesConnection.objects.get(cluster=gpu2).token == canopy_token
    page = admin.get("/pools/").content.decode()
    assert canopy_token not in page and kube_cluster.server in page


@pytest.mark.kubernetes
def test_connecting_by_an_uploaded_kubeconfig(admin, gpu2, kube_cluster):
    kubeconfig = yaml.safe_dump(kube_cluster.kubeconfig).encode()
    upload = SimpleUploadedFile("admin.kubeconfig", kubeconfig, content_type="application/yaml")
    saved = admin.post(
        f"/clusters/{gpu2.pk}/connection/",
        {"mode": "kubeconfig", "quota_engine": "resourcequota", "kubeconfig": upload},
    )
    assert saved.status_code == 302, saved.content.decode()[-2000:]
    assert KubernetesConnection.objects.get(cluster=gpu2).mode == "kubeconfig"
    assert state_of(checked(admin, gpu2)) == "connected"
    form = admin.get(f"/clusters/{gpu2.pk}/connection/").content.decode()
    assert "client-key-data" not in form and "Set: choose a file to replace it" in form


def test_a_kubeconfig_that_runs_a_command_is_refused_on_its_field_and_nothing_is_saved(admin, gpu2):
    runs = yaml.safe_dump(
        {
            "current-context": "x",
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "clusters": [{"name": "c", "cluster": {"server": "https://10.0.0.9:6443"}}],
            "users": [{"name": "u", "user": {"exec": {"command": "rm"}}}],
        }
    ).encode()
    body = {"mode": "kubeconfig", "quota_engine": "resourcequota", "validate": "1"}
    check = admin.post(
        f"/clusters/{gpu2.pk}/connection/",
        {**body, "kubeconfig": SimpleUploadedFile("k.yaml", runs)},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert errors_of(check, "kubeconfig") == [
        "The user&#x27;s exec runs a command on the Canopy server; Canopy accepts a token or an embedded "
        "client certificate."
    ]
    missing = admin.post(f"/clusters/{gpu2.pk}/connection/", body, HTTP_HX_REQUEST="true").content.decode()
    assert errors_of(missing, "kubeconfig") == ["Choose the kubeconfig file to upload."]
    binary = admin.post(
        f"/clusters/{gpu2.pk}/connection/",
        {**body, "kubeconfig": SimpleUploadedFile("k.yaml", b"\xff\xfe\x00")},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert errors_of(binary, "kubeconfig") == ["A kubeconfig is a YAML text file (UTF-8)."]
    assert not KubernetesConnection.objects.filter(cluster=gpu2).exists()


def test_a_refused_connection_keeps_what_was_typed(admin, gpu2):
    body = {**token_form("not a url", "", "garbage"), "user_server": "ftp://x"}
    page = admin.post(f"/clusters/{gpu2.pk}/connection/", body)
    html = page.content.decode()
    assert page.status_code == 200 and not KubernetesConnection.objects.filter(cluster=gpu2).exists()
    assert 'value="not a url"' in html and "garbage</textarea>" in html and 'value="ftp://x"' in html
    assert "The API server URL, e.g. https://10.0.0.91:6443." in html
    assert "Paste the certificate in PEM form" in html
    assert "A bearer token for Canopy&#x27;s ServiceAccount" in html
    assert "<details open>" in html  # the refused optional setting is shown


@pytest.mark.kubernetes
def test_every_failure_is_one_kind_of_answer(admin, gpu2, kube_cluster, canopy_token, settings):
    ca = kube_cluster.ca_data.decode()
    url = f"/clusters/{gpu2.pk}/connection/"

    def connect(**changes: str) -> str:
        saved = admin.post(url, {**token_form(kube_cluster.server, canopy_token, ca), **changes})
        assert saved.status_code == 302, saved.content.decode()[-1500:]
        return checked(admin, gpu2)

    closed = f"https://127.0.0.1:{closed_port()}"
    answer = connect(server=closed)
    assert state_of(answer) == "unreachable" and "✗ Unreachable" in answer
    assert f"Cannot reach the API server at {closed}" in answer and "Connection refused" in answer
    assert "Nothing answered: check the API server URL and port" in answer

    answer = connect(ca_data=another_ca())
    assert state_of(answer) == "tls" and "Certificate not trusted" in answer
    assert "CERTIFICATE_VERIFY_FAILED" in answer and "paste the cluster&#x27;s CA certificate" in answer

    answer = connect(token="not-a-token")
    assert state_of(answer) == "credentials_refused" and "Credentials refused" in answer
    assert "HTTP 401 from the API server: Unauthorized" in answer

    assert state_of(connect(mode="export")) == "export"
    admin.post(f"/clusters/{gpu2.pk}/connection/delete/")
    assert state_of(checked(admin, gpu2)) == "not_connected"
    settings.CANOPY_PROVISIONING_DEFAULT_BACKEND = "export"
    answer = checked(admin, gpu2)
    assert state_of(answer) == "export" and "Nothing to reach: manifests written to" in answer


@pytest.mark.kubernetes
def test_the_fault_proxys_errors_and_dropped_connections(admin, gpu2, proxy: FaultProxy, canopy_token):
    saved = admin.post(f"/clusters/{gpu2.pk}/connection/", token_form(proxy.url, canopy_token, ""))
    assert saved.status_code == 302
    assert state_of(checked(admin, gpu2)) == "connected"
    proxy.fail(500, times=1, path="/version")
    answer = checked(admin, gpu2)
    assert state_of(answer) == "error" and "HTTP 500 from the API server: injected fault" in answer
    assert "The API server was reached and answered with the error above." in answer
    proxy.fail(403, times=1, path="/version")
    assert state_of(checked(admin, gpu2)) == "credentials_refused"
    proxy.drop(times=1, path="/version")
    answer = checked(admin, gpu2)
    assert state_of(answer) == "unreachable" and "Cannot reach the API server" in answer


def test_without_javascript_the_answer_is_drawn_on_the_pools_page(admin, gpu2):
    page = admin.post(f"/clusters/{gpu2.pk}/test/")
    html = page.content.decode()
    assert page.status_code == 200 and "<h1>Resource pools</h1>" in html
    assert f'<div id="check-{gpu2.pk}" class="connection-check check-not_connected"' in html
    assert "Cluster gpu2 has no connection." in html


def test_removing_a_connection_is_asked_first_and_audited(admin, gpu2):
    admin.post(f"/clusters/{gpu2.pk}/connection/", token_form("https://10.0.0.9:6443", "secret-token", ""))
    dialog = admin.get(f"/clusters/{gpu2.pk}/connection/delete/", HTTP_HX_REQUEST="true").content.decode()
    assert "Delete the connection of gpu2?" in dialog and "Nothing on the cluster is touched" in dialog
    assert "secret-token" not in dialog and "nothing is pushed to it" in dialog
    done = admin.post(f"/clusters/{gpu2.pk}/connection/delete/", follow=True).content.decode()
    assert "gpu2: connection removed; nothing is pushed to it." in done
    assert not KubernetesConnection.objects.filter(cluster=gpu2).exists()
    assert AuditEvent.objects.filter(action="CONNECTION_DELETED", target_repr="gpu2").exists()
    assert admin.get(f"/clusters/{gpu2.pk}/connection/delete/").status_code == 404  # nothing left to remove


# ---------------------------------------------------------------------------------------------
# Hadoop


@pytest.mark.hadoop
def test_connecting_hadoop_by_its_urls_and_testing_it(admin, bigdata, hadoop_cluster: HadoopTestCluster):
    form = admin.get(f"/clusters/{bigdata.pk}/connection/").content.decode()
    assert "ResourceManager URLs" in form and "Keytab" in form and "Upload a kubeconfig" not in form
    body = {
        "mode": "api",
        "rm_urls": f"http://127.0.0.1:{closed_port()}\n{hadoop_cluster.rm_url}",  # the first RM is down
        "webhdfs_urls": hadoop_cluster.webhdfs_url,
        "auth": "simple",
        "user": hadoop_cluster.user,
    }
    saved = admin.post(f"/clusters/{bigdata.pk}/connection/", body)
    assert saved.status_code == 302, saved.content.decode()[-1500:]
    answer = checked(admin, bigdata)
    assert state_of(answer) == "connected" and "ResourceManager 3.4.2" in answer

    closed = f"http://127.0.0.1:{closed_port()}"
    admin.post(f"/clusters/{bigdata.pk}/connection/", {**body, "rm_urls": closed})
    answer = checked(admin, bigdata)
    assert state_of(answer) == "unreachable" and f"Could not reach {closed}" in answer
    assert "check the ResourceManager and WebHDFS URLs" in answer

    # Something answers, but it is not a ResourceManager (the NameNode's port).
    admin.post(f"/clusters/{bigdata.pk}/connection/", {**body, "rm_urls": hadoop_cluster.webhdfs_url})
    answer = checked(admin, bigdata)
    assert state_of(answer) == "error" and "check the ResourceManager URLs" in answer


def test_hadoop_export_mode_and_its_files(admin, bigdata):
    saved = admin.post(
        f"/clusters/{bigdata.pk}/connection/", {"mode": "export", "auth": "simple", "user": "canopy"}
    )
    assert saved.status_code == 302
    answer = checked(admin, bigdata)
    assert state_of(answer) == "export" and "capacity-scheduler.xml and hdfs-setup.sh written to" in answer
    assert "deploy by hand" in answer


def test_a_keytab_is_uploaded_checked_against_the_principal_and_never_shown(admin, bigdata):
    url = f"/clusters/{bigdata.pk}/connection/"
    body = {
        "mode": "api",
        "rm_urls": "http://rm1:8088",
        "webhdfs_urls": "http://nn1:9870",
        "auth": "kerberos",
        "user": "canopy",
        "kerberos_principal": "canopy@EXAMPLE.COM",
    }
    wrong = admin.post(
        url,
        {**body, "kerberos_keytab": SimpleUploadedFile("other.keytab", keytab_for("other@EXAMPLE.COM"))},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert errors_of(wrong, "kerberos_principal") == [
        "The keytab has no key for canopy@EXAMPLE.COM; it holds other@EXAMPLE.COM."
    ]
    garbage = admin.post(
        url, {**body, "kerberos_keytab": SimpleUploadedFile("k", b"not a keytab")}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert (
        errors_of(garbage, "kerberos_keytab")
        and not HadoopConnection.objects.filter(cluster=bigdata).exists()
    )

    keytab = keytab_for("canopy@EXAMPLE.COM")
    saved = admin.post(url, {**body, "kerberos_keytab": SimpleUploadedFile("canopy.keytab", keytab)})
    assert saved.status_code == 302
    stored = HadoopConnection.objects.get(cluster=bigdata)
    assert base64.b64decode(stored.kerberos_keytab) == keytab and stored.auth == "kerberos"
    form = admin.get(url).content.decode()
    assert stored.kerberos_keytab not in form and "Set: choose a file to replace it" in form
    assert "Forget the stored keytab" in form
    # Left empty, the keytab stays; "forget" removes it (the worker's ticket cache is used).
    admin.post(url, body)
    assert HadoopConnection.objects.get(cluster=bigdata).kerberos_keytab == stored.kerberos_keytab
    admin.post(url, {**body, "forget_keytab": "on"})
    assert HadoopConnection.objects.get(cluster=bigdata).kerberos_keytab == ""


@pytest.mark.hadoop
def test_kerberos_through_the_form_against_the_secured_mini_cluster(admin, bigdata, hadoop_kerberos_cluster):
    cluster = hadoop_kerberos_cluster
    assert cluster.client_keytab is not None
    body = {
        "mode": "api",
        "rm_urls": cluster.rm_url,
        "webhdfs_urls": cluster.webhdfs_url,
        "auth": "kerberos",
        "user": cluster.user,
        "kerberos_principal": cluster.client_principal,
        "kerberos_keytab": SimpleUploadedFile("client.keytab", cluster.client_keytab.read_bytes()),
    }
    saved = admin.post(f"/clusters/{bigdata.pk}/connection/", body)
    assert saved.status_code == 302, saved.content.decode()[-1500:]
    answer = checked(admin, bigdata)
    assert state_of(answer) == "connected" and "ResourceManager 3.4.2" in answer
    # Asked at an address the KDC has no principal for: Kerberos' own words, as refused credentials.
    by_address = cluster.rm_url.replace("localhost", "127.0.0.1")
    admin.post(f"/clusters/{bigdata.pk}/connection/", {**body, "rm_urls": by_address, "kerberos_keytab": ""})
    answer = checked(admin, bigdata)
    assert state_of(answer) == "credentials_refused" and "Kerberos sign-in to" in answer
    assert "not found in Kerberos database" in answer


# ---------------------------------------------------------------------------------------------
# Nobody else


@pytest.mark.parametrize("who", ["outsider", "bob", "dev1_viewer", "dev1_admin", "dept_admin"])
def test_only_platform_admins_connect_test_or_remove(k8s_world, who):
    w = k8s_world
    services.connection_set(
        acting_user=w.admin,
        cluster=w.cluster,
        spec=services.ConnectionSpec(mode="token", server="https://x:1", token="t"),
    )
    client = Client()
    client.force_login(person(w, who))
    for url in (
        f"/clusters/{w.cluster.pk}/connection/",
        f"/clusters/{w.cluster.pk}/connection/delete/",
        f"/clusters/{w.cluster.pk}/test/",
    ):
        assert client.post(url, {"mode": "export"}).status_code == 403, url
    assert client.get(f"/clusters/{w.cluster.pk}/connection/").status_code == 403
    connection = KubernetesConnection.objects.get(cluster=w.cluster)
    assert (connection.mode, connection.token) == ("token", "t")
