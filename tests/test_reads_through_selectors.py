"""Views and API views read through selectors that take the user (docs/ARCHITECTURE.md): none of
their modules touches a model's manager (`.objects`) itself. The AST is read, so a manager reached
in a comment or a string does not count, and one reached anywhere in the code does."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

VIEW_MODULES = sorted(
    [
        *ROOT.glob("tenants/views/*.py"),
        *ROOT.glob("*/api/views.py"),
        *ROOT.glob("*/views.py"),
    ]
)

# A manager a view module may still reach, with why. Empty: every read goes through a selector.
ALLOWED: dict[str, str] = {}


def manager_uses(path: Path, root: Path = ROOT) -> list[str]:
    """`file:line` of each `.objects` in the module's code."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        f"{path.relative_to(root)}:{node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "objects"
    ]


def test_the_view_modules_are_found():
    names = {str(path.relative_to(ROOT)) for path in VIEW_MODULES}
    assert {"tenants/views/tenant_page.py", "tenants/api/views.py", "provisioning/views.py"} <= names
    assert {"usage/views.py", "usage/api/views.py", "identity/views.py", "identity/api/views.py"} <= names


@pytest.mark.parametrize("path", VIEW_MODULES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_view_reads_the_orm_itself(path):
    uses = [use for use in manager_uses(path) if use.rsplit(":", 1)[0] not in ALLOWED]
    assert uses == [], f"read through a selector that takes the user instead: {uses}"


def test_the_scan_finds_a_manager_and_not_a_mention(tmp_path):
    module = tmp_path / "views.py"
    module.write_text(
        '"""Tenant.objects is read in selectors."""\n\n\n'
        "def view(request):\n"
        "    # not Tenant.objects here\n"
        "    return User.groups.through.objects.filter(pk=1).first()\n"
    )
    assert manager_uses(module, root=tmp_path) == ["views.py:6"]
