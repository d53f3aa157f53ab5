"""A real Hadoop cluster for Canopy's tests: Hadoop's own MiniDFSCluster (NameNode + DataNode)
and MiniYARNCluster (ResourceManager + NodeManager) in one JVM on loopback.

``hadoop/fetch.sh`` resolves the pinned Hadoop release with Maven (into ``~/.m2``) and compiles
the small launcher in ``hadoop/src``; the configuration is written here, per cluster, into a
temporary directory that also holds the logs and the HDFS/YARN data.

What is switched on, because the portal needs it:

* Capacity Scheduler with a mutable configuration store (``memory``), so
  ``PUT /ws/v1/cluster/scheduler-conf`` works; ``root.queues=default`` to start with.
* ``yarn.acl.enable`` with ``yarn.admin.acl`` = the acting user, so admin-only REST calls are
  really checked (pass ``user.name=<user>``).
* Centralized node labels with a file-system store in the temp dir.
* WebHDFS and HDFS ACLs; the acting user is the HDFS superuser (it is the NameNode's user).

``HadoopTestCluster(kerberos=True)`` starts the same cluster secured: Hadoop's MiniKdc (realm
``EXAMPLE.COM``) in the same JVM, ``hadoop.security.authentication=kerberos``, every daemon logged
in as ``canopy/localhost`` from a keytab, and SPNEGO (``HTTP/localhost``) in front of the RM's REST
API and WebHDFS. Clients then reach it as ``http://localhost:<port>`` (the host in the SPNEGO
principal) with the user principal ``canopy@EXAMPLE.COM`` from ``client_keytab``, and a
``krb5_conf`` written here that points MIT Kerberos at the KDC.

Set ``CANOPY_TEST_YARN_RM_URL`` and ``CANOPY_TEST_WEBHDFS_URL`` (and optionally
``CANOPY_TEST_HADOOP_USER``) to use an existing cluster instead.

Command line::

    python -m tests.clusters.hadoop up     # start, print the URLs, wait for Ctrl-C
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape

import requests

HADOOP_DIR = Path(__file__).resolve().parent / "hadoop"
FETCH_SCRIPT = HADOOP_DIR / "fetch.sh"
MAIN_CLASS = "org.canopy.testcluster.CanopyMiniCluster"

ENV_RM_URL = "CANOPY_TEST_YARN_RM_URL"
ENV_WEBHDFS_URL = "CANOPY_TEST_WEBHDFS_URL"
ENV_USER = "CANOPY_TEST_HADOOP_USER"
ENV_KEEP_WORKDIR = "CANOPY_TEST_HADOOP_KEEP"

DEFAULT_USER = "canopy"
REALM = "EXAMPLE.COM"  # MiniKdc's default (org.name EXAMPLE, org.domain COM)

# The list Hadoop 3.4's own build passes to its tests on JDK 17 (extraJavaTestArgs in
# hadoop-project/pom.xml); without it Guice/Jersey in the YARN daemons fail reflectively.
JDK17_OPENS = (
    "java.io",
    "java.lang",
    "java.lang.reflect",
    "java.math",
    "java.net",
    "java.text",
    "java.util",
    "java.util.concurrent",
    "java.util.zip",
    "sun.security.util",
    "sun.security.x509",
)

LOG4J_PROPERTIES = """\
log4j.rootLogger=INFO,stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=%d{ISO8601} %-5p [%t] %c{2}: %m%n
log4j.logger.org.apache.hadoop.metrics2=WARN
log4j.logger.org.apache.hadoop.util.NativeCodeLoader=ERROR
log4j.logger.org.apache.hadoop.hdfs.server.datanode.DataNode.clienttrace=WARN
log4j.logger.org.apache.hadoop.hdfs.StateChange=WARN
log4j.logger.BlockStateChange=WARN
"""


class HadoopClusterError(RuntimeError):
    """The Hadoop test cluster could not be fetched or started."""


def hadoop_version() -> str:
    """The Hadoop release pinned in ``hadoop/pom.xml``."""
    match = re.search(r"<hadoop\.version>([^<]+)</hadoop\.version>", (HADOOP_DIR / "pom.xml").read_text())
    if not match:
        raise HadoopClusterError(f"no <hadoop.version> in {HADOOP_DIR / 'pom.xml'}")
    return match.group(1).strip()


def fetch() -> Path:
    """Run ``fetch.sh`` (a no-op when the cache is warm) and return the cache directory."""
    result = subprocess.run(
        ["bash", str(FETCH_SCRIPT)], capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        raise HadoopClusterError(f"{FETCH_SCRIPT} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def _site_xml(properties: dict[str, str]) -> str:
    body = "".join(
        f"  <property><name>{escape(k)}</name><value>{escape(v)}</value></property>\n"
        for k, v in properties.items()
    )
    return f'<?xml version="1.0"?>\n<configuration>\n{body}</configuration>\n'


def _java_executable() -> str:
    java_home = os.environ.get("JAVA_HOME", "")
    candidate = Path(java_home) / "bin" / "java"
    return str(candidate) if java_home and candidate.exists() else "java"


def _tail(path: Path, lines: int = 80) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log at {path}: {exc})"


class HadoopTestCluster:
    """A YARN ResourceManager and an HDFS NameNode for tests, started on loopback or external.

    After :meth:`start` (or entering the ``with`` block):

    * ``rm_url`` – ResourceManager web address, e.g. ``http://127.0.0.1:41234``; REST under
      ``/ws/v1/cluster``.
    * ``webhdfs_url`` – NameNode HTTP address, e.g. ``http://127.0.0.1:41235``; WebHDFS under
      ``/webhdfs/v1``.
    * ``user`` – the user to act as (``user.name=``): YARN admin and HDFS superuser.
    * ``hdfs_url`` (``hdfs://127.0.0.1:PORT``), ``node_ids`` (NodeManager ids such as
      ``localhost:40001``) and ``workdir`` – only for a cluster started here.

    :meth:`stop` always kills the JVM and is safe to call at any point, also after a failed
    start. The work directory (configuration, logs, data) is removed on a clean stop and kept
    (``keep_workdir``) when the start failed or ``CANOPY_TEST_HADOOP_KEEP=1``; a failed start
    raises :class:`HadoopClusterError` carrying the tail of the cluster log.

    The JVM also exits by itself when this process dies, since it watches its stdin pipe.
    """

    def __init__(
        self,
        *,
        user: str = DEFAULT_USER,
        node_managers: int = 1,
        heap: str = "1g",
        nm_memory_mb: int = 2048,
        nm_vcores: int = 2,
        start_timeout: float = 300.0,
        kerberos: bool = False,
    ) -> None:
        self.user = user
        self.kerberos = kerberos
        self.krb5_conf: Path | None = None
        self.client_principal = ""
        self.client_keytab: Path | None = None
        self.node_managers = node_managers
        self.heap = heap
        self.nm_memory_mb = nm_memory_mb
        self.nm_vcores = nm_vcores
        self.start_timeout = start_timeout
        self.external = False
        self.rm_url = ""
        self.webhdfs_url = ""
        self.hdfs_url = ""
        self.node_ids: list[str] = []
        self.details: dict[str, Any] = {}
        self.workdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.keep_workdir = os.environ.get(ENV_KEEP_WORKDIR, "") not in ("", "0")

    # ------------------------------------------------------------------ construction

    @classmethod
    def external_from_env(cls) -> HadoopTestCluster | None:
        """The cluster named by ``CANOPY_TEST_YARN_RM_URL`` + ``CANOPY_TEST_WEBHDFS_URL``, if set."""
        rm_url = os.environ.get(ENV_RM_URL, "").strip()
        webhdfs_url = os.environ.get(ENV_WEBHDFS_URL, "").strip()
        if not rm_url and not webhdfs_url:
            return None
        if not (rm_url and webhdfs_url):
            raise HadoopClusterError(f"set both {ENV_RM_URL} and {ENV_WEBHDFS_URL}, or neither")
        cluster = cls(user=os.environ.get(ENV_USER, "").strip() or DEFAULT_USER)
        cluster.external = True
        cluster.rm_url = rm_url.rstrip("/")
        cluster.webhdfs_url = webhdfs_url.rstrip("/")
        return cluster

    @classmethod
    def from_env(cls) -> HadoopTestCluster:
        """The external cluster if the environment names one, else a new local one (not started)."""
        return cls.external_from_env() or cls()

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> HadoopTestCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> HadoopTestCluster:
        """Start the mini cluster (or check the external one) and wait until both APIs answer."""
        if self.external:
            self._wait_for_apis(time.monotonic() + 60)
            return self
        if self._proc is not None:
            raise HadoopClusterError("cluster already started")
        try:
            cache = fetch()
            self._launch(cache)
            deadline = time.monotonic() + self.start_timeout
            self._wait_for_details(deadline)
            self._wait_for_apis(deadline)
        except Exception as exc:
            self.keep_workdir = True
            self.stop()
            raise HadoopClusterError(self._failure_report(exc)) from exc
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Kill the JVM (after a short grace period) and clean up. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            # Closing stdin asks the launcher to shut the daemons down cleanly (well under a second).
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                if proc.stdin:
                    proc.stdin.close()
                proc.wait(timeout=10)
            # The whole process group, so nothing a NodeManager launched survives either.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.workdir is not None and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def is_running(self) -> bool:
        """True while the JVM started here is alive (always True for an external cluster)."""
        return self.external or (self._proc is not None and self._proc.poll() is None)

    # ------------------------------------------------------------------ internals

    @property
    def log_path(self) -> Path | None:
        """The JVM's combined stdout/stderr (all Hadoop daemon logs)."""
        return self.workdir / "logs" / "minicluster.log" if self.workdir else None

    def _launch(self, cache: Path) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="canopy-hadoop-"))
        conf_dir = self.workdir / "conf"
        conf_dir.mkdir()
        (self.workdir / "logs").mkdir()
        self._write_configuration(conf_dir)

        classpath = [str(conf_dir), str(cache / "build" / "classes")]
        classpath += (cache / "classpath.txt").read_text().strip().split(os.pathsep)
        command = [
            _java_executable(),
            f"-Xmx{self.heap}",
            # Four daemons on two shared cores: cheap GC and JIT matter more than peak speed.
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Djava.net.preferIPv4Stack=true",
            "-XX:+IgnoreUnrecognizedVMOptions",
            *(f"--add-opens=java.base/{package}=ALL-UNNAMED" for package in JDK17_OPENS),
            *(["-Dcanopy.kerberos=true"] if self.kerberos else []),
            "-cp",
            os.pathsep.join(classpath),
            MAIN_CLASS,
            str(self.workdir),
            str(self.workdir / "details.json"),
            str(self.node_managers),
        ]
        env = dict(os.environ)
        # Simple auth: the JVM's login user becomes NameNode superuser and RM owner.
        env["HADOOP_USER_NAME"] = self.user
        assert self.log_path is not None
        self._log = self.log_path.open("wb")
        self._proc = subprocess.Popen(
            command,
            cwd=self.workdir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Own process group: Ctrl-C in a terminal reaches only Python, which then stops it.
            start_new_session=True,
        )

    def _write_configuration(self, conf_dir: Path) -> None:
        assert self.workdir is not None
        loopback_any_port = "127.0.0.1:0"
        core = {
            "hadoop.tmp.dir": str(self.workdir / "tmp"),
            # Resolve the acting user's groups without asking the OS (the user need not exist).
            "hadoop.user.group.static.mapping.overrides": f"dr.who=;{self.user}=supergroup",
            # Lets the portal act for tenant users with doas= as on a real cluster.
            f"hadoop.proxyuser.{self.user}.hosts": "*",
            f"hadoop.proxyuser.{self.user}.groups": "*",
        }
        # WebHDFS needs no switch in 3.x (dfs.webhdfs.enabled is gone); ACLs default to on in
        # 3.4 but are spelled out because the portal depends on them.
        hdfs = {
            "dfs.namenode.acls.enabled": "true",
            "dfs.permissions.enabled": "true",
            "dfs.permissions.superusergroup": "supergroup",
            "dfs.replication": "1",
        }
        yarn = {
            # Keep the addresses below instead of MiniYARNCluster's localhost:0 defaults.
            "yarn.minicluster.fixed.ports": "true",
            "yarn.resourcemanager.hostname": "127.0.0.1",
            "yarn.resourcemanager.address": loopback_any_port,
            "yarn.resourcemanager.scheduler.address": loopback_any_port,
            "yarn.resourcemanager.resource-tracker.address": loopback_any_port,
            "yarn.resourcemanager.admin.address": loopback_any_port,
            "yarn.resourcemanager.webapp.address": loopback_any_port,
            "yarn.resourcemanager.bind-host": "127.0.0.1",
            "yarn.nodemanager.bind-host": "127.0.0.1",
            "yarn.resourcemanager.scheduler.class": (
                "org.apache.hadoop.yarn.server.resourcemanager.scheduler.capacity.CapacityScheduler"
            ),
            "yarn.scheduler.configuration.store.class": "memory",
            "yarn.acl.enable": "true",
            "yarn.admin.acl": self.user,
            "yarn.node-labels.enabled": "true",
            "yarn.node-labels.fs-store.root-dir": (self.workdir / "node-labels").as_uri(),
            # MiniYARNCluster overwrites the NodeManager's memory-mb with this key (default 4096).
            "yarn.minicluster.yarn.nodemanager.resource.memory-mb": str(self.nm_memory_mb),
            "yarn.nodemanager.resource.memory-mb": str(self.nm_memory_mb),
            "yarn.nodemanager.resource.cpu-vcores": str(self.nm_vcores),
            # A nearly full /tmp must not turn the only NodeManager UNHEALTHY.
            "yarn.nodemanager.disk-health-checker.enable": "false",
        }
        capacity = {
            "yarn.scheduler.capacity.root.queues": "default",
            "yarn.scheduler.capacity.root.default.capacity": "100",
            "yarn.scheduler.capacity.root.default.maximum-capacity": "100",
            "yarn.scheduler.capacity.root.default.state": "RUNNING",
        }
        if self.kerberos:
            self._secure(core, hdfs, yarn)
        for name, properties in (
            ("core-site.xml", core),
            ("hdfs-site.xml", hdfs),
            ("yarn-site.xml", yarn),
            ("capacity-scheduler.xml", capacity),
        ):
            (conf_dir / name).write_text(_site_xml(properties))
        (conf_dir / "log4j.properties").write_text(LOG4J_PROPERTIES)

    def _secure(self, core: dict[str, str], hdfs: dict[str, str], yarn: dict[str, str]) -> None:
        """Kerberos for every daemon and SPNEGO for the REST APIs; the launcher writes the keytabs
        named here once its KDC runs."""
        assert self.workdir is not None
        keytab = str(self.workdir / "kerberos" / "service.keytab")
        service = f"{self.user}/localhost@{REALM}"
        spnego = f"HTTP/localhost@{REALM}"
        core.update(
            {
                "hadoop.security.authentication": "kerberos",
                # The RM swaps this for its own RMAuthenticationFilterInitializer (SPNEGO plus
                # delegation tokens); without it its REST API would take everyone as dr.who.
                "hadoop.http.filter.initializers": "org.apache.hadoop.security.AuthenticationFilterInitializer",
                "hadoop.http.authentication.type": "kerberos",
                "hadoop.http.authentication.simple.anonymous.allowed": "false",
                "hadoop.http.authentication.kerberos.principal": spnego,
                "hadoop.http.authentication.kerberos.keytab": keytab,
            }
        )
        hdfs.update(
            {
                "dfs.namenode.kerberos.principal": service,
                "dfs.namenode.keytab.file": keytab,
                "dfs.datanode.kerberos.principal": service,
                "dfs.datanode.keytab.file": keytab,
                "dfs.web.authentication.kerberos.principal": spnego,
                "dfs.web.authentication.kerberos.keytab": keytab,
                # A secure DataNode needs block tokens and either privileged ports or SASL on its
                # data transfer; the testing switch lets it keep unprivileged HTTP ports.
                "dfs.block.access.token.enable": "true",
                "dfs.data.transfer.protection": "authentication",
                "ignore.secure.ports.for.testing": "true",
            }
        )
        yarn.update(
            {
                "yarn.resourcemanager.principal": service,
                "yarn.resourcemanager.keytab": keytab,
                "yarn.nodemanager.principal": service,
                "yarn.nodemanager.keytab": keytab,
                "yarn.resourcemanager.webapp.spnego-principal": spnego,
                "yarn.resourcemanager.webapp.spnego-keytab-file": keytab,
            }
        )

    def _write_client_krb5_conf(self) -> None:
        """MIT Kerberos settings for clients of this cluster (point ``KRB5_CONFIG`` at the file).
        MiniKdc speaks TCP only, and names are used as written: ``localhost`` is the host in the
        SPNEGO principal, so no DNS canonicalisation may turn it into something else."""
        assert self.workdir is not None
        realm = self.details["kdc_realm"]
        if realm != REALM:
            raise HadoopClusterError(f"KDC realm is {realm!r}, the site files say {REALM!r}")
        self.krb5_conf = self.workdir / "kerberos" / "client-krb5.conf"
        self.krb5_conf.write_text(
            "[libdefaults]\n"
            f"  default_realm = {realm}\n"
            "  udp_preference_limit = 1\n"
            "  dns_lookup_kdc = false\n"
            "  dns_lookup_realm = false\n"
            "  dns_canonicalize_hostname = false\n"
            "  rdns = false\n"
            "[realms]\n"
            f"  {realm} = {{\n    kdc = {self.details['kdc_address']}\n  }}\n"
            "[domain_realm]\n"
            f"  localhost = {realm}\n"
        )
        self.client_principal = self.details["client_principal"]
        self.client_keytab = Path(self.details["client_keytab"])

    def spnego_auth(self) -> Any:
        """A requests auth object that signs in as the client principal from its keytab (needs
        ``KRB5_CONFIG`` pointing at ``krb5_conf``)."""
        import gssapi
        from requests_gssapi import HTTPSPNEGOAuth

        name = gssapi.Name(self.client_principal, gssapi.NameType.kerberos_principal)
        store = {"client_keytab": str(self.client_keytab), "ccache": f"MEMORY:canopy-test-{os.getpid()}"}
        credentials = gssapi.Credentials(name=name, usage="initiate", store=store)
        return HTTPSPNEGOAuth(creds=credentials)

    def _wait_for_details(self, deadline: float) -> None:
        assert self.workdir is not None and self._proc is not None
        details_path = self.workdir / "details.json"
        while not details_path.exists():
            if self._proc.poll() is not None:
                raise HadoopClusterError(f"mini cluster JVM exited with code {self._proc.returncode}")
            if time.monotonic() > deadline:
                raise HadoopClusterError(f"mini cluster not up after {self.start_timeout:.0f} s")
            time.sleep(0.5)
        self.details = json.loads(details_path.read_text())
        self.rm_url = f"http://{self.details['rm_webapp']}"
        self.webhdfs_url = f"http://{self.details['nn_http']}"
        if self.kerberos:
            # SPNEGO asks for HTTP/<host in the URL>: the principal is HTTP/localhost.
            self.rm_url = self.rm_url.replace("127.0.0.1", "localhost")
            self.webhdfs_url = self.webhdfs_url.replace("127.0.0.1", "localhost")
            self._write_client_krb5_conf()
        self.hdfs_url = f"hdfs://{self.details['nn_rpc']}"
        self.node_ids = list(self.details["node_ids"])
        if self.details["user"] != self.user:
            raise HadoopClusterError(f"JVM runs as {self.details['user']!r}, expected {self.user!r}")

    def _wait_for_apis(self, deadline: float) -> None:
        """Until the RM reports STARTED and WebHDFS lists ``/``."""
        last = "no answer yet"
        if self.kerberos:
            os.environ["KRB5_CONFIG"] = str(self.krb5_conf)
        auth = self.spnego_auth() if self.kerberos else None
        # Simple auth names the user; SPNEGO already did, and WebHDFS refuses both at once.
        who = {} if self.kerberos else {"user.name": self.user}
        while True:
            try:
                info = requests.get(f"{self.rm_url}/ws/v1/cluster/info", timeout=10, auth=auth)
                info.raise_for_status()
                state = info.json()["clusterInfo"]["state"]
                if state != "STARTED":
                    last = f"RM state {state}"
                else:
                    listing = requests.get(
                        f"{self.webhdfs_url}/webhdfs/v1/",
                        params={"op": "GETFILESTATUS", **who},
                        timeout=10,
                        auth=auth,
                    )
                    if listing.status_code == 200:
                        return
                    last = f"WebHDFS answered {listing.status_code}: {listing.text[:200]}"
            except (requests.RequestException, ValueError, KeyError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if self._proc is not None and self._proc.poll() is not None:
                raise HadoopClusterError(f"mini cluster JVM exited with code {self._proc.returncode}")
            if time.monotonic() > deadline:
                raise HadoopClusterError(f"Hadoop REST APIs not ready in time ({last})")
            time.sleep(1)

    def _failure_report(self, exc: Exception) -> str:
        if self.log_path is None:
            return str(exc)
        return (
            f"{exc}\n--- last lines of {self.log_path} (work dir kept: {self.workdir}) ---\n"
            f"{_tail(self.log_path)}\n--- end of {self.log_path} ---"
        )


# ---------------------------------------------------------------------- command line


def _up(args: argparse.Namespace) -> int:
    cluster = HadoopTestCluster(
        user=args.user, node_managers=args.node_managers, heap=args.heap, kerberos=args.kerberos
    )
    started = time.monotonic()
    print(
        f"Starting Hadoop {hadoop_version()} mini cluster (a first run fetches jars with Maven)...",
        flush=True,
    )
    try:
        cluster.start()
    except HadoopClusterError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(
        f"Ready in {time.monotonic() - started:.0f} s.\n"
        f"  ResourceManager  {cluster.rm_url}/ws/v1/cluster/info\n"
        f"  WebHDFS          {cluster.webhdfs_url}/webhdfs/v1/?op=LISTSTATUS&user.name={cluster.user}\n"
        f"  HDFS RPC         {cluster.hdfs_url}\n"
        f"  NodeManagers     {', '.join(cluster.node_ids)}\n"
        + (
            f"  act as           {cluster.client_principal} (keytab {cluster.client_keytab})\n"
            f"  Kerberos         export KRB5_CONFIG={cluster.krb5_conf}; "
            f"kinit -kt {cluster.client_keytab} {cluster.client_principal}; "
            f"curl --negotiate -u : {cluster.rm_url}/ws/v1/cluster/info\n"
            if cluster.kerberos
            else f"  act as           user.name={cluster.user}\n"
        )
        + f"  work dir / logs  {cluster.workdir}\n"
        "To run the tests against it from another shell:\n"
        f"  export {ENV_RM_URL}={cluster.rm_url} {ENV_WEBHDFS_URL}={cluster.webhdfs_url} "
        f"{ENV_USER}={cluster.user}\n"
        "Ctrl-C stops it.",
        flush=True,
    )

    stop_requested = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    # Installed explicitly: a shell that starts us in the background leaves SIGINT ignored.
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        while not stop_requested:
            if not cluster.is_running():
                cluster.keep_workdir = True
                print(f"The mini cluster JVM died; see {cluster.log_path}", file=sys.stderr)
                return 1
            time.sleep(1)
    finally:
        print("Stopping...", flush=True)
        cluster.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.clusters.hadoop", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the mini cluster, print its URLs, wait for Ctrl-C")
    up.add_argument("--user", default=DEFAULT_USER, help="acting user: YARN admin and HDFS superuser")
    up.add_argument("--node-managers", type=int, default=1)
    up.add_argument("--heap", default="1g", help="JVM -Xmx")
    up.add_argument("--kerberos", action="store_true", help="secure it: MiniKdc, Kerberos, SPNEGO")
    sub.add_parser("fetch", help="only run fetch.sh and print the cache directory")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        print(fetch())
        return 0
    return _up(args)


if __name__ == "__main__":
    sys.exit(main())
