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


def test_requirements_do_not_fight_the_users_environment():
    """No exact pins on packages other packs share; neither ONNX Runtime flavour, and not insightface (which
    requires the CPU flavour) as a hard requirement: both are checked when the pack loads."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[=<>~!\[ ;]", d)[0].lower(): d for d in deps}
    assert not {"torch", "torchvision", "onnxruntime", "onnxruntime-gpu", "insightface"} & set(names)
    assert not [d for d in deps if "==" in d]


def test_registry_metadata_points_at_files_that_exist():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    comfy = data["tool"]["comfy"]
    icon = comfy["Icon"].split("/main/", 1)[1]
    assert (ROOT / icon).is_file() and (ROOT / icon).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert re.fullmatch(r">=\d+\.\d+\.\d+", comfy["requires-comfyui"])
    pinned = re.search(r'COMFYUI_VERSION\s*=\s*"([\d.]+)"', (ROOT / "client" / "provision.py").read_text())
    assert pinned and comfy["requires-comfyui"] == f">={pinned.group(1)}"  # the oldest ComfyUI the suite runs on
    license_text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert len(license_text.splitlines()) > 150  # the full text, not a pointer
    assert data["project"]["license"] == "Apache-2.0" and "LICENSE" in data["project"]["license-files"]
    assert any(c.startswith("Operating System ::") for c in data["project"]["classifiers"])
    assert data["project"]["scripts"]["likeness"] == "likeness.client.cli:main"


def test_comfyignore_keeps_the_published_archive_to_what_a_user_runs():
    ignored = {ln.strip().strip("/") for ln in (ROOT / ".comfyignore").read_text().splitlines() if ln.strip() and not ln.startswith("#")}
    assert {"tests", "benchmarks", "standins/comfy_pack/bench.py"} <= ignored
    assert not {"nodes", "pulid", "workflows", "__init__.py"} & ignored
