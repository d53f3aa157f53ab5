"""Usage is collected from the same real test clusters provisioning pushes to, connected the same
way: the collectors' tests use provisioning's fixtures (imported here, pytest finds them by name;
`export_dir` keeps every test's exports in its own folder, as there)."""

from tests.provisioning.conftest import (  # noqa: F401
    canopy_token,
    export_dir,
    gpu_cluster,
    hadoop,
    kube_admin,
    kueue_admin,
    kueue_canopy_token,
    kueue_gpu_cluster,
    kueue_proxy,
    kueue_session_proxy,
    proxy,
    session_proxy,
)
