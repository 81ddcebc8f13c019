"""likeness eval's CSV equals what the nodes report on the same inputs: the score-only workflow (Face Embed
Distance + Enhancement Report, dlib judge) run through the live server on each pair of the README example."""

import csv
import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest
from likeness.client.params import fill
from likeness.client.workflow_format import load_workflow

ROOT = Path(__file__).resolve().parents[2]


def _example(folder: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_eval_example", ROOT / "scripts" / "make_eval_example.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main(str(folder))


def _close(a, b, tol=1e-5):
    if a in ("", None) or b is None:
        return a in ("", None) and b is None
    a = float(a)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return a == pytest.approx(b, abs=tol)


@pytest.mark.slow
def test_eval_csv_equals_the_score_workflow(comfy, tmp_path):
    folder = tmp_path / "example"
    _example(folder)
    out = tmp_path / "eval"
    p = subprocess.run([sys.executable, "-m", "likeness.client", "eval", str(folder), "-o", str(out), "--json"], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    with open(out / "scores.csv") as f:
        rows = {r["name"]: r for r in csv.DictReader(f) if r["kind"] == "pair"}
    assert set(rows) == {"drifted", "pixelated", "swapped"}
    refs = sorted((folder / "reference").glob("*.png"))
    import numpy as np
    from PIL import Image

    ref_names = [comfy.upload(np.asarray(Image.open(r).convert("RGB")), f"evn_{r.name}") for r in refs]
    for name, row in rows.items():
        before = comfy.upload(np.asarray(Image.open(folder / "before" / f"{name}.png").convert("RGB")), f"evn_b_{name}.png")
        after = comfy.upload(np.asarray(Image.open(folder / "after" / f"{name}.png").convert("RGB")), f"evn_a_{name}.png")
        graph = fill(load_workflow("likeness_score"), reference=ref_names, target=before, enhanced=after, judge="dlib (hog)")
        result = comfy.run(graph)
        titles = {k: v["_meta"]["title"] for k, v in graph.items()}
        by_title = {titles[k]: v for k, v in result.outputs.items()}
        rep = by_title["Enhancement report"]["likeness_report"][0]
        after_d = by_title["Distance after"]["likeness_face_distance"][0]
        assert rep["judge"] == row["judge"] == "dlib-resnet-v1 (hog)"
        assert _close(row["cosine"], rep["cos_after"]), (name, row["cosine"], rep["cos_after"])
        assert _close(row["cosine_before"], rep["cos_before"]), (name, row["cosine_before"], rep["cos_before"])
        assert _close(row["delta_id"], rep["delta_id"]), (name, row["delta_id"], rep["delta_id"])
        assert _close(row["distance"], after_d["distance"]), (name, row["distance"], after_d["distance"])
        assert _close(row["ssim_outside"], rep["ssim_outside"], 1e-4), (name, row["ssim_outside"], rep["ssim_outside"])
        psnr = math.inf if rep["psnr_identical"] else rep["psnr_outside"]
        assert _close(row["psnr_outside"], psnr, 1e-3), (name, row["psnr_outside"], psnr)
