"""The apps' import graph goes one way: `lint-imports` (pyproject.toml, [tool.importlinter]) keeps the
real tree and refuses a copy of it with a back-import from tenants to provisioning added."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("portal", "provisioning", "tenants", "identity", "usage", "quotas")


def lint_imports(where: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(where / "pyproject.toml")],
        cwd=where,
        # The packages found first are the ones in `where` (ahead of the editable install's).
        env={**os.environ, "PYTHONPATH": str(where)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_tree_keeps_its_contracts():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 6 kept, 0 broken." in result.stdout


def copy_with(tmp_path: Path, module: str, back_import: str) -> Path:
    """The packages copied into `tmp_path`, `back_import` appended to `module` (a path)."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / module, "a") as source:
        source.write(back_import)
    return tmp_path


@pytest.mark.parametrize(
    ("module", "back_import", "shown"),
    [
        ("selectors.py", "from provisioning import services\n", "tenants.selectors -> provisioning.services"),
        # Inside a function, where an import is easy to overlook, it counts all the same.
        (
            "models.py",
            "\n\ndef _status():\n    from provisioning.models import TenantSync\n\n    return TenantSync\n",
            "tenants.models -> provisioning.models",
        ),
    ],
)
def test_a_back_import_from_tenants_breaks_both_contracts(tmp_path, module, back_import, shown):
    result = lint_imports(copy_with(tmp_path, f"tenants/{module}", back_import))

    assert result.returncode == 1, result.stdout + result.stderr
    assert "tenants imports no other app BROKEN" in result.stdout
    assert "provisioning is built on tenants, never the other way BROKEN" in result.stdout
    assert "tenants is not allowed to import provisioning" in result.stdout
    assert shown in result.stdout


@pytest.mark.parametrize(
    ("module", "back_import", "broken", "shown"),
    [
        (
            "tenants/views/__init__.py",
            "from identity import services as identity_services\n",
            "tenants imports no other app BROKEN",
            "tenants.views -> identity.services",
        ),
        (
            "provisioning/views.py",
            "from identity.services import sessions_end\n",
            "tenants and provisioning do not import identity BROKEN",
            "provisioning.views -> identity.services",
        ),
        (
            "identity/groups.py",
            "from provisioning import services as provisioning\n",
            "identity depends on tenants only (never on provisioning) BROKEN",
            "identity.groups -> provisioning.services",
        ),
        (
            "tenants/views/__init__.py",
            "from usage import dashboards\n",
            "usage is downstream: tenants, provisioning and identity do not import it BROKEN",
            "tenants.views -> usage.dashboards",
        ),
        (
            "provisioning/tasks.py",
            "\n\ndef _collect():\n    from usage import tasks\n\n    return tasks\n",
            "usage is downstream: tenants, provisioning and identity do not import it BROKEN",
            "provisioning.tasks -> usage.tasks",
        ),
        (
            "usage/views.py",
            "from quotas import selectors as quota_selectors\n",
            "quotas is downstream: no other app imports it BROKEN",
            "usage.views -> quotas.selectors",
        ),
        (
            "tenants/models.py",
            "from portal.celery import app\n",
            "tenants imports no other app BROKEN",
            "tenants.models -> portal.celery",
        ),
    ],
)
def test_an_import_against_the_graph_breaks_its_contract(tmp_path, module, back_import, broken, shown):
    result = lint_imports(copy_with(tmp_path, module, back_import))

    assert result.returncode == 1, result.stdout + result.stderr
    assert broken in result.stdout
    assert shown in result.stdout
