"""The core's house rules, checked on its source: no I/O libraries, no clocks, 'Pure:' first."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "shared" / "core"
MODULES = sorted(p for p in CORE.glob("*.py") if p.name != "__init__.py")
BANNED_IMPORTS = ("httpx", "azure", "msal", "requests", "socket", "subprocess", "os", "time")
BANNED_CALLS = {"now", "utcnow", "today", "open", "token_bytes", "urandom"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_core_module_is_pure(path: Path) -> None:
    """A core module imports no I/O library, reads no clock and starts its docstring 'Pure:'."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert (ast.get_docstring(tree) or "").startswith("Pure:")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            names = []
        for name in names:
            assert name.split(".")[0] not in BANNED_IMPORTS, f"{path.name} imports {name}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            assert called not in BANNED_CALLS, f"{path.name} calls {called}() at {node.lineno}"
