"""No secret is stored in clear: after storing every kind Canopy keeps (cluster bearer tokens,
client keys, OIDC client secrets, Kerberos keytabs, passwords, API tokens, failed sign-ins), every
row of every table, read raw with a cursor, is searched for each of them."""

from __future__ import annotations

import base64
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from provisioning.models import HadoopConnection, KubernetesConnection
from tenants import services
from tenants.models import Cluster
from tests.provisioning.test_yarn_kerberos import keytab_for
from tests.tenants.builders import TokenClient

pytestmark = pytest.mark.django_db

BEARER = "eyJhbGciOiJSUzI1NiJ9.canopy-bearer-token-in-clear"
OIDC_SECRET = "oidc-client-secret-in-clear"
KEYTAB_KEY = b"canopy-keytab-key-bytes-in-clear"  # 32 bytes: an AES-256 key
PASSWORD = "A-password-in-clear-42"
WRONG_PASSWORD = "A-wrong-password-in-clear"


def certificate_and_key() -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "canopy")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


def every_row_as_text() -> str:
    rows = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            rows.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(rows)


def test_no_secret_is_stored_in_clear(platform_admin):
    admin = TokenClient().as_user(platform_admin)
    token_cluster = services.cluster_create(
        acting_user=platform_admin, name="k8s-a", kind=Cluster.Kind.KUBERNETES
    )
    cert_cluster = services.cluster_create(
        acting_user=platform_admin, name="k8s-b", kind=Cluster.Kind.KUBERNETES
    )
    hadoop = services.cluster_create(acting_user=platform_admin, name="bigdata", kind=Cluster.Kind.YARN)
    certificate, client_key = certificate_and_key()
    keytab = base64.b64encode(keytab_for("canopy@EXAMPLE.COM")[:-32] + KEYTAB_KEY).decode()
    for url, body in (
        (
            "/api/v1/kubernetes-connections/",
            {
                "cluster": token_cluster.pk,
                "mode": "token",
                "server": "https://10.0.0.91:6443",
                "token": BEARER,
                "oidc_issuer_url": "https://sso.example.com",
                "oidc_client_id": "kubernetes",
                "oidc_client_secret": OIDC_SECRET,
            },
        ),
        (
            "/api/v1/kubernetes-connections/",
            {
                "cluster": cert_cluster.pk,
                "mode": "certificate",
                "server": "https://10.0.0.92:6443",
                "client_certificate": certificate,
                "client_key": client_key,
            },
        ),
        (
            "/api/v1/hadoop-connections/",
            {
                "cluster": hadoop.pk,
                "rm_urls": "http://rm1:8088",
                "webhdfs_urls": "http://nn1:9870",
                "user": "canopy",
                "auth": "kerberos",
                "kerberos_principal": "canopy@EXAMPLE.COM",
                "kerberos_keytab": keytab,
            },
        ),
    ):
        response = admin.post(url, body, format="json")
        assert response.status_code == 201, response.content
    assert (
        admin.post("/api/v1/users/", {"username": "bob", "password": PASSWORD}, format="json").status_code
        == 201
    )
    api_token = (
        APIClient().post("/api/v1/auth/token/", {"username": "bob", "password": PASSWORD}).json()["token"]
    )
    browser = Client()
    assert (
        browser.post("/accounts/login/", {"username": "bob", "password": WRONG_PASSWORD}).status_code == 200
    )
    assert browser.post("/accounts/login/", {"username": "bob", "password": PASSWORD}).status_code == 302

    # Stored, and readable by Canopy itself (decrypted on the way out) ...
    assert KubernetesConnection.objects.get(cluster=token_cluster).token == BEARER
    assert KubernetesConnection.objects.get(cluster=token_cluster).oidc_client_secret == OIDC_SECRET
    assert KubernetesConnection.objects.get(cluster=cert_cluster).client_key == client_key.strip()
    assert HadoopConnection.objects.get(cluster=hadoop).kerberos_keytab == keytab
    # ... but nowhere in the database in clear.
    stored = every_row_as_text()
    # (the dump does hold the rows around them)
    assert all(
        text in stored for text in ("https://10.0.0.91:6443", "canopy@EXAMPLE.COM", "BEGIN CERTIFICATE")
    )
    key_body = "".join(client_key.strip().splitlines()[1:-1])
    secrets = {
        "bearer token": BEARER,
        "OIDC client secret": OIDC_SECRET,
        "client key": key_body[:40],
        "keytab (base64)": keytab,
        "keytab's key": KEYTAB_KEY.decode(),
        "password": PASSWORD,
        "wrong password": WRONG_PASSWORD,
        "API token": api_token,
        "API token's secret part": api_token[15:],
    }
    assert [what for what, secret in secrets.items() if secret in stored] == []
