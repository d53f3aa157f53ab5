"""Kerberos / SPNEGO to a secured Hadoop: Hadoop's own MiniKdc, every daemon logged in from a
keytab, SPNEGO in front of the ResourceManager's REST API and WebHDFS. Canopy signs in with the
principal and keytab stored (encrypted) on the connection, through requests-gssapi and MIT
Kerberos, and pushes the MRS document's tenants exactly as with simple auth."""

from __future__ import annotations

import base64
import glob
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.db import connection as db_connection

from provisioning import services
from provisioning.backends.base import Scope
from provisioning.backends.yarn import YarnBackend
from provisioning.desired.yarn import YarnSettings, desired_objects
from provisioning.models import ClusterSyncStatus, HadoopConnection, ProvisioningIntent
from tenants import services as tenant_services
from tenants.models import AuditEvent
from tests.clusters.hadoop import HadoopTestCluster
from tests.provisioning.conftest import drain
from tests.provisioning.test_yarn_backend import GIB, JSON
from tests.tenants.builders import TokenClient

pytestmark = [pytest.mark.django_db]

KEYTAB_DIRS = str(Path(tempfile.gettempdir()) / "canopy-krb5-*")


def keytab(cluster: HadoopTestCluster) -> str:
    assert cluster.client_keytab is not None
    return base64.b64encode(cluster.client_keytab.read_bytes()).decode()


def keytab_for(principal: str) -> bytes:
    """A keytab in MIT's file format (0x0502) with one AES-256 key for `principal`."""
    name, realm = principal.split("@")
    counted = b"".join(struct.pack(">H", len(part)) + part.encode() for part in (realm, *name.split("/")))
    entry = struct.pack(">H", len(name.split("/"))) + counted
    entry += struct.pack(">iIB", 1, 1_700_000_000, 1) + struct.pack(">HH", 18, 32) + bytes(32)
    return b"\x05\x02" + struct.pack(">i", len(entry)) + entry


def kerberos_spec(cluster: HadoopTestCluster, **overrides: Any) -> services.HadoopConnectionSpec:
    values: dict[str, Any] = {
        "rm_urls": cluster.rm_url,
        "webhdfs_urls": cluster.webhdfs_url,
        "user": cluster.user,
        "auth": HadoopConnection.Auth.KERBEROS,
        "kerberos_principal": cluster.client_principal,
        "kerberos_keytab": keytab(cluster),
    }
    values.update(overrides)
    return services.HadoopConnectionSpec(**values)


def signed_in(cluster: HadoopTestCluster, method: str, url: str, **kwargs: Any) -> requests.Response:
    """The test's own SPNEGO session (the cluster's client keytab), to read back what Canopy did."""
    return requests.request(method, url, auth=cluster.spnego_auth(), timeout=60, **kwargs)


@pytest.fixture
def secured(hadoop_kerberos_cluster: HadoopTestCluster, yarn_world) -> Iterator[HadoopTestCluster]:
    cluster = hadoop_kerberos_cluster
    added = signed_in(
        cluster,
        "POST",
        f"{cluster.rm_url}/ws/v1/cluster/add-node-labels",
        json={"nodeLabelInfo": [{"name": "HighMEM", "exclusivity": True}]},
        headers=JSON,
    )
    assert added.status_code == 200, added.text
    yield cluster
    access = HadoopConnection(
        rm_urls=cluster.rm_url,
        webhdfs_urls=cluster.webhdfs_url,
        user=cluster.user,
        auth=HadoopConnection.Auth.KERBEROS,
        kerberos_principal=cluster.client_principal,
        kerberos_keytab=keytab(cluster),
    ).access(timeout_seconds=60)
    with YarnBackend(access) as cleanup:
        cleanup.sync(Scope(0, ""), desired_objects([], YarnSettings(lock_root=False), partitions=["HighMEM"]))
        assert not [k for k in cleanup.scheduler_conf() if ".root.t" in k]
    signed_in(
        cluster,
        "DELETE",
        f"{cluster.webhdfs_url}/webhdfs/v1/tenant",
        params={"op": "DELETE", "recursive": "true"},
    )
    signed_in(
        cluster,
        "POST",
        f"{cluster.rm_url}/ws/v1/cluster/remove-node-labels",
        params={"labels": "HighMEM"},
        headers=JSON,
    )


@pytest.mark.hadoop
def test_the_secured_cluster_refuses_anyone_without_a_ticket(
    hadoop_kerberos_cluster: HadoopTestCluster,
) -> None:
    cluster = hadoop_kerberos_cluster
    for url in (
        f"{cluster.rm_url}/ws/v1/cluster/scheduler-conf",
        f"{cluster.webhdfs_url}/webhdfs/v1/?op=LISTSTATUS",
    ):
        anonymous = requests.get(url, params={"user.name": cluster.user}, timeout=30)
        assert anonymous.status_code == 401
        assert anonymous.headers["WWW-Authenticate"].startswith("Negotiate")


@pytest.mark.hadoop
def test_mrs_scenario_over_kerberos(secured: HadoopTestCluster, yarn_world) -> None:
    w = yarn_world
    tenant_services.storage_create(
        acting_user=w.admin,
        tenant=w.t1,
        spec=tenant_services.StorageSpec(cluster=w.cluster, space_quota_bytes=GIB, file_quota=1000),
    )
    leftovers = set(glob.glob(KEYTAB_DIRS))
    services.hadoop_connection_set(acting_user=w.admin, cluster=w.cluster, spec=kerberos_spec(secured))

    check = services.connection_test(acting_user=w.admin, cluster=w.cluster)
    assert check.ok, check.message
    assert check.version.startswith("ResourceManager 3.4.2")
    assert "NameNode 3.4.2" in check.version

    drain()

    statuses = ClusterSyncStatus.objects.filter(cluster=w.cluster).select_related("sync")
    assert {s.sync.tenant_path: s.state for s in statuses} == {"t1": "synced", "t2": "synced", "t3": "synced"}
    conf = {
        p["name"]: p["value"]
        for p in signed_in(
            secured, "GET", f"{secured.rm_url}/ws/v1/cluster/scheduler-conf", headers=JSON
        ).json()["property"]
    }
    prefix = "yarn.scheduler.capacity.root"
    assert (conf[f"{prefix}.t1.capacity"], conf[f"{prefix}.t1.maximum-capacity"]) == ("40", "80")
    assert conf[f"{prefix}.t3.accessible-node-labels.HighMEM.capacity"] == "100"
    assert conf[f"{prefix}.t1.acl_administer_queue"] == "usera,userc"
    assert conf[f"{prefix}.acl_submit_applications"] == " "

    summary = signed_in(
        secured, "GET", f"{secured.webhdfs_url}/webhdfs/v1/tenant/t1", params={"op": "GETCONTENTSUMMARY"}
    ).json()["ContentSummary"]
    assert (summary["quota"], summary["spaceQuota"]) == (1000, GIB)
    # The keytab lived in a private temporary file only while a backend did.
    assert set(glob.glob(KEYTAB_DIRS)) == leftovers


@pytest.mark.hadoop
def test_a_url_that_does_not_match_the_spnego_principal_shows_kerberos_own_message(
    secured: HadoopTestCluster, yarn_world
) -> None:
    # The RM's SPNEGO principal is HTTP/localhost; asked for at 127.0.0.1, the KDC knows no
    # HTTP/127.0.0.1 and says so, which is what the admin needs to read.
    w = yarn_world
    by_address = secured.rm_url.replace("localhost", "127.0.0.1")
    services.hadoop_connection_set(
        acting_user=w.admin, cluster=w.cluster, spec=kerberos_spec(secured, rm_urls=by_address)
    )
    check = services.connection_test(acting_user=w.admin, cluster=w.cluster)
    assert not check.ok
    assert check.message.startswith(f"Kerberos sign-in to {by_address} failed:")
    assert "Server HTTP/127.0.0.1@EXAMPLE.COM not found in Kerberos database" in check.message, check.message

    # A push fails the same way: shown on the tenant, its intent kept for a retry.
    with pytest.raises(services.RetryLater):
        services.tenant_reconcile(tenant_id=w.t1.pk)
    status = ClusterSyncStatus.objects.get(cluster=w.cluster, sync__tenant_id=w.t1.pk)
    assert status.state == "failed"
    assert "Kerberos sign-in" in status.message
    assert ProvisioningIntent.objects.filter(tenant_id=w.t1.pk, state__in=services.OPEN).exists()


@pytest.mark.hadoop
def test_without_a_keytab_the_workers_own_ticket_cache_is_used(
    secured: HadoopTestCluster, yarn_world, tmp_path, monkeypatch
) -> None:
    w = yarn_world
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'ccache'}")
    services.hadoop_connection_set(
        acting_user=w.admin, cluster=w.cluster, spec=kerberos_spec(secured, kerberos_keytab="")
    )
    assert not HadoopConnection.objects.get(cluster=w.cluster).kerberos_keytab
    before = services.connection_test(acting_user=w.admin, cluster=w.cluster)
    assert not before.ok
    assert before.message.startswith("Kerberos sign-in to")
    assert "Can't find client principal canopy@EXAMPLE.COM in cache collection" in before.message

    # What k5start or an admin's kinit does on a worker.
    subprocess.run(["kinit", "-kt", str(secured.client_keytab), secured.client_principal], check=True)
    after = services.connection_test(acting_user=w.admin, cluster=w.cluster)
    assert after.ok, after.message
    assert after.version.startswith("ResourceManager 3.4.2")


@pytest.mark.hadoop
def test_simple_auth_against_a_secured_cluster_says_so(secured: HadoopTestCluster, yarn_world) -> None:
    w = yarn_world
    services.hadoop_connection_set(
        acting_user=w.admin,
        cluster=w.cluster,
        spec=services.HadoopConnectionSpec(
            rm_urls=secured.rm_url, webhdfs_urls=secured.webhdfs_url, user="canopy"
        ),
    )
    check = services.connection_test(acting_user=w.admin, cluster=w.cluster)
    assert not check.ok
    assert check.message == (
        "ResourceManager: HTTP 401: the cluster asks for Kerberos (SPNEGO); set the connection's auth to kerberos."
    )


def test_keytab_is_write_only_encrypted_and_never_audited(yarn_world) -> None:
    w = yarn_world
    admin_client = TokenClient().as_user(w.admin)
    fake_keytab = base64.b64encode(keytab_for("canopy@EXAMPLE.COM")).decode()
    body = {
        "cluster": w.cluster.pk,
        "rm_urls": "http://rm1:8088",
        "webhdfs_urls": "http://nn1:9870",
        "user": "canopy",
        "auth": "kerberos",
        "kerberos_principal": "canopy@EXAMPLE.COM",
        "kerberos_keytab": fake_keytab,
    }
    created = admin_client.post("/api/v1/hadoop-connections/", body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["kerberos_keytab_set"] is True
    assert "kerberos_keytab" not in created.json()
    with db_connection.cursor() as cursor:
        cursor.execute(
            "SELECT kerberos_keytab FROM provisioning_hadoopconnection WHERE cluster_id = %s", [w.cluster.pk]
        )
        stored = cursor.fetchone()[0]
    assert stored and fake_keytab not in stored
    assert HadoopConnection.objects.get(cluster=w.cluster).kerberos_keytab == fake_keytab
    audit = AuditEvent.objects.filter(action="CONNECTION_CREATED").latest("pk")
    assert audit.after["kerberos_keytab_set"] is True
    assert fake_keytab not in str(audit.after) and "kerberos_keytab" not in audit.after

    # Leaving the keytab out of an update keeps it; bad input is a field error and changes nothing.
    kept = admin_client.patch(f"/api/v1/hadoop-connections/{w.cluster.pk}/", {"user": "yarn"}, format="json")
    assert kept.status_code == 200, kept.content
    assert kept.json()["kerberos_keytab_set"] is True
    for field, value, message in (
        ("kerberos_keytab", "not base64!", "Not base64"),
        ("kerberos_keytab", base64.b64encode(b"PK\x03\x04zip").decode(), "Not a keytab"),
        ("kerberos_principal", "canopy at example", "A Kerberos principal"),
        (
            "kerberos_principal",
            "yarn@EXAMPLE.COM",
            "The keytab has no key for yarn@EXAMPLE.COM; it holds canopy@EXAMPLE.COM.",
        ),
    ):
        refused = admin_client.patch(
            f"/api/v1/hadoop-connections/{w.cluster.pk}/", {field: value}, format="json"
        )
        assert refused.status_code == 400, refused.content
        assert message in str(refused.json()[field])
    assert HadoopConnection.objects.get(cluster=w.cluster).kerberos_keytab == fake_keytab
