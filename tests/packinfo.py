"""What the pack registers, read from its source without importing ComfyUI (shared by conftest and tests)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pack_node_ids() -> list[str]:
    """Node ids from nodes/registry.py's table, read without importing ComfyUI."""
    tree = ast.parse((ROOT / "nodes" / "registry.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_NODES" for t in node.targets):
            return [elt.elts[0].value for elt in node.value.elts]
    raise AssertionError("nodes/registry.py has no _NODES table")


def shipped_workflows() -> list[str]:
    """The UI workflows in workflows/ (each has its API copy in workflows/api/, checked by test_workflows)."""
    return sorted(p.stem for p in (ROOT / "workflows").glob("*.json"))
