"""Import boundaries of the layout, checked on the source with ast (no imports executed)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMFY = {"comfy", "comfy_extras", "comfy_api", "comfy_execution", "folder_paths", "server", "nodes", "execution"}
OURS = {"pulid", "eva_clip", "face", "client", "nodes"}


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def _files(*dirs):
    for d in dirs:
        yield from sorted((ROOT / d).rglob("*.py"))


def test_pure_packages_never_import_comfyui_or_the_glue():
    bad = {str(p.relative_to(ROOT)): _imports(p) & (COMFY | OURS) for p in _files("pulid", "eva_clip", "face")}
    assert not {k: v for k, v in bad.items() if v}


def test_client_imports_no_torch_and_no_comfyui():
    bad = {str(p.relative_to(ROOT)): _imports(p) & ({"torch", "numpy", "torchvision"} | COMFY) for p in _files("client")}
    assert not {k: v for k, v in bad.items() if v}


def test_only_the_adapter_touches_comfyui_internals():
    offenders = [
        str(p.relative_to(ROOT))
        for p in _files("nodes")
        if p.name != "comfy_adapter.py" and _imports(p) & (COMFY - {"nodes"})
    ]
    assert offenders == []


def test_no_print_calls_in_the_pack():
    offenders = []
    for p in _files("pulid", "eva_clip", "face", "client", "nodes"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                offenders.append(f"{p.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
