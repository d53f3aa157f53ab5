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
PACKAGES = ("portal", "provisioning", "tenants")


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
    assert "tenants imports no other app KEPT" in result.stdout
    assert "provisioning is built on tenants, never the other way KEPT" in result.stdout


@pytest.mark.parametrize(
    ("module", "back_import", "shown"),
    [
        ("selectors", "from provisioning import services\n", "tenants.selectors -> provisioning.services"),
        # Inside a function, where an import is easy to overlook, it counts all the same.
        (
            "models",
            "\n\ndef _status():\n    from provisioning.models import TenantSync\n\n    return TenantSync\n",
            "tenants.models -> provisioning.models",
        ),
    ],
)
def test_a_back_import_from_tenants_breaks_both_contracts(tmp_path, module, back_import, shown):
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / "tenants" / f"{module}.py", "a") as source:
        source.write(back_import)

    result = lint_imports(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "tenants imports no other app BROKEN" in result.stdout
    assert "provisioning is built on tenants, never the other way BROKEN" in result.stdout
    assert "tenants is not allowed to import provisioning" in result.stdout
    assert shown in result.stdout
