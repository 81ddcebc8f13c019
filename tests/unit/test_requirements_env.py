"""Installing the pack's requirements into a ComfyUI environment that holds onnxruntime-gpu leaves it alone.

``onnxruntime`` and ``onnxruntime-gpu`` both provide the ``onnxruntime`` module; a requirement on the CPU one
(directly, or through insightface >= 1.0) installs it beside the GPU one and the CUDA provider can be lost for
every pack. The environment here holds a tiny stand-in distribution named ``onnxruntime-gpu`` that provides
the ``onnxruntime`` module as the real one does (the real wheel is ~300 MB; it is installable from PyPI, the
stand-in only keeps the test small). pip then resolves requirements.txt against that environment with its
real resolver (``install --dry-run --report``: the full dependency tree, nothing written), and the test
reads what pip would install. The same check on the old requirement (onnxruntime>=1.17) shows the test fails
when the CPU package would come in.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GPU_VERSION = "1.31.1"


def _standin_wheel(folder: Path, name: str, version: str, module: str, source: str) -> Path:
    """A pure-Python wheel named ``name`` that installs ``module`` with ``source`` (no native code)."""
    dist = name.replace("-", "_")
    wheel = folder / f"{dist}-{version}-py3-none-any.whl"
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": source,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: likeness-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(wheel, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
        z.writestr(f"{info}/RECORD", "".join(f"{n},,\n" for n in [*files, f"{info}/RECORD"]))
    return wheel


def _pip(venv_python: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pip", "--python", str(venv_python), "--disable-pip-version-check", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def _would_install(venv_python: Path, requirements: Path, report: Path) -> set[str]:
    out = _pip(venv_python, "install", "--dry-run", "--quiet", "--report", str(report), "-r", str(requirements))
    assert out.returncode == 0, out.stderr[-3000:]
    return {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}


@pytest.fixture(scope="module")
def gpu_env(tmp_path_factory) -> Path:
    """A user's ComfyUI environment, reduced to what matters here: onnxruntime-gpu, and the torch/torchvision
    that ComfyUI always brings (metadata-only stand-ins, so that pip does not fetch GBs of wheels to resolve)."""
    tmp = tmp_path_factory.mktemp("gpu-env")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp / "venv")], check=True, timeout=120)
    python = tmp / "venv" / "bin" / "python"
    gpu = f'__version__ = "{GPU_VERSION}"\nFLAVOUR = "gpu-standin"\n\n\ndef get_available_providers():\n' \
          "    return ['CUDAExecutionProvider', 'CPUExecutionProvider']\n"
    wheels = [
        _standin_wheel(tmp, "onnxruntime-gpu", GPU_VERSION, "onnxruntime", gpu),
        _standin_wheel(tmp, "torch", "2.14.1", "torch", '__version__ = "2.14.1"\n'),
        _standin_wheel(tmp, "torchvision", "0.29.1", "torchvision", '__version__ = "0.29.1"\n'),
    ]
    out = _pip(python, "install", "--no-index", "--no-deps", *map(str, wheels))
    assert out.returncode == 0, out.stderr[-2000:]
    return python


def _onnxruntime_in(python: Path) -> str:
    code = "import onnxruntime as o; print(o.__version__, getattr(o, 'FLAVOUR', '?'))"
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60).stdout.strip()


@pytest.mark.slow
def test_requirements_leave_onnxruntime_gpu_alone(gpu_env, tmp_path):
    assert _onnxruntime_in(gpu_env) == f"{GPU_VERSION} gpu-standin"
    names = _would_install(gpu_env, ROOT / "requirements.txt", tmp_path / "report.json")
    assert "timm" in names  # the resolution really ran over the requirements
    assert not {"onnxruntime", "onnxruntime-gpu", "insightface"} & names, sorted(names)
    assert _onnxruntime_in(gpu_env) == f"{GPU_VERSION} gpu-standin"


@pytest.mark.slow
def test_the_check_catches_a_requirement_that_brings_the_cpu_package(gpu_env, tmp_path):
    """The requirement the pack used to have (onnxruntime>=1.17): the check sees the CPU package come in."""
    old = tmp_path / "old-requirements.txt"
    old.write_text("onnxruntime>=1.17\n")
    assert "onnxruntime" in _would_install(gpu_env, old, tmp_path / "report.json")
