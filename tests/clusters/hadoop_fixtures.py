"""pytest plugin: a real Hadoop cluster (YARN ResourceManager + HDFS NameNode) for the whole session.

Register with ``pytest_plugins = ["tests.clusters.hadoop_fixtures"]`` or ``-p tests.clusters.hadoop_fixtures``.
Set ``CANOPY_TEST_YARN_RM_URL`` and ``CANOPY_TEST_WEBHDFS_URL`` (and ``CANOPY_TEST_HADOOP_USER``,
default ``canopy``) to run against an existing cluster instead; that user must be a YARN admin
and the HDFS superuser.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.clusters.hadoop import HadoopTestCluster


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hadoop: needs the Hadoop test cluster (hadoop_cluster fixture)")


@pytest.fixture(scope="session")
def hadoop_cluster() -> Iterator[HadoopTestCluster]:
    """The running cluster: ``rm_url``, ``webhdfs_url`` (base URLs, no path) and ``user``.

    Started once per session (the first run on a machine also downloads Hadoop with Maven) and
    stopped at the end; a start failure errors the tests with the tail of the cluster log.
    """
    cluster = HadoopTestCluster.from_env()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def hadoop_kerberos_cluster() -> Iterator[HadoopTestCluster]:
    """The same mini cluster secured: its own MiniKdc, Kerberos for every daemon, SPNEGO on the RM's
    REST API and WebHDFS (``http://localhost:<port>``). Clients sign in as ``client_principal``
    from ``client_keytab``; ``KRB5_CONFIG`` points at the cluster's ``krb5_conf`` for the session,
    as ``/etc/krb5.conf`` would on a worker."""
    cluster = HadoopTestCluster(kerberos=True)
    saved = os.environ.get("KRB5_CONFIG")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        if saved is None:
            os.environ.pop("KRB5_CONFIG", None)
        else:
            os.environ["KRB5_CONFIG"] = saved
