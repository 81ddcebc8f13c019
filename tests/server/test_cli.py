"""The likeness CLI as a user runs it (a subprocess), against the live test server on its stand-ins, and once
fully embedded (README command 1). Exit codes, --json, results files, the likeness gate, resuming a batch."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import photos
import pytest
from likeness.client.journal import Journal
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "demo"


def cli(*args, timeout=600, **kw):
    return subprocess.run([sys.executable, "-m", "likeness.client", *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=timeout, **kw)


def on(comfy, *args):
    return ("--server", comfy.server.url, "--standins", *args)


def _json(proc):
    assert proc.stdout.strip(), proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_enhance_json_result_matches_the_pure_judge(comfy, tmp_path):
    p = cli("enhance", "--ref", EXAMPLES / "reference.png", "--target", EXAMPLES / "target_drifted.png", "--steps", 4,
            "--json", "-o", tmp_path, *on(comfy))  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    out = _json(p)
    (row,) = out["rows"]
    assert out["standin_weights"] is True and row["state"] == "done" and row["best"] is True
    assert Path(row["output"]).is_file() and Path(row["report_image"]).is_file()
    assert row["judge"] == "dlib-resnet-v1 (hog)"
    from likeness.face import DlibJudge, identity_similarity, select_faces

    judge = DlibJudge()
    ref = select_faces(judge.detect_embed(np.asarray(Image.open(EXAMPLES / "reference.png").convert("RGB"))))[0]
    tgt = select_faces(judge.detect_embed(np.asarray(Image.open(EXAMPLES / "target_drifted.png").convert("RGB"))))[0]
    assert row["cos_before"] == pytest.approx(identity_similarity(ref.normed_embedding, tgt.normed_embedding), abs=1e-5)
    with open(tmp_path / "likeness_results.csv") as f:
        (csv_row,) = list(csv.DictReader(f))
    assert float(csv_row["cos_before"]) == pytest.approx(row["cos_before"]) and csv_row["state"] == "done"


def test_crop_mode_with_one_face_and_score(comfy, tmp_path):
    p = cli("enhance", "--mode", "crop", "--ref", EXAMPLES / "reference.png", "--target", EXAMPLES / "target_drifted.png",
            "--steps", 3, "--json", "-o", tmp_path / "crop", *on(comfy))  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    (row,) = _json(p)["rows"]
    out = np.asarray(Image.open(row["output"]).convert("RGB")).astype(int)
    before = np.asarray(Image.open(EXAMPLES / "target_drifted.png").convert("RGB")).astype(int)
    changed = np.any(out != before, axis=-1)
    assert changed[100:150, 190:250].mean() > 0.9 and not changed[:, 400:].any(), "only the face region changes"
    s = cli("score", "--ref", EXAMPLES / "reference.png", "--before", EXAMPLES / "target_drifted.png",
            "--after", EXAMPLES / "reference.png", "--json", "-o", tmp_path / "score", *on(comfy))  # fmt: skip
    assert s.returncode == 0, s.stderr[-3000:]
    (srow,) = _json(s)["rows"]
    assert srow["cos_after"] == pytest.approx(1.0, abs=1e-6) and srow["delta_id"] > 0.05


def test_kontext_mode_queues_the_kontext_workflow(comfy, tmp_path):
    p = cli("enhance", "--mode", "kontext", "--ref", EXAMPLES / "reference.png", "--target", EXAMPLES / "target_drifted.png",
            "--steps", 2, "-o", tmp_path, *on(comfy))  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    assert "Target as reference latent" in p.stderr, "the Kontext workflow ran (its node titles in the progress log)"
    with open(tmp_path / "likeness_results.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert row["state"] == "done" and row["cos_before"]
    out = Image.open(row["output"]).convert("RGB")
    before = Image.open(EXAMPLES / "target_drifted.png").convert("RGB")
    assert out.size == before.size and not np.array_equal(np.asarray(out), np.asarray(before))


def test_kontext_crop_mode_edits_only_the_face_region(comfy, tmp_path):
    h = cli("enhance", "--help")
    assert h.returncode == 0 and "kontext-crop: FLUX.1 Kontext edit of the face crop" in " ".join(h.stdout.split())
    p = cli("enhance", "--mode", "kontext-crop", "--ref", EXAMPLES / "reference.png", "--target", EXAMPLES / "target_drifted.png",
            "--steps", 2, "--working-size", 256, "--weight", 0.6, "-o", tmp_path, *on(comfy))  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    assert "Face crop as reference latent" in p.stderr, "the Kontext crop workflow ran (its node titles in the progress log)"
    with open(tmp_path / "likeness_results.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert row["state"] == "done" and row["cos_before"]
    out = np.asarray(Image.open(row["output"]).convert("RGB")).astype(int)
    before = np.asarray(Image.open(EXAMPLES / "target_drifted.png").convert("RGB")).astype(int)
    assert out.shape == before.shape
    changed = np.any(out != before, axis=-1)
    assert changed[100:150, 190:250].mean() > 0.9 and not changed[:, 400:].any(), "only the face region changes"


def test_likeness_gate_tries_new_seeds_keeps_the_best_and_exits_5(comfy, tmp_path):
    p = cli("enhance", "--ref", EXAMPLES / "reference.png", "--target", EXAMPLES / "target_drifted.png", "--steps", 2,
            "--min-similarity", 0.99, "--max-tries", 3, "--json", "-o", tmp_path, *on(comfy))  # fmt: skip
    assert p.returncode == 5, p.stderr[-3000:]
    rows = _json(p)["rows"]
    assert [r["seed"] for r in rows] == [42, 43, 44] and [r["try"] for r in rows] == [1, 2, 3]
    assert sum(r["best"] for r in rows) == 1 and all(r["state"] == "done" for r in rows)
    assert len({r["job"] for r in rows}) == 3


def test_real_workflow_without_weights_exits_4_before_queueing_naming_file_and_folder(comfy, tmp_path):
    queued_before = len(comfy.client.history_all())
    p = cli("enhance", "--ref", EXAMPLES / "reference.png", "--target", EXAMPLES / "target_drifted.png",
            "-o", tmp_path, "--server", comfy.server.url)  # fmt: skip
    assert p.returncode == 4, p.stderr[-3000:]
    assert "'flux1-dev.safetensors' for 'Flux.1-dev' (models/diffusion_models; the server has:" in p.stderr
    assert "Traceback" not in p.stderr and len(comfy.client.history_all()) == queued_before  # nothing was queued


def test_bad_inputs_exit_2_and_a_dead_server_exits_3(comfy, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    p = cli("enhance", "--ref", bad, "--target", EXAMPLES / "target_drifted.png", *on(comfy))
    assert p.returncode == 2 and "reference image" in p.stderr and "broken.png" in p.stderr and "not a readable image" in p.stderr
    p = cli("enhance", "--ref", tmp_path / "missing.png", "--target", EXAMPLES / "target_drifted.png", *on(comfy))
    assert p.returncode == 2 and "missing.png" in p.stderr and "does not exist" in p.stderr
    p = cli("score", "--ref", EXAMPLES / "reference.png", "--before", bad, "--after", bad, "--server", "http://127.0.0.1:9")
    assert p.returncode == 2
    p = cli("score", "--ref", EXAMPLES / "reference.png", "--before", EXAMPLES / "reference.png", "--after",
            EXAMPLES / "reference.png", "--server", "http://127.0.0.1:9")  # fmt: skip
    assert p.returncode == 3 and "127.0.0.1:9" in p.stderr


def test_scripts_likeness_runs_from_any_folder_and_reads_relative_paths_there(comfy, tmp_path):
    work = tmp_path / "a user folder"
    work.mkdir()
    shutil.copyfile(EXAMPLES / "reference.png", work / "me.png")
    shutil.copyfile(EXAMPLES / "target_drifted.png", work / "drifted.png")
    env = {**os.environ, "LIKENESS_NO_BOOTSTRAP": "1", "LIKENESS_VENV": sys.prefix}
    p = subprocess.run(["bash", ROOT / "scripts" / "likeness", "score", "--ref", "me.png", "--before", "drifted.png",
                        "--after", "me.png", "-o", "out", "--json", *on(comfy)],
                       cwd=work, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    (row,) = _json(p)["rows"]
    assert row["state"] == "done" and row["cos_after"] == pytest.approx(1.0, abs=1e-6)
    assert (work / "out" / "likeness_results.csv").is_file() and Path(row["report_image"]).parent == work / "out"
    p = subprocess.run(["bash", ROOT / "scripts" / "likeness", "score", "--ref", "nobody.png", "--before", "drifted.png",
                        "--after", "me.png", *on(comfy)], cwd=work, env=env, capture_output=True, text=True)  # fmt: skip
    assert p.returncode == 2 and "nobody.png" in p.stderr and not (work / "outputs").exists()


def _batch_folder(root: Path, n: int) -> Path:
    base = photos.astronaut_head(128)
    for i in range(n):
        d = root / f"pair{i}"
        d.mkdir(parents=True)
        Image.fromarray(base).save(d / "ref_a.png")
        shifted = np.clip(base.astype(int) + 6 * (i + 1), 0, 255).astype(np.uint8)
        Image.fromarray(shifted).save(d / "target.png")
    return root


@pytest.mark.slow
def test_batch_killed_mid_way_resumes_with_nothing_lost_or_repeated(comfy, tmp_path):
    folder = _batch_folder(tmp_path / "pairs", 3)
    out = tmp_path / "out"
    args = ["-m", "likeness.client", "batch", "--folder", folder, "--steps", 16, "--json", "-o", out, *on(comfy)]
    proc = subprocess.Popen([sys.executable, *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)  # fmt: skip
    journal_path = out / "likeness_journal.sqlite"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if journal_path.exists():
            states = [j.state for j in Journal(journal_path).jobs()]
            if states.count("done") >= 1 and "queued" in states:
                break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    killed_at = [j.state for j in Journal(journal_path).jobs()]
    assert "queued" in killed_at, killed_at
    p = cli(*args[2:])
    assert p.returncode == 0, p.stderr[-3000:]
    rows = _json(p)["rows"]
    assert [r["name"] for r in rows] == [f"pair{i}" for i in range(3)] and all(r["state"] == "done" for r in rows)
    jobs = Journal(journal_path).jobs()
    assert all(j.attempts == 1 for j in jobs), [(j.key, j.attempts) for j in jobs]  # nothing queued twice
    for j in jobs:
        on_server = list((comfy.server.output_dir / "likeness").glob(f"{j.key}_*.png"))
        assert len(on_server) == 1, (j.key, on_server)  # nothing run twice, nothing lost
        assert (out / f"{j.spec['target'] and Path(j.spec['target']).parent.name}_enhanced.png").is_file()


@pytest.mark.slow
def test_readme_demo_command_runs_embedded_and_says_stand_in_first_and_last(tmp_path):
    p = cli("demo", "-o", tmp_path, "-q", timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    lines = p.stdout.strip().splitlines()
    assert "STAND-IN" in lines[0] and "STAND-IN" in lines[-1]
    for name in ("demo_enhanced.png", "demo_report.png", "likeness_results.csv", "likeness_results.json"):
        assert (tmp_path / name).is_file(), name
    assert Image.open(tmp_path / "demo_enhanced.png").size == Image.open(EXAMPLES / "target_drifted.png").size
