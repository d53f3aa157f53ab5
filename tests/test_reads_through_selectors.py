"""Views and API views read through selectors that take the user (docs/ARCHITECTURE.md): none of
their modules touches a model's manager (`.objects`) itself, and every selector function they or the
API's serializers call has a `user` parameter. The AST is read, so a manager reached in a comment or
a string does not count, and one reached anywhere in the code does."""

import ast
import importlib
import inspect
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

# Modules that read on a request's behalf: the views, and the API's serializers (they add figures).
CALLER_MODULES = sorted(
    {*VIEW_MODULES, *ROOT.glob("*/api/serializers.py"), *ROOT.glob("*/api/serializers/*.py")}
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


def selector_calls(path: Path, root: Path = ROOT) -> list[tuple[str, str, str]]:
    """(`file:line`, selectors module, name) of each call of a function of a `selectors` module:
    `selectors.f(...)` through an imported module, or `f(...)` imported from one."""
    tree = ast.parse(path.read_text(), filename=str(path))
    modules: dict[str, str] = {}
    functions: dict[str, tuple[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if alias.name == "selectors":
                    modules[alias.asname or alias.name] = f"{node.module}.selectors"
                elif node.module.endswith(".selectors"):
                    functions[alias.asname or alias.name] = (node.module, alias.name)
    calls = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        where = f"{path.relative_to(root)}:{node.lineno}"
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in modules:
            calls.append((where, modules[func.value.id], func.attr))
        elif isinstance(func, ast.Name) and func.id in functions:
            calls.append((where, *functions[func.id]))
    return calls


@pytest.mark.parametrize("path", CALLER_MODULES, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_selector_a_view_calls_takes_the_user(path):
    userless = []
    for where, module, name in selector_calls(path):
        selector = getattr(importlib.import_module(module), name)
        if inspect.isclass(selector):
            continue  # a value the caller builds (a query, a tree node), not a read
        if "user" not in inspect.signature(selector).parameters:
            userless.append(f"{where} {module}.{name}")
    assert userless == [], f"a selector called on a request's behalf takes the user: {userless}"


def test_the_selector_scan_finds_calls_both_ways(tmp_path):
    module = tmp_path / "views.py"
    module.write_text(
        "from tenants import selectors\n"
        "from usage.selectors import cluster_names as names\n\n\n"
        "def view(request):\n"
        "    selectors.tenant_summaries([])\n"
        "    return names(user=request.user, ids=set())\n"
    )
    assert selector_calls(module, root=tmp_path) == [
        ("views.py:6", "tenants.selectors", "tenant_summaries"),
        ("views.py:7", "usage.selectors", "cluster_names"),
    ]
