"""What deploys: `function_app.py` and `shared/`, all of it live, none of it tied to the dev tools.

Read from the source (AST), never by importing: every `import` and `from ... import` counts,
inside functions and `if TYPE_CHECKING:` blocks too, as do `importlib.import_module("...")`
calls with a literal name. `from shared.x import y` reaches the module `shared.x.y` when there
is one, and reaching a module reaches the packages it sits in (their `__init__` runs first).
"""

from __future__ import annotations

import ast
import importlib
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENTRY = ROOT / "function_app.py"
PACKAGE = "shared"
# Beside the package, never imported by it: the dev host, the operator CLI, the simulator, ...
NOT_DEPLOYED = ("graphsim", "devhost", "calsync_cli", "tests", "bench")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _shipped() -> dict[str, Path]:
    """Every module of the package, by dotted name (packages by their `__init__.py`)."""
    return {_module_name(p): p for p in sorted((ROOT / PACKAGE).rglob("*.py"))}


def _imports(path: Path, name: str) -> Iterator[str]:
    """Every absolute name `path` (module `name`) imports, `from a import b` giving a and a.b."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.args[0].value


def _with_parents(name: str) -> Iterator[str]:
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        yield ".".join(parts[:i])


def test_every_shipped_module_is_reachable_from_function_app() -> None:
    """Each module under shared/ is imported (directly or not) by function_app.py: none is dead."""
    shipped = _shipped()
    reached: set[str] = set()
    todo = [(ENTRY, "function_app")]
    while todo:
        path, name = todo.pop()
        for imported in _imports(path, name):
            for module in _with_parents(imported):
                if module in shipped and module not in reached:
                    reached.add(module)
                    todo.append((shipped[module], module))
    assert sorted(shipped.keys() - reached) == []


@pytest.mark.parametrize(
    "path", [ENTRY, *_shipped().values()], ids=lambda p: str(p.relative_to(ROOT))
)
def test_shipped_code_imports_no_dev_tool(path: Path) -> None:
    """Shipped code imports nothing of graphsim, devhost, calsync_cli, tests or bench."""
    name = "function_app" if path == ENTRY else _module_name(path)
    found = sorted({i for i in _imports(path, name) if i.split(".")[0] in NOT_DEPLOYED})
    assert found == []


def test_funcignore_keeps_every_dev_package_out_and_all_of_shared_in() -> None:
    """.funcignore excludes each top-level package but shared/, and nothing inside shared/."""
    lines = (ROOT / ".funcignore").read_text(encoding="utf-8").splitlines()
    ignored = [line.strip().lstrip("/") for line in lines if not line.startswith("#")]
    packages = sorted(p.parent.name for p in ROOT.glob("*/__init__.py"))
    assert [p for p in packages if p != PACKAGE and f"{p}/" not in ignored] == []
    assert [line for line in ignored if line.split("/")[0] == PACKAGE] == []


def test_console_scripts_name_callables() -> None:
    """Each [project.scripts] entry of pyproject.toml names a callable that imports."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    scripts = pyproject["project"]["scripts"]
    assert scripts  # the `calsync` command at least
    for target in scripts.values():
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), target
