"""likeness batch --ray: one Ray actor per ComfyUI server, locally with ray.init and embedded stand-in servers.
An actor killed mid-job is restarted by Ray and its job finishes once, found on its server by its token."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import photos
import pytest
from likeness.client.journal import Journal
from likeness.client.provision import ensure_comfyui
from likeness.client.server import EmbeddedServer
from PIL import Image

ray = pytest.importorskip("ray", reason="Ray is in the test extra; bootstrap installs it")

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"


def _pairs(root: Path, n: int) -> list[dict]:
    from likeness.client.cli import WORKFLOWS, _pair

    base = photos.astronaut_head(128)
    pairs = []
    for i in range(n):
        d = root / f"p{i}"
        d.mkdir(parents=True)
        Image.fromarray(base).save(d / "ref.png")
        Image.fromarray(np.clip(base.astype(int) - 5 * (i + 1), 0, 255).astype(np.uint8)).save(d / "target.png")
        pair = _pair(f"p{i}", [str(d / "ref.png")], str(d / "target.png"), {"seed": 42, "steps": 6, "judge": None})
        pair["workflow"] = WORKFLOWS["whole"]
        pairs.append(pair)
    return pairs


@pytest.fixture(scope="module")
def second(comfy):
    srv = EmbeddedServer(
        Path(os.environ.get("LIKENESS_COMFYUI") or ensure_comfyui()),
        custom_nodes={"likeness_standins": TESTS.parent / "standins" / "comfy_pack"},
        models_dir=comfy.server.models,
        extra_args=["--cache-none"],
    )
    srv.start()
    yield srv
    srv.cleanup()


@pytest.mark.slow
def test_batch_on_ray_over_two_servers(comfy, second, tmp_path):
    folder = tmp_path / "pairs"
    _pairs(folder, 3)
    servers = f"{comfy.server.url},{second.url}"
    p = subprocess.run(
        [sys.executable, "-m", "likeness.client", "batch", "--ray", "--servers", servers, "--standins", "--folder", str(folder),
         "--steps", "3", "--json", "-o", str(tmp_path / "out")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-4000:]
    rows = json.loads(p.stdout)["rows"]
    assert [r["name"] for r in rows] == ["p0", "p1", "p2"] and all(r["state"] == "done" for r in rows)
    assert {r["server"] for r in rows} == {comfy.server.url, second.url}, "both servers got work"
    for r in rows:
        assert Path(r["output"]).is_file()


@pytest.mark.slow
def test_an_actor_killed_mid_job_is_retried_and_the_job_runs_once(comfy, second, tmp_path):
    from likeness.client.ray_batch import run_jobs_on_ray

    servers = {comfy.server.url: comfy.server, second.url: second}
    actors, rows, errors = {}, [], []
    journal = Journal(tmp_path / "j.sqlite")
    pairs = _pairs(tmp_path / "pairs", 3)

    def batch():
        try:
            rows.extend(run_jobs_on_ray(journal, "ray-kill", pairs, list(servers), tmp_path / "out", True, comfy.files,
                                        on_actors=actors.update))  # fmt: skip
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    try:
        t = threading.Thread(target=batch)
        t.start()
        victim, deadline = None, time.monotonic() + 300
        while victim is None and time.monotonic() < deadline and t.is_alive():
            for url, srv in servers.items():
                if url in actors and srv.url and _running(url):
                    victim = url
                    break
            time.sleep(0.05)
        assert victim, "no job was seen running"
        ray.kill(actors[victim], no_restart=False)
        t.join(600)
        assert not t.is_alive() and not errors, errors
        assert all(r["state"] == "done" for r in rows), rows
        assert any(r.get("resumed") == "token" for r in rows), "the killed actor's job was picked up by its token"
        for r in rows:
            outs = [p for srv in servers.values() for p in (srv.output_dir / "likeness").glob(f"{r['job']}_*.png")]
            assert len(outs) == 1, (r["name"], outs)
    finally:
        ray.shutdown()


def _running(url: str) -> bool:
    from likeness.client.api import ComfyClient

    return bool(ComfyClient(url, retries=0).queue().get("queue_running"))
