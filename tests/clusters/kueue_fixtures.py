"""pytest plugin: the real Kueue test cluster (tests/clusters/kueue.py) for the whole session.

Registered in tests/conftest.py. Only tests that ask for ``kueue_cluster`` start it (once per
session, about 20 s once built); mark them ``kueue`` so ``-m kueue`` / ``-m "not kueue"`` select
them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.clusters.kueue import KueueTestCluster


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kueue: needs the Kueue test cluster (kueue_cluster fixture)")


@pytest.fixture(scope="session")
def kueue_cluster() -> Iterator[KueueTestCluster]:
    """The running Kueue cluster: everything ``kube_cluster`` offers (``admin_client()``,
    ``kubeconfig``, ``server``, ...), plus ``nodes``, ``versions``, ``stop_kueue()`` and
    ``start_kueue()``. Objects a test creates stay for the session: use names of its own and
    delete them when done.
    """
    cluster = KueueTestCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()
