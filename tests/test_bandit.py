"""bandit, the security linter, finds nothing in Canopy's code: each false positive is justified on
its own line (`# nosec BXXX # why`, or `# nosec BXXX, BYYY # why`: bandit reads test ids up to
the next `#`), and a `# nosec` without a test id and a reason is not accepted."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["portal", "tenants", "provisioning", "identity", "usage", "quotas", "bench"]


def test_bandit_finds_nothing():
    result = subprocess.run(
        [sys.executable, "-m", "bandit", "-c", "pyproject.toml", "-r", *PACKAGES, "-f", "txt"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No issues identified." in result.stdout


def test_every_nosec_names_the_check_and_says_why():
    bare = [
        f"{path.relative_to(ROOT)}:{number}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if "nosec" in line and not re.search(r"# nosec B\d{3}(, B\d{3})* # \S", line)
    ]
    assert bare == []
