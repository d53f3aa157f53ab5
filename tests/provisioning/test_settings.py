"""Settings for provisioning: production needs an encryption key; the embedded default pushes the
demo to files (the export backend) and says so, with no cluster and no broker."""

from __future__ import annotations

import json

import yaml

from tests.tenants.test_settings import _manage


def test_production_refuses_to_start_without_an_encryption_key():
    result = _manage(
        "check",
        env={
            "DJANGO_SETTINGS_MODULE": "portal.settings.production",
            "DJANGO_SECRET_KEY": "x" * 60,
            "DATABASE_URL": "sqlite:////tmp/x.sqlite3",
            "REDIS_URL": "redis://localhost:1/0",
            "CANOPY_FERNET_KEYS": "",
        },
    )
    assert result.returncode != 0
    assert "Set CANOPY_FERNET_KEYS" in result.stderr


def test_the_embedded_default_exports_the_demo_to_files_and_says_so(tmp_path):
    env = {
        "DJANGO_SETTINGS_MODULE": "portal.settings.local",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "CANOPY_EXPORT_DIR": str(tmp_path / "export"),
        "CANOPY_FERNET_KEYS": "",
    }
    assert _manage("migrate", "--no-input", "-v", "0", env=env).returncode == 0
    loaded = _manage("load_demo", env=env)
    assert loaded.returncode == 0, loaded.stderr
    result = _manage(
        "shell",
        "-c",
        "import json; from provisioning.models import ClusterSyncStatus as S; "
        "print(json.dumps(sorted((s.sync.namespace, s.state, s.message) for s in S.objects.all())))",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    statuses = json.loads(result.stdout.strip().splitlines()[-1])
    namespaces = {namespace for namespace, _, _ in statuses}
    assert {"department1-dev1", "department1-dev2"} <= namespaces
    assert all(
        state == "synced" and "export backend: no cluster connected" in message
        for _, state, message in statuses
    )
    quota = tmp_path / "export" / "gpu-cluster" / "department1-dev2" / "04-resourcequota-canopy-quota.yaml"
    assert "requests.nvidia.com/gpu: '2'" in quota.read_text()
    # The Arena document's shared volume is a directory of the demo's NFS share (issue 15).
    pv = tmp_path / "export" / "gpu-cluster" / "department1-dev2"
    pv = pv / "07-persistentvolume-canopy-department1-dev2-department1-public-dev2.yaml"
    nfs = yaml.safe_load(pv.read_text())
    assert nfs["spec"]["nfs"] == {"server": "nas.demo.invalid", "path": "/share/department1"}
    assert nfs["metadata"]["annotations"]["canopy.io/nfs-share"] == "department1-nas"
