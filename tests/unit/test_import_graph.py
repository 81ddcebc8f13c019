"""The pack's import graph has no cycle: every import between its modules (at the top of a module or inside a
function, relative or as ``likeness.…``), read with ast, so a lazy import that closes a loop is caught too."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pulid", "eva_clip", "face", "caption", "common", "tools", "nodes", "client", "standins")


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _known() -> dict[str, Path]:
    files = [p for d in PACKAGES for p in sorted((ROOT / d).rglob("*.py"))] + [ROOT / "contract.py"]
    return {_module(p): p for p in files if p.exists()}


def _targets(path: Path, known: dict[str, Path]) -> set[str]:
    """The pack modules one file imports (``from . import x`` counts as importing module x when it is one)."""
    here = _module(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1] if node.level > 1 else package
                name = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and node.module.startswith("likeness."):
                name = node.module[len("likeness.") :]
            else:
                continue
            subs = {f"{name}.{a.name}" for a in node.names if f"{name}.{a.name}" in known}
            out |= subs or ({name} if name in known else set())
        elif isinstance(node, ast.Import):
            out |= {a.name[len("likeness.") :] for a in node.names if a.name[len("likeness.") :] in known}
    return out - {_module(path)}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                return stack[stack.index(t) :] + [t]
            if t not in state and (found := visit(t)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_the_import_graph_has_no_cycle():
    known = _known()
    graph = {m: _targets(p, known) for m, p in known.items()}
    assert graph["client.cli"] and "client.runs" in graph["client.ray_batch"], "the graph is read"
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_a_cycle_is_found():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
