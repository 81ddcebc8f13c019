"""``likeness eval`` (tools/evaluation.py, tools/reporting.py, tools/cli.py) on real photos with the real dlib judge.

Every number in the CSV is recomputed here independently, the way the Face Embed Distance and Enhancement
Report nodes compute it (judge -> select_faces("largest", 0) -> face_embed_distance / enhancement_report), so a
disagreement between the CLI and the nodes fails these tests.

Photos: the astronaut (reference set: original, mirror, 1.25x resize), a degraded copy (the face box x1.3
down- and up-sampled 4x: dlib cosine 0.958 to the reference) and its restoration (the original face pasted back:
0.999), grace_hopper (0.883) and a noise image (no face).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import photos
import pytest
import torch
import torch.nn as nn
from likeness.face import DlibJudge, face_embed_distance, select_faces
from likeness.face.errors import NoFaceError
from likeness.face.regions import REGION_NAMES, compare_regions
from likeness.face.report import enhancement_report
from likeness.tools.cli import main
from likeness.tools.evaluation import FaceCache, discover, score_items, summarize
from PIL import Image, ImageEnhance

pytest.importorskip("dlib", reason="the eval tests use the real dlib judge ([dlib] extra)")


def run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue()


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def num(cell: str) -> float:
    return math.nan if cell == "" else float(cell)


def face_box(img: np.ndarray, judge) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = select_faces(judge.detect_embed(img), "largest")[0].box
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * 0.65, (y1 - y0) * 0.65
    return int(cx - hw), int(cy - hh), int(cx + hw), int(cy + hh)


@pytest.fixture(scope="module")
def judge():
    return DlibJudge()


@pytest.fixture(scope="module")
def folder(tmp_path_factory, judge) -> Path:
    root = tmp_path_factory.mktemp("eval_in")
    for d in ("reference", "before", "after", "generated/lora", "generated/base"):
        (root / d).mkdir(parents=True)
    ast = photos.astronaut()
    pil = Image.fromarray(ast)
    pil.save(root / "reference/ast.png")
    Image.fromarray(np.ascontiguousarray(ast[:, ::-1])).save(root / "reference/ast_mirror.png")
    pil.resize((640, 640), Image.BICUBIC).save(root / "reference/ast_up.jpg", quality=95)
    a, b, c, d = face_box(ast, judge)
    degraded = ast.copy()
    patch = Image.fromarray(ast[b:d, a:c])
    small = patch.resize((patch.width // 4, patch.height // 4), Image.BILINEAR)
    degraded[b:d, a:c] = np.asarray(small.resize(patch.size, Image.BILINEAR))
    restored = degraded.copy()
    restored[b:d, a:c] = ast[b:d, a:c]
    Image.fromarray(degraded).save(root / "before/restore.png")
    Image.fromarray(restored).save(root / "after/restore.png")
    Image.fromarray(restored).save(root / "before/worsen.png")
    Image.fromarray(degraded).save(root / "after/worsen.png")
    ImageEnhance.Brightness(pil).enhance(1.1).save(root / "generated/lora/a.png")
    Image.fromarray(np.ascontiguousarray(ast[20:400, 60:420])).save(root / "generated/lora/b.png")
    Image.fromarray(photos.grace_hopper()).save(root / "generated/base/hopper.png")
    noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    Image.fromarray(noise).save(root / "generated/base/noise.png")
    return root


@pytest.fixture(scope="module")
def result(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval_out")
    code, stdout = run(["eval", str(folder), "-o", str(out), "--user-threshold", "0.95", "--json"])
    assert code == 0, stdout
    rows = read_csv(out / "scores.csv")
    return {"out": out, "json": json.loads(stdout), "rows": {(r["kind"], r["group"], r["name"]): r for r in rows}}


_RECORDS: dict[str, object] = {}


def record(judge, path: Path):
    """What the nodes do for one image: the judge's faces, the largest one (memoised per file for speed)."""
    key = str(path)
    if key not in _RECORDS:
        rec = select_faces(judge.detect_embed(np.asarray(Image.open(path).convert("RGB"))), "largest", 0)
        _RECORDS[key] = rec[0] if rec else None
    return _RECORDS[key]


def embed(judge, path: Path):
    rec = record(judge, path)
    return (rec.embedding, rec.box) if rec is not None else (None, None)


def test_csv_equals_face_embed_distance_and_enhancement_report(result, folder, judge):
    refs = [embed(judge, folder / "reference" / n)[0] for n in ("ast.png", "ast_mirror.png", "ast_up.jpg")]
    thr = judge.thresholds["cosine"]
    rows = result["rows"]
    for group, name in (("lora", "a"), ("lora", "b"), ("base", "hopper"), ("base", "noise")):
        emb, _ = embed(judge, folder / "generated" / group / f"{name}.png")
        want = face_embed_distance(refs, [emb], "cosine", thr, normalize_inputs=judge.normalize_embeddings)[0]
        got = rows[("generated", group, name)]
        assert got["judge"] == judge.name == "dlib-resnet-v1 (hog)"
        assert got["no_face"] == ("true" if want.no_face else "false")
        for col, val in (
            ("distance", want.distance),
            ("normalized", want.normalized),
            ("cosine", want.cosine_similarity),
        ):
            if math.isnan(val):
                assert got[col] == ""
            else:
                assert num(got[col]) == pytest.approx(val, rel=1e-12, abs=1e-15), (name, col)
    for name in ("restore", "worsen"):
        b_emb, b_box = embed(judge, folder / "before" / f"{name}.png")
        a_emb, a_box = embed(judge, folder / "after" / f"{name}.png")
        as_float = [
            torch.from_numpy(np.array(Image.open(folder / d / f"{name}.png").convert("RGB"))).float() / 255
            for d in ("before", "after")
        ]
        rep = enhancement_report(refs, b_emb, a_emb, *as_float, before_box=b_box, after_box=a_box)
        fed = face_embed_distance(refs, [a_emb, b_emb], "cosine", thr, normalize_inputs=judge.normalize_embeddings)
        got = rows[("pair", "pairs", name)]
        assert num(got["delta_id"]) == pytest.approx(rep["delta_id"], rel=1e-12)
        assert num(got["ssim_outside"]) == pytest.approx(rep["ssim_outside"], rel=1e-12)
        assert num(got["psnr_outside"]) == rep["psnr_outside"] == math.inf  # only the face box changed
        assert num(got["cosine"]) == pytest.approx(fed[0].cosine_similarity, rel=1e-12)
        assert num(got["cosine_before"]) == pytest.approx(fed[1].cosine_similarity, rel=1e-12)
        # with the cosine metric, FED's cosine and the report's cos_after use the same reference
        assert num(got["cosine"]) == pytest.approx(rep["cos_after"], rel=1e-12)


def test_delta_id_has_the_right_sign(result):
    restore, worsen = result["rows"][("pair", "pairs", "restore")], result["rows"][("pair", "pairs", "worsen")]
    # measured: degraded 0.958, restored 0.999 -> dID +0.041
    assert num(restore["delta_id"]) > 0.02 and num(restore["cosine"]) > num(restore["cosine_before"])
    assert num(worsen["delta_id"]) == pytest.approx(-num(restore["delta_id"]), abs=1e-12)
    assert result["json"]["groups"]["pairs"]["pairs"]["improved_rate"] == 0.5


def test_no_face_is_flagged_never_scored(result):
    noise = result["rows"][("generated", "base", "noise")]
    assert noise["no_face"] == "true" and noise["cosine"] == "" and noise["same_person"] == "false"
    base = result["json"]["groups"]["base"]
    assert base["no_face_rate"] == 0.5 and base["n_face"] == 1
    assert base["same_person_rate"] == 0.0  # grace_hopper is another person, noise has no face


def test_real_vs_real_baseline_is_leave_one_out(result, folder, judge):
    names = ("ast.png", "ast_mirror.png", "ast_up.jpg")
    embs = {n: embed(judge, folder / "reference" / n)[0] for n in names}
    for n in names:
        rest = [embs[m] for m in names if m != n]
        want = face_embed_distance(rest, [embs[n]], "cosine", judge.thresholds["cosine"])[0]
        got = result["rows"][("baseline", "baseline", Path(n).stem)]
        assert num(got["cosine"]) == pytest.approx(want.cosine_similarity, rel=1e-12)
        assert got["reference"].count(";") == 1 and n not in got["reference"]
    base = result["json"]["baseline"]
    assert base["n"] == 3 and base["cosine"]["min"] > 0.99  # same photo resampled/mirrored
    # lora images (cos 0.998/0.999) reach the baseline's lowest cosine (0.992); grace_hopper does not
    assert result["json"]["groups"]["lora"]["within_baseline_rate"] == 1.0
    assert result["json"]["groups"]["base"]["within_baseline_rate"] == 0.0


def test_summary_matches_the_csv(result):
    rows = [r for r in result["rows"].values() if r["kind"] != "baseline"]
    s = result["json"]
    assert s["judge"] == "dlib-resnet-v1 (hog)" and s["threshold"] == 0.07 and s["user_threshold"] == 0.95
    assert list(s["groups"]) == ["pairs", "base", "lora"]
    faced = [num(r["cosine"]) for r in rows if r["no_face"] == "false"]
    assert s["all"]["cosine"]["mean"] == pytest.approx(np.mean(faced), rel=1e-12)
    assert s["all"]["cosine"]["median"] == pytest.approx(np.median(faced), rel=1e-12)
    assert s["all"]["no_face_rate"] == pytest.approx(1 / 6)
    # >= 0.95: pairs 0.999/0.958, lora 0.998/0.999 yes; hopper 0.883 no; noise has no face -> 4 of 6
    assert s["all"]["above_user_threshold_rate"] == pytest.approx(4 / 6)
    assert s["groups"]["lora"]["same_person_rate"] == 1.0
    assert s["timing"]["images"] == 11 and s["timing"]["seconds"] > 0


def test_report_files_are_self_contained(result):
    out = result["out"]
    for name in ("figure.png", "grid.png"):
        with Image.open(out / name) as im:
            assert im.width >= 600 and im.height >= 200
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == 2
    assert "http://" not in page and "https://" not in page
    assert 'href="scores.csv"' in page and "dlib-resnet-v1 (hog)" in page
    assert "masked-region structural similarity" in page


def test_summarize_by_hand():
    def row(group, cos, same, no_face=False, kind="generated"):
        return {"kind": kind, "group": group, "no_face": no_face, "cosine": cos, "normalized": 1 - cos,
                "same_person": same, "judge": "j", "metric": "cosine", "threshold": 0.5}  # fmt: skip

    rows = [row("g", 0.9, True), row("g", 0.8, True), row("g", math.nan, False, True), row("g", 0.5, False)]
    rows += [row("baseline", 0.85, True, kind="baseline"), row("baseline", 0.95, True, kind="baseline")]
    s = summarize(rows, user_threshold=0.6)
    g = s["groups"]["g"]
    assert g["n"] == 4 and g["n_face"] == 3 and g["no_face_rate"] == 0.25
    assert g["cosine"]["mean"] == pytest.approx((0.9 + 0.8 + 0.5) / 3)
    assert g["cosine"]["median"] == pytest.approx(0.8)
    assert g["cosine"]["std"] == pytest.approx(
        math.sqrt(((0.9 - 2.2 / 3) ** 2 + (0.8 - 2.2 / 3) ** 2 + (0.5 - 2.2 / 3) ** 2) / 3)
    )
    assert g["same_person_rate"] == 0.5  # 2 of 4: the no-face image counts as a miss
    assert g["above_user_threshold_rate"] == 0.5  # 0.9 and 0.8 of 4
    assert g["within_baseline_rate"] == 0.25  # only 0.9 >= the baseline's min 0.85
    assert s["baseline"]["cosine"]["mean"] == pytest.approx(0.9)


def test_csv_input_with_relative_paths_and_the_euclidean_metric(folder, judge, tmp_path):
    table = folder / "runs.csv"  # relative paths are read from the CSV's folder
    table.write_text(
        "reference,before,after,group\n"
        "reference/ast.png;reference/ast_mirror.png,before/restore.png,after/restore.png,\n"
        "reference/ast.png;reference/ast_mirror.png,,generated/base/hopper.png,mine\n",
        encoding="utf-8",
    )
    items = discover(table)
    assert [(i.kind, i.group, i.name) for i in items] == [("pair", "pairs", "restore"), ("generated", "mine", "hopper")]
    code, _ = run(["eval", str(table), "-o", str(tmp_path / "out"), "--metric", "euclidean", "--baseline", "off"])
    table.unlink()
    assert code == 0
    rows = read_csv(tmp_path / "out" / "scores.csv")
    assert [r["kind"] for r in rows] == ["pair", "generated"]
    assert rows[1]["image"] == "generated/base/hopper.png" and rows[0]["threshold"] == "0.6"
    refs = [embed(judge, folder / "reference" / n)[0] for n in ("ast.png", "ast_mirror.png")]
    b, a, h = (
        embed(judge, folder / p)[0] for p in ("before/restore.png", "after/restore.png", "generated/base/hopper.png")
    )
    # euclidean: the raw mean of dlib's raw descriptors, as the node (normalize_embeddings is False for dlib)
    fed = face_embed_distance(refs, [a, b, h], "euclidean", 0.6, normalize_inputs=judge.normalize_embeddings)
    for row, res in ((rows[0], fed[0]), (rows[1], fed[2])):
        assert num(row["distance"]) == pytest.approx(res.distance, rel=1e-12)
        assert num(row["normalized"]) == pytest.approx(res.normalized, rel=1e-12)
        assert num(row["cosine"]) == pytest.approx(res.cosine_similarity, rel=1e-12)
    assert num(rows[0]["distance_before"]) == pytest.approx(fed[1].distance, rel=1e-12)
    # delta ID stays the Enhancement Report's: cosines to the unit-mean reference, whatever the metric
    cos = face_embed_distance(refs, [a, b], "cosine", 0.07)
    assert num(rows[0]["delta_id"]) == pytest.approx(cos[0].cosine_similarity - cos[1].cosine_similarity, rel=1e-9)


class BoxParser(nn.Module):
    """Stand-in parser: the same hand-made label map for every face (one block per region)."""

    def __init__(self):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        h, w = x.shape[-2:]
        lab = torch.zeros((h, w), dtype=torch.int64)
        lab[h // 8 : 7 * h // 8, w // 8 : 7 * w // 8] = 1
        lab[200:215, 160:350] = 2
        lab[225:255, 160:350] = 4
        lab[260:320, 230:280] = 10
        lab[340:390, 190:320] = 12
        return (nn.functional.one_hot(lab, 19).permute(2, 0, 1).float()[None].repeat(x.shape[0], 1, 1, 1),)


def test_region_columns_come_from_compare_regions(folder, judge):
    items = [i for i in discover(folder) if i.group == "lora"]
    cache = FaceCache(judge, parser=BoxParser())
    for p in {*items[0].reference, *(i.image for i in items)}:
        cache._records[p] = record(judge, p)  # reuse the detections made above (speed only)
    rows = score_items(items, cache)
    refs = [cache.aligned(p) for p in items[0].reference]
    for item, row in zip(items, rows):
        want = compare_regions(refs, cache.aligned(item.image))
        for name in REGION_NAMES:
            assert row[f"region_{name}"] == pytest.approx(want[name].ssim, rel=1e-12)
            assert row[f"region_{name}_iou"] == 1.0  # one label map for every face
    assert 0.5 < rows[0]["region_face"] < 1.0  # a brighter copy against the three references


def test_parsing_file_adds_region_columns(folder, tmp_path):
    from likeness.standins.facexlib_weights import write_random_bisenet

    pth = write_random_bisenet(tmp_path / "parsing_bisenet.pth", seed=0)
    (tmp_path / "gen").mkdir()
    Image.open(folder / "generated/lora/a.png").save(tmp_path / "gen/a.png")
    code, out = run(["eval", "--reference", str(folder / "reference/ast.png"), "--generated", str(tmp_path / "gen"),
                     "-o", str(tmp_path / "out"), "--parsing", str(pth)])  # fmt: skip
    assert code == 0, out
    rows = read_csv(tmp_path / "out" / "scores.csv")
    assert len(rows) == 1 and rows[0]["group"] == "gen"
    for name in REGION_NAMES:
        assert f"region_{name}" in rows[0] and f"region_{name}_before" in rows[0]
        for r in rows:
            assert r[f"region_{name}"] == "" or -1.0 <= float(r[f"region_{name}"]) <= 1.0


@pytest.mark.parametrize(
    "argv, code, message",
    [
        (["eval", "{tmp}/missing"], 2, "does not exist"),
        (["eval", "{tmp}"], 2, "no reference folder"),
        (["eval", "--generated", "{tmp}"], 2, "need --reference"),
        (["eval", "{tmp}", "--metric", "manhattan"], 2, "invalid choice"),
        (["eval", "{folder}", "--judge", "insightface"], 2, "--insightface-dir"),
        (["eval", "{folder}", "--judge", "insightface", "--insightface-dir", "{tmp}/buffalo_l"], 3, "buffalo_l"),
        (["eval", "{folder}", "--parsing", "{tmp}/parsing_bisenet.pth"], 3, "parsing_bisenet.pth"),
    ],
)
def test_bad_inputs_exit_with_a_message(argv, code, message, folder, tmp_path, capsys, caplog):
    argv = [a.format(tmp=tmp_path, folder=folder) for a in argv]
    got, _ = run(argv)
    assert got == code
    text = capsys.readouterr().err + caplog.text
    assert message in text


def test_reference_without_face_is_named_or_skipped(tmp_path, folder, judge):
    for d in ("reference", "generated"):
        (tmp_path / d).mkdir()
    Image.open(folder / "reference/ast.png").save(tmp_path / "reference/a.png")
    Image.open(folder / "generated/base/noise.png").save(tmp_path / "reference/b_noise.png")
    Image.open(folder / "generated/lora/a.png").save(tmp_path / "generated/x.png")
    with pytest.raises(NoFaceError, match=r"reference image 1 .*b_noise\.png"):
        score_items(discover(tmp_path), FaceCache(judge))
    code, out = run(["eval", str(tmp_path), "-o", str(tmp_path / "out"), "--reference-without-face", "skip", "--json"])
    assert code == 0 and json.loads(out)["groups"]["generated"]["cosine"]["mean"] > 0.99
    assert json.loads(out)["baseline"] is None  # one reference photo with a face: no real-vs-real spread


def test_the_insightface_backend_is_selectable_and_named(tmp_path, folder):
    """--judge insightface through a stand-in pack (tiny ONNX, not a face model: only the plumbing is real)."""
    pytest.importorskip("onnx")
    from likeness.standins.insightface_onnx import write_tiny_insightface

    pack = write_tiny_insightface(tmp_path / "models" / "tiny_pack", faces=1)
    code, out = run(["eval", "--reference", str(folder / "reference/ast.png"), "--generated", str(folder / "generated/lora"),
                     "-o", str(tmp_path / "out"), "--judge", "insightface", "--insightface-dir", str(pack), "--json"])  # fmt: skip
    assert code == 0, out
    assert json.loads(out)["judge"] == "insightface:tiny_pack"
    rows = read_csv(tmp_path / "out" / "scores.csv")
    assert {r["judge"] for r in rows} == {"insightface:tiny_pack"} and rows[0]["threshold"] == "0.68"


def test_unmatched_pairs_are_named(tmp_path, folder):
    for d in ("reference", "before", "after"):
        (tmp_path / d).mkdir()
    Image.open(folder / "reference/ast.png").save(tmp_path / "reference/ast.png")
    Image.open(folder / "before/restore.png").save(tmp_path / "before/one.png")
    Image.open(folder / "after/restore.png").save(tmp_path / "after/two.png")
    with pytest.raises(ValueError, match=r"unmatched.*one.*two"):
        discover(tmp_path)
