"""ComfyUI loads the pack from a folder named as a zip download names it (``custom_nodes/likeness-main``).

The pack imports itself relatively, so its folder name does not matter; this proves it on a real server: the
git-tracked files are copied (a real folder, as an unzipped download is, not a link) into
``custom_nodes/likeness-main``, and a graph runs one of the pack's nodes there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from graphs import t2i_flux, with_union_control
from likeness.client.server import EmbeddedServer
from packinfo import pack_node_ids

ROOT = Path(__file__).resolve().parents[2]


def _copy_tracked(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        src = ROOT / rel
        if src.is_file() and not rel.startswith(("tests/", "benchmarks/")):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


@pytest.mark.slow
def test_pack_loads_and_runs_from_custom_nodes_likeness_main(tmp_path):
    pack = tmp_path / "download" / "likeness-main"
    _copy_tracked(pack)
    server = EmbeddedServer(
        os.environ.get("LIKENESS_COMFYUI") or _pinned(),
        base_dir=tmp_path / "base",
        custom_nodes={"likeness_standins": ROOT / "standins" / "comfy_pack"},
        extra_args=["--cache-none"],
    )
    server.custom_nodes = {"likeness-main": pack, "likeness_standins": ROOT / "standins" / "comfy_pack"}
    server.prepare()
    try:
        client = server.start()
        server.check_pack_loaded(client, pack_node_ids())
        assert (server.base_dir / "custom_nodes" / "likeness-main").resolve() == pack.resolve()
        assert not (server.base_dir / "custom_nodes" / "likeness").exists()
        graph = with_union_control(t2i_flux(size=128, steps=1), {"class_type": "LikenessFluxUnionMode", "inputs": {"mode": "tile"}})
        result = client.run(graph, timeout=300)
        img = np.asarray(_image(client, result.images("10")[0]))
        assert img.shape == (128, 128, 3) and img.std() > 0
        loaded = [ln for ln in server.log_text().splitlines() if ln.rstrip().endswith("custom_nodes/likeness-main")]
        assert loaded and not [ln for ln in loaded if "IMPORT FAILED" in ln], loaded  # ComfyUI's import-times line
    finally:
        server.stop()


def _pinned() -> str:
    from likeness.client.provision import ensure_comfyui

    return str(ensure_comfyui())


def _image(client, record: dict):
    import io

    from PIL import Image

    return Image.open(io.BytesIO(client.view(record["filename"], record.get("subfolder", ""), record.get("type", "output"))))
