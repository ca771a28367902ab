"""The simulator's import graph, read from the source by AST: acyclic, and layered as
graphsim/README.md draws it (model below runtime and api; the leaves import no graphsim)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "graphsim"
LEAVES = {"graphsim.errors", "graphsim.knobs", "graphsim.counters"}
WEB = ("starlette", "uvicorn", "httpx")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports_of(path: Path, module: str, known: set[str]) -> set[str]:
    """Every module `path` imports, anywhere in the file (TYPE_CHECKING and function bodies
    included): `from pkg import name` counts as pkg.name when that is a module."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in known else base)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    known = set(modules)
    return {name: imports_of(path, name, known) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of `graph` as a path that returns to its start, or [] when it is acyclic."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return []


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"a"}}, ["a", "a"]),
        ({"a": {"b", "x"}, "b": set()}, []),
    ],
)
def test_find_cycle(graph: dict[str, set[str]], cycle: list[str]) -> None:
    """The cycle finder sees a cycle of any length and ignores modules outside the graph."""
    assert find_cycle(graph) == cycle


def test_the_graph_is_read_from_the_source() -> None:
    """The graph has the three parts and sees known edges (so the checks below can fail)."""
    graph = import_graph()
    assert {"graphsim.model.directory", "graphsim.api.pipeline", "graphsim.runtime.server"} <= set(
        graph
    )
    assert "graphsim.api.events" in graph["graphsim.runtime.server"]
    assert "graphsim.simulator" in graph["graphsim.api.pipeline"]  # a TYPE_CHECKING import
    assert "starlette.requests" in graph["graphsim.api.control"]


def test_graphsim_has_no_import_cycle() -> None:
    """No module of graphsim imports, directly or not, itself."""
    assert find_cycle(import_graph()) == []


def test_the_model_imports_neither_web_libraries_nor_other_parts() -> None:
    """graphsim.model imports no starlette/uvicorn/httpx and only the model and the leaves."""
    graph = import_graph()
    problems = []
    for module, imported in graph.items():
        if not module.startswith("graphsim.model"):
            continue
        for name in imported:
            outside = name.startswith("graphsim") and not (
                name.startswith("graphsim.model") or name in LEAVES
            )
            if outside or name.split(".")[0] in WEB:
                problems.append(f"{module} imports {name}")
    assert problems == []


def test_the_leaves_import_no_graphsim_module() -> None:
    """errors, knobs and counters are leaves that every part may import."""
    graph = import_graph()
    assert {leaf: {n for n in graph[leaf] if n.startswith("graphsim")} for leaf in LEAVES} == {
        leaf: set() for leaf in LEAVES
    }


def test_runtime_does_not_import_the_api_except_to_serve_it() -> None:
    """Only runtime.server (which mounts the handlers) and runtime.process import graphsim.api
    or the Simulator; the clock, TLS, tokens, throttle and delivery stand alone."""
    graph = import_graph()
    users = {
        module
        for module, imported in graph.items()
        if module.startswith("graphsim.runtime")
        and any(n.startswith("graphsim.api") or n == "graphsim.simulator" for n in imported)
    }
    assert users == {"graphsim.runtime.server", "graphsim.runtime.process"}
