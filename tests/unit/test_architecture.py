"""The package's import graph has no cycle, and no module or function outgrows the limits (400 / 60 lines).

Both are read from the source with ast (nothing imported). The graph covers every module of the package,
module-level and function-level imports alike (a lazy import is still a dependency), with relative imports
resolved; importing a submodule is an edge to that submodule only.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "likeness"
OUTSIDE = {"tests", ".importroot", ".git", "build", "dist"}
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 60

# Named exceptions, each with its reason. Remove a line when its reason goes.
CYCLE_EXCEPTIONS: dict[frozenset, str] = {}
MODULE_EXCEPTIONS = {
}
FUNCTION_EXCEPTIONS = {
}


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(ROOT.rglob("*.py")):
        rel = p.relative_to(ROOT)
        if OUTSIDE & set(rel.parts) or rel.parts[0] in {"scripts", "benchmarks"}:
            continue
        parts = [PACKAGE, *rel.with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


def _targets(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == PACKAGE:
                mod = node.module
            else:
                continue
            subs = [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in modules]
            out.update(subs or [mod])
            if len(subs) < len(node.names):
                out.add(mod)
    return {t for t in out if t in modules and t != name}


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(frozenset(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_cycle():
    modules = _modules()
    graph = {name: _targets(name, path, modules) for name, path in modules.items()}
    assert graph["likeness.nodes.registry"] and graph["likeness.client.cli"]  # the resolution found edges
    assert [sorted(c) for c in _cycles(graph) if c not in CYCLE_EXCEPTIONS] == []


def test_the_cycle_detector_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]


def _sources():
    for p in sorted(ROOT.rglob("*.py")):
        rel = p.relative_to(ROOT)
        if not OUTSIDE & set(rel.parts):
            yield str(rel), p


def test_no_module_over_400_lines():
    long = {rel: n for rel, p in _sources() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert {k: v for k, v in long.items() if k not in MODULE_EXCEPTIONS} == {}
    assert set(MODULE_EXCEPTIONS) <= set(long), "an exception that is no longer needed: remove it"


def test_no_function_over_60_lines():
    long = {}
    for rel, p in _sources():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([d.lineno for d in node.decorator_list] + [node.lineno])
                if (n := node.end_lineno - start + 1) > MAX_FUNCTION_LINES:
                    long[f"{rel}:{node.name}"] = n
    assert {k: v for k, v in long.items() if k not in FUNCTION_EXCEPTIONS} == {}
    assert set(FUNCTION_EXCEPTIONS) <= set(long), "an exception that is no longer needed: remove it"
