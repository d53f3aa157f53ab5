"""pytest plugin: a real Kubernetes control plane for the whole test session.

Register with ``pytest_plugins = ["tests.clusters.kube_fixtures"]`` or ``-p tests.clusters.kube_fixtures``.
Set ``CANOPY_TEST_KUBECONFIG=/path/to/kubeconfig`` to run against an existing cluster instead;
its kubeconfig must act as a cluster admin.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.clusters.kube import KubeCluster, cluster_from_env


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kubernetes: needs the Kubernetes test cluster (kube_cluster fixture)")


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[KubeCluster]:
    """The running cluster: ``kubeconfig_path``, ``kubeconfig``, ``server``, ``ca_data``,
    ``admin_client()``, ``client_for(kubeconfig)``, ``token_kubeconfig(token)``.

    Started once per session (the first run also builds the binaries) and stopped at the end.
    """
    cluster = cluster_from_env()
    try:
        yield cluster
    finally:
        cluster.stop()
