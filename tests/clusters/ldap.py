"""A real OpenLDAP server (Debian's ``slapd``) for the sign-in tests, run on a free loopback port.

Its configuration and database live in a temporary directory; the directory holds two people,
alice and bob, and three groups under ``dc=canopy,dc=test``. The server also answers StartTLS with a
certificate from a throw-away CA (``ca_file``).

Command line::

    python -m tests.clusters.ldap up     # start, print the URI, wait for Ctrl-C
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ldap
import ldap.dn
import ldap.modlist
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.clusters.processes import stop_process

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")

BASE_DN = "dc=canopy,dc=test"
ADMIN_DN = f"cn=admin,{BASE_DN}"
ADMIN_PASSWORD = "directory-admin-secret"  # noqa: S105 (a throw-away test directory)
PEOPLE_DN = f"ou=people,{BASE_DN}"
GROUPS_DN = f"ou=groups,{BASE_DN}"
# The service account Canopy binds with to search for people and groups.
READER_DN = f"cn=canopy-reader,{BASE_DN}"
READER_PASSWORD = "reader-secret"  # noqa: S105
PASSWORDS = {"alice": "alice-secret-1", "bob": "bob-secret-1"}
GROUPS = {"ml-team": ["alice", "bob"], "data-admins": ["alice"], "platform-ops": ["bob"]}


class LdapServerError(RuntimeError):
    """slapd could not be started."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def person_dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE_DN}"


def group_dn(name: str) -> str:
    return f"cn={name},{GROUPS_DN}"


def directory_ldif() -> str:
    entries = [
        f"dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: canopy\no: Canopy test",
        f"dn: {PEOPLE_DN}\nobjectClass: organizationalUnit\nou: people",
        f"dn: {GROUPS_DN}\nobjectClass: organizationalUnit\nou: groups",
        f"dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: canopy-reader\nuserPassword: {READER_PASSWORD}",
    ]
    for uid, password in PASSWORDS.items():
        entries.append(
            f"dn: {person_dn(uid)}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid.title()} Example\n"
            f"givenName: {uid.title()}\nsn: Example\nmail: {uid}@example.test\nuserPassword: {password}"
        )
    for name, members in GROUPS.items():
        lines = "\n".join(f"member: {person_dn(uid)}" for uid in members)
        entries.append(f"dn: {group_dn(name)}\nobjectClass: groupOfNames\ncn: {name}\n{lines}")
    return "\n\n".join(entries) + "\n"


def slapd_conf(data_dir: Path, cert: Path, key: Path) -> str:
    schemas = "\n".join(
        f"include {SCHEMA_DIR / name}.schema" for name in ("core", "cosine", "inetorgperson", "nis")
    )
    return f"""{schemas}
modulepath {MODULE_DIR}
moduleload back_mdb
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}

database mdb
maxsize 104857600
suffix "{BASE_DN}"
rootdn "{ADMIN_DN}"
rootpw {ADMIN_PASSWORD}
directory {data_dir}
access to attrs=userPassword by self write by anonymous auth by * none
access to * by dn.exact="{READER_DN}" read by self read by * none
"""


def _certificate(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 / localhost: (ca, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "canopy test LDAP CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    paths[2].chmod(0o600)
    return paths


class LdapServer:
    """``uri``, ``ca_file``, ``env(**overrides)`` (Canopy's CANOPY_LDAP_* for this directory),
    ``remove_from_group(name, uid)`` / ``add_to_group(name, uid)``, ``stop()``."""

    def __init__(self) -> None:
        for tool in (SLAPD, SLAPADD):
            if not Path(tool).exists():
                raise LdapServerError(f"{tool} is missing: apt-get install slapd")
        self.root = Path(tempfile.mkdtemp(prefix="canopy-slapd-"))
        self.port = free_port()
        self.uri = f"ldap://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.ca_file, cert, key = _certificate(self.root)
        data_dir = self.root / "data"
        data_dir.mkdir()
        self.conf = self.root / "slapd.conf"
        self.conf.write_text(slapd_conf(data_dir, cert, key))
        ldif = self.root / "directory.ldif"
        ldif.write_text(directory_ldif())
        subprocess.run(
            [SLAPADD, "-q", "-f", str(self.conf), "-l", str(ldif)], check=True, capture_output=True
        )

    def start(self) -> LdapServer:
        log = (self.root / "slapd.log").open("wb")
        # -d 0 keeps slapd in the foreground, so this process owns it and stop() ends exactly it.
        self.process = subprocess.Popen(
            [SLAPD, "-d", "0", "-f", str(self.conf), "-h", f"{self.uri}/"], stdout=log, stderr=log
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LdapServerError(f"slapd exited: {(self.root / 'slapd.log').read_text()[-2000:]}")
            with contextlib.suppress(ldap.LDAPError):
                self.admin().unbind_s()
                return self
            time.sleep(0.05)
        self.stop()
        raise LdapServerError("slapd did not answer within 15 s")

    def admin(self) -> ldap.ldapobject.LDAPObject:
        connection = ldap.initialize(self.uri)
        connection.set_option(ldap.OPT_NETWORK_TIMEOUT, 2.0)
        connection.simple_bind_s(ADMIN_DN, ADMIN_PASSWORD)
        return connection

    def _change_member(self, operation: int, group: str, uid: str) -> None:
        connection = self.admin()
        try:
            connection.modify_s(group_dn(group), [(operation, "member", [person_dn(uid).encode()])])
        finally:
            connection.unbind_s()

    def remove_from_group(self, group: str, uid: str) -> None:
        self._change_member(ldap.MOD_DELETE, group, uid)

    def add_to_group(self, group: str, uid: str) -> None:
        self._change_member(ldap.MOD_ADD, group, uid)

    def add_group(self, name: str, uids: list[str]) -> None:
        """A groupOfNames (any cn: it is escaped into the DN) with these people."""
        connection = self.admin()
        try:
            entry = {
                "objectClass": [b"groupOfNames"],
                "cn": [name.encode()],
                "member": [person_dn(uid).encode() for uid in uids],
            }
            dn = f"cn={ldap.dn.escape_dn_chars(name)},{GROUPS_DN}"
            connection.add_s(dn, ldap.modlist.addModlist(entry))
        finally:
            connection.unbind_s()

    def delete_group(self, name: str) -> None:
        connection = self.admin()
        try:
            connection.delete_s(f"cn={ldap.dn.escape_dn_chars(name)},{GROUPS_DN}")
        finally:
            connection.unbind_s()

    def env(self, **overrides: str) -> dict[str, str]:
        """The CANOPY_LDAP_* environment that points Canopy at this directory."""
        return {
            "CANOPY_LDAP_SERVER_URI": self.uri,
            "CANOPY_LDAP_BIND_DN": READER_DN,
            "CANOPY_LDAP_BIND_PASSWORD": READER_PASSWORD,
            "CANOPY_LDAP_USER_SEARCH_BASE": PEOPLE_DN,
            "CANOPY_LDAP_USER_SEARCH_FILTER": "(uid=%(user)s)",
            "CANOPY_LDAP_GROUP_SEARCH_BASE": GROUPS_DN,
            "CANOPY_LDAP_GROUP_TYPE": "groupOfNames",
            **overrides,
        }

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None
        shutil.rmtree(self.root, ignore_errors=True)


def main(argv: list[str]) -> int:
    if argv[1:2] != ["up"]:
        print(__doc__)
        return 2
    server = LdapServer().start()
    print(server.uri, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
