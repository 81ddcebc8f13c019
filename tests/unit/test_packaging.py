"""Packaging rules: pyproject is the single source of dependencies, requirements.txt mirrors it."""

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req.split("#", 1)[0]).lower()


def test_requirements_txt_equals_pyproject_dependencies():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lines = [_norm(x) for x in (ROOT / "requirements.txt").read_text().splitlines() if _norm(x)]
    assert sorted(lines) == sorted(_norm(d) for d in deps)


def test_pyproject_has_registry_metadata():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = data["project"]
    assert project["name"] == "likeness" and "comfyui" not in project["name"].lower()
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])
    assert project["description"] and project["license"]
    assert {"Repository", "Issues"} <= set(project["urls"])
    assert "test" in project["optional-dependencies"]
    comfy = data["tool"]["comfy"]
    assert comfy["DisplayName"] == "Likeness" and comfy["PublisherId"] and comfy["Icon"]
    assert "T20" in data["tool"]["ruff"]["lint"]["select"] or "T201" in data["tool"]["ruff"]["lint"]["select"]
    ini = data["tool"]["pytest"]["ini_options"]
    assert any(m.startswith("gpu") for m in ini["markers"]) and any(m.startswith("slow") for m in ini["markers"])
    assert "not gpu" in ini["addopts"]


def test_torch_is_not_pinned_and_insightface_is():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[=<>~!\[ ]", d)[0].lower(): d for d in deps}
    assert "torch" not in names and "torchvision" not in names
    assert "==" in names["insightface"]
