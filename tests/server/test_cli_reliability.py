"""Nothing lost, nothing run twice, nothing stuck (issue 15), through the ``likeness`` command against the live
stand-in server: duplicate names and later runs keep every output and results row, one bad batch row is
reported with its row number while the rest run, two identical commands at once queue the job once, deleted
job images are regenerated, a copied output folder resumes, a failed job is retried, and SIGINT / SIGTERM stop
the embedded server and remove its temporary folders."""

from __future__ import annotations

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
ENV = {**os.environ, "PYTHONPATH": str(ROOT / ".importroot")}


def cli(*args, timeout=600, env=None):
    return subprocess.run([sys.executable, "-m", "likeness.client", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env or ENV)  # fmt: skip


def on(comfy, *args):
    return ("--server", comfy.server.url, "--standins", "--steps", 2, *args)


def _images(root: Path, n: int) -> list[Path]:
    base = photos.astronaut_head(96)
    paths = [root / "ref.png"]
    Image.fromarray(base).save(paths[0])
    for i in range(n):
        p = root / f"t{i}.png"
        Image.fromarray(np.clip(base.astype(int) + 9 * (i + 1), 0, 255).astype(np.uint8)).save(p)
        paths.append(p)
    return paths


def _runs_on_server(comfy, key: str) -> int:
    return len(list((comfy.server.output_dir / "likeness").glob(f"{key}_*.png")))


def _results(out: Path) -> list[dict]:
    with open(out / "likeness_results.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_duplicate_names_a_bad_row_and_a_later_run_lose_nothing(comfy, tmp_path):
    ref, t0, t1 = _images(tmp_path, 2)
    (tmp_path / "pairs.csv").write_text(
        "\ufeffreference,target,name\n"  # a spreadsheet's UTF-8 BOM
        f"{ref.name},{t0.name},same\n{ref.name},missing.png,other\n{ref.name},{t1.name},same\n"
    )
    out = tmp_path / "out"
    p = cli("batch", "--pairs", tmp_path / "pairs.csv", "-o", out, *on(comfy))
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr[-3000:]
    assert "row 2: target image" in p.stderr and "missing.png" in p.stderr
    first, second = out / "same_enhanced.png", out / "same-2_enhanced.png"
    assert first.is_file() and second.is_file() and first.read_bytes() != second.read_bytes()
    rows = _results(out)
    assert [(r["row"], r["name"], r["state"]) for r in rows] == [("2", "other", "invalid"), ("1", "same", "done"), ("3", "same-2", "done")]
    kept = {p.name: p.read_bytes() for p in out.glob("*.png")}
    # a later run into the same folder, other options: its outputs get new names, every earlier row stays
    p = cli("enhance", "--ref", ref, "--target", t0, "--name", "same", "--seed", 7, "-o", out, *on(comfy))
    assert p.returncode == 0, p.stderr[-3000:]
    assert all((out / name).read_bytes() == data for name, data in kept.items())
    assert (out / "same_enhanced-2.png").is_file()
    assert len(_results(out)) == 4 and len(json.loads((out / "likeness_results.json").read_text())["rows"]) == 4


def _enhance_args(comfy, ref, target, out):
    return ["enhance", "--ref", ref, "--target", target, "-o", out, "--json", *on(comfy)]


def test_two_identical_commands_at_once_queue_the_job_once_then_it_survives_deletion_and_copying(comfy, tmp_path):
    ref, t0 = _images(tmp_path, 1)
    out = tmp_path / "out"
    args = [sys.executable, "-m", "likeness.client", *map(str, _enhance_args(comfy, ref, t0, out))]
    procs = [subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV) for _ in range(2)]
    results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1][-2000:] for r in results]
    (job,) = Journal(out / "likeness_journal.sqlite").jobs()
    assert _runs_on_server(comfy, job.key) == 1 and job.attempts == 1  # queued once
    assert len(_results(out)) == 1 and [r["job"] for r in _results(out)] == [job.key]
    # the hash-named job images deleted: the rerun regenerates them instead of crashing
    for f in (out / "jobs").glob("*.png"):
        f.unlink()
    p = cli(*_enhance_args(comfy, ref, t0, out))
    assert p.returncode == 0 and "running it again" in p.stderr, p.stderr[-3000:]
    assert _runs_on_server(comfy, job.key) == 2 and (out / "t0_enhanced.png").is_file()
    # the output folder copied elsewhere (the old one gone): the copy resumes from its own files, nothing re-run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    shutil.rmtree(out)
    p = cli(*_enhance_args(comfy, ref, t0, copy))
    assert p.returncode == 0, p.stderr[-3000:]
    assert _runs_on_server(comfy, job.key) == 2
    # a job that failed last time is tried again, and the log says why
    Journal(copy / "likeness_journal.sqlite").failed(job.key, "the server lacked the pack (simulated)")
    p = cli(*_enhance_args(comfy, ref, t0, copy))
    assert p.returncode == 0 and "failed last time (the server lacked the pack (simulated)); trying it again" in p.stderr
    assert _runs_on_server(comfy, job.key) == 3


def _pids_with(text: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if text in (d / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_job_stops_the_embedded_server_and_removes_its_folders(tmp_path, sig):
    ref, t0 = _images(tmp_path, 1)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**ENV, "TMPDIR": str(tmp)}
    args = [sys.executable, "-m", "likeness.client", "enhance", "--ref", str(ref), "--target", str(t0), "--standins", "--steps", "200",
            "-o", str(tmp_path / "out")]  # fmt: skip
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline, seen = time.monotonic() + 400, ""
    while time.monotonic() < deadline and proc.poll() is None:
        line = proc.stderr.readline()
        seen += line
        if "] " in line and "s " in line and "step" in line:  # the progress line: the job is running
            break
    assert proc.poll() is None, seen[-3000:]
    server_pids = _pids_with(str(tmp))
    assert server_pids, "the embedded ComfyUI runs from a folder under TMPDIR"
    proc.send_signal(sig)
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, (proc.returncode, rest[-3000:])
    assert "rerun the same command to resume" in rest and "Traceback" not in rest
    time.sleep(1.0)
    assert not [p for p in server_pids if Path(f"/proc/{p}").exists()], "the embedded ComfyUI still runs"
    ours = [p for p in tmp.iterdir() if p.name.startswith("likeness-")]  # (torch may leave its own caches there)
    assert not ours, ours  # the server's base folder and the stand-in models are gone
