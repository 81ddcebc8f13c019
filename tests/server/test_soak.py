"""Soak: 50 enhancement jobs queued at once on one server (the shipped whole-image workflow on stand-ins, default
caching on, a new seed per job). Server RSS after warm-up grows at most 5 %, the pack leaves no files in the
temp directory, and every output is present and valid."""

import io
import json
import os
import time
from pathlib import Path

import photos
import pytest
from likeness.client.params import fill
from likeness.client.provision import ensure_comfyui
from likeness.client.server import EmbeddedServer
from likeness.client.workflow_format import load_workflow
from likeness.standins.substitution import to_standins
from PIL import Image

TESTS = Path(__file__).resolve().parents[1]
JOBS, WARM = 50, 5


@pytest.mark.slow
def test_fifty_queued_jobs_bounded_memory_no_leftovers(comfy, tmp_path):
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    server = EmbeddedServer(
        Path(os.environ.get("LIKENESS_COMFYUI") or ensure_comfyui()),
        base_dir=tmp_path / "base",
        custom_nodes={"likeness_standins": TESTS.parent / "standins" / "comfy_pack"},
        models_dir=comfy.server.models,
        env={"TMPDIR": str(tmpdir)},
    )
    client = server.start()
    try:
        buf = io.BytesIO()
        Image.fromarray(photos.astronaut_head(128)).save(buf, format="PNG")
        ref = client.upload_image(buf.getvalue(), "soak_ref.png")["name"]
        graph = to_standins(load_workflow("likeness_enhance_whole"), comfy.files, steps=2, size=64)
        ids = [
            client.queue_prompt(fill(graph, reference=ref, target=ref, seed=1000 + i, output_prefix=f"soak/{i:03d}", judge="dlib (hog)"))
            for i in range(JOBS)
        ]
        rss, t0, deadline = {}, time.monotonic(), time.monotonic() + 900
        while time.monotonic() < deadline:
            done = sum(1 for pid in ids if client.history(pid).get("status", {}).get("status_str") in ("success", "error"))
            if done >= WARM and "warm" not in rss:
                rss["warm"] = server.rss_bytes()
            if done == JOBS:
                break
            time.sleep(0.5)
        rss["end"] = server.rss_bytes()
        statuses = [client.history(pid).get("status", {}).get("status_str") for pid in ids]
        assert statuses == ["success"] * JOBS, statuses
        growth = (rss["end"] - rss["warm"]) / rss["warm"]
        assert growth <= 0.05, f"RSS {rss['warm'] / 2**20:.0f} MiB after {WARM} jobs -> {rss['end'] / 2**20:.0f} MiB after {JOBS} ({growth:+.1%})"
        outputs = sorted((server.output_dir / "soak").glob("*.png"))
        assert len(outputs) == JOBS
        for path in outputs:
            with Image.open(path) as im:
                im.verify()
            assert Image.open(path).size == (128, 128)
        assert sorted(os.listdir(tmpdir)) == [], "files left in the server's TMPDIR"
        previews = list((server.base_dir / "temp").rglob("*"))
        assert all(p.name.startswith("likeness_") for p in previews if p.is_file()), previews
        figures = {"jobs": JOBS, "rss_warm_mib": rss["warm"] / 2**20, "rss_end_mib": rss["end"] / 2**20, "growth": growth,
                   "wall_s": time.monotonic() - t0, "tmpdir_files": 0, "previews": len(previews)}  # fmt: skip
        out = TESTS / "artifacts"
        out.mkdir(exist_ok=True)
        (out / "soak.json").write_text(json.dumps(figures, indent=2))
    finally:
        server.cleanup()
