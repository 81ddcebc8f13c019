"""likeness batch --ray: one Ray actor per ComfyUI server, locally with ray.init and embedded stand-in servers.
An actor killed mid-job is restarted by Ray and its job finishes once, found on its server by its token. A Ray
batch and a local batch share one job model: the same rows, second-face references and the likeness gate."""

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


def _pairs(root: Path, n: int) -> list:
    from likeness.client.params import MODES
    from likeness.client.runs import make_pair

    base = photos.astronaut_head(128)
    pairs = []
    for i in range(n):
        d = root / f"p{i}"
        d.mkdir(parents=True)
        Image.fromarray(base).save(d / "ref.png")
        Image.fromarray(np.clip(base.astype(int) - 5 * (i + 1), 0, 255).astype(np.uint8)).save(d / "target.png")
        params = {"seed": 42, "steps": 6, "judge": None}
        pairs.append(make_pair(f"p{i}", MODES["whole"], [str(d / "ref.png")], str(d / "target.png"), params))
    return pairs


def cli(*args):
    return subprocess.run([sys.executable, "-m", "likeness.client", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)  # fmt: skip


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
    p = cli("batch", "--ray", "--servers", servers, "--standins", "--folder", folder, "--steps", 3, "--json", "-o", tmp_path / "out")
    assert p.returncode == 0, p.stderr[-4000:]
    rows = json.loads(p.stdout)["rows"]
    assert [r["name"] for r in rows] == ["p0", "p1", "p2"] and all(r["state"] == "done" for r in rows)
    assert {r["server"] for r in rows} == {comfy.server.url, second.url}, "both servers got work"
    for r in rows:
        assert Path(r["output"]).is_file()


@pytest.mark.slow
def test_an_actor_killed_mid_job_is_retried_and_the_job_runs_once(comfy, second, tmp_path):
    from likeness.client.ray_batch import run_on_ray
    from likeness.client.runs import Gate, finish, plan

    servers = {comfy.server.url: comfy.server, second.url: second}
    actors, rows, errors = {}, [], []
    journal = Journal(tmp_path / "j.sqlite")
    runs = plan(_pairs(tmp_path / "pairs", 3), Gate(), True, journal)

    def batch():
        try:
            run_on_ray(list(servers), True, comfy.files, runs, journal, tmp_path / "out", on_actors=actors.update)
            rows.extend(finish(runs, tmp_path / "out").rows)
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


T1_CROP = (0, 200, 640, 480)  # two faces of insightface's t1.jpg (tests/server/test_workflows.py)
FACE_2_IN_CROP = (462, 104, 570, 212)
PER_RUN = {"seconds", "server", "prompt_id", "files", "output", "report_image", "resumed", "run", "job"}  # run: the run id


@pytest.mark.slow
def test_ray_and_local_batches_give_the_same_rows_with_a_second_face_and_the_gate(comfy, second, tmp_path):
    d = tmp_path / "pairs" / "two"
    d.mkdir(parents=True)
    Image.fromarray(photos.astronaut_head(128)).save(d / "ref_a.png")
    Image.fromarray(photos.grace_hopper()).save(d / "ref2_a.png")  # the second face's reference (--ref2)
    x0, y0, x1, y1 = T1_CROP
    target = np.ascontiguousarray(photos.group_t1()[y0:y1, x0:x1])
    Image.fromarray(target).save(d / "target.png")
    same = ["batch", "--folder", tmp_path / "pairs", "--mode", "crop", "--working-size", 128, "--steps", 2,
            "--min-similarity", 0.99, "--max-tries", 2, "--standins", "--json"]  # fmt: skip
    local = cli(*same, "-o", tmp_path / "local", "--server", comfy.server.url)
    on_ray = cli(*same, "-o", tmp_path / "ray", "--ray", "--servers", f"{comfy.server.url},{second.url}")
    assert local.returncode == 5 and on_ray.returncode == 5, (local.stderr[-3000:], on_ray.stderr[-3000:])  # gate missed
    a, b = json.loads(local.stdout)["rows"], json.loads(on_ray.stdout)["rows"]
    assert [r["try"] for r in b] == [1, 2] and [r["seed"] for r in b] == [42, 43] and sum(r["best"] for r in b) == 1
    assert [set(r) for r in a] == [set(r) for r in b], "the same fields"
    for ra, rb in zip(a, b):
        assert {k: v for k, v in ra.items() if k not in PER_RUN} == pytest.approx({k: v for k, v in rb.items() if k not in PER_RUN})
    best = next(r for r in b if r["best"])
    out = np.asarray(Image.open(best["output"]).convert("RGB"))
    fx0, fy0, fx1, fy1 = FACE_2_IN_CROP
    assert np.any(out != target, axis=-1)[fy0 + 20 : fy1 - 20, fx0 + 20 : fx1 - 20].mean() > 0.9, "face 2 regenerated"


def _running(url: str) -> bool:
    from likeness.client.api import ComfyClient

    return bool(ComfyClient(url, retries=0).queue().get("queue_running"))
