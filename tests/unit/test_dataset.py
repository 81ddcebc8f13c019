"""``likeness dataset`` (tools/dataset.py + tools/cli.py) on real photos with the real dlib judge.

The input folder mixes the astronaut (crop, mirror, brighter, 1.25x resize), other people (grace_hopper and three
faces cut from insightface's t1.jpg), the whole t1.jpg (six faces), a photo without a face (skimage's coffee), a
blurred and a small astronaut, a broken JPEG and a text file. Measured with dlib HOG: astronaut variants 0.995-1.000
cosine to the identity centre, other people 0.851-0.892 (threshold 0.93); sharpness 178-316 for the variants, 6.7
for the sigma-2 blur; the 0.5x astronaut's face is 44 px.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
from pathlib import Path

import numpy as np
import photos
import pytest
import skimage.data
from likeness.face import DlibJudge, select_faces
from likeness.face.errors import FaceError
from likeness.face.geometry import crop_box
from likeness.tools.cli import main
from likeness.tools.dataset import (
    DatasetOptions,
    choose_bucket,
    identity_centre,
    parse_buckets,
    plan_crop,
    prepare_dataset,
    render_caption,
    sharpness,
    shot_type,
)
from PIL import Image, ImageEnhance, ImageFilter

pytest.importorskip("dlib", reason="the dataset tests use the real dlib judge ([dlib] extra)")

ASTRONAUTS = ("ast.png", "ast_crop.png", "ast_mirror.jpg", "ast_bright.png", "ast_up.png")
EXPECTED_DROPS = {
    "ast_blur.png": "blurred face",
    "ast_small.png": "tiny face",
    "hopper.jpg": "identity outlier",
    "t1_face0.png": "identity outlier",
    "t1_face2.png": "identity outlier",
    "t1_face5.png": "identity outlier",
    "group.jpg": "multiple faces",
    "coffee.png": "no face",
    "broken.jpg": "unreadable",
}
BUCKETS = ((512, 512), (448, 576))
# dlib HOG boxes of three of t1.jpg's faces (1st, 3rd, 6th from the left), measured once; only used to cut them out
T1_FACES = {0: (67, 283, 176, 391), 2: (450, 295, 558, 403), 5: (1118, 283, 1227, 391)}


def run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue()


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """name -> (sha256, mtime_ns) of every file: proves the input folder is never written."""
    return {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())
    }


@pytest.fixture(scope="module")
def judge():
    return DlibJudge()


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory, judge) -> Path:
    d = tmp_path_factory.mktemp("photos")
    ast = photos.astronaut()
    pil = Image.fromarray(ast)
    pil.save(d / "ast.png")
    Image.fromarray(np.ascontiguousarray(ast[20:400, 60:420])).save(d / "ast_crop.png")
    Image.fromarray(np.ascontiguousarray(ast[:, ::-1])).save(d / "ast_mirror.jpg", quality=95)
    ImageEnhance.Brightness(pil).enhance(1.15).save(d / "ast_bright.png")
    pil.resize((640, 640), Image.BICUBIC).save(d / "ast_up.png")
    pil.filter(ImageFilter.GaussianBlur(2)).save(d / "ast_blur.png")
    pil.resize((256, 256), Image.BICUBIC).save(d / "ast_small.png")
    Image.fromarray(photos.grace_hopper()).save(d / "hopper.jpg", quality=95)
    t1 = photos.group_t1()
    for i, box in T1_FACES.items():
        x0, y0, x1, y1 = crop_box(box, t1.shape[:2], context=1.8)
        Image.fromarray(np.ascontiguousarray(t1[max(0, y0) : y1, max(0, x0) : x1])).save(d / f"t1_face{i}.png")
    Image.fromarray(t1).save(d / "group.jpg", quality=92)
    Image.fromarray(skimage.data.coffee()).save(d / "coffee.png")
    (d / "notes.txt").write_text("not an image\n")
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return d


@pytest.fixture(scope="module")
def result(photo_dir, tmp_path_factory):
    before = snapshot(photo_dir)
    out = tmp_path_factory.mktemp("dataset_out") / "set"
    code, stdout = run(
        ["dataset", str(photo_dir), "-o", str(out), "--buckets", "512x512,448x576", "--face-fraction", "0.3",
         "--trigger", "sks woman", "--json"]
    )  # fmt: skip
    assert code == 0, stdout
    with open(out / "decisions.csv", newline="", encoding="utf-8") as f:
        rows = {r["file"]: r for r in csv.DictReader(f)}
    return {"out": out, "json": json.loads(stdout), "rows": rows, "before": before, "after": snapshot(photo_dir)}


def test_input_files_are_never_modified(result, photo_dir):
    assert result["after"] == result["before"]
    assert set(result["before"]) == {p.name for p in photo_dir.iterdir()}  # nothing added or removed


def test_keeps_the_astronaut_and_drops_the_rest_for_the_stated_reason(result):
    rows = result["rows"]
    assert "notes.txt" not in rows  # not an image: skipped, not a decision
    assert len(rows) == len(ASTRONAUTS) + len(EXPECTED_DROPS)
    for name in ASTRONAUTS:
        assert rows[name]["status"] == "kept", (name, rows[name]["reason"], rows[name]["detail"])
    for name, reason in EXPECTED_DROPS.items():
        assert (rows[name]["status"], rows[name]["reason"]) == ("dropped", reason), rows[name]["detail"]
        assert rows[name]["detail"]
    assert int(rows["group.jpg"]["faces"]) >= 5
    assert float(rows["ast_small.png"]["face_px"]) < 64
    assert float(rows["ast_blur.png"]["sharpness"]) < 15 < min(float(rows[n]["sharpness"]) for n in ASTRONAUTS)
    s = result["json"]
    assert s["judge"] == "dlib-resnet-v1 (hog)" and s["kept"] == len(ASTRONAUTS)
    assert s["dropped"]["identity outlier"] == 4 and s["min_similarity"] == pytest.approx(0.93)
    assert all(r["judge"] == "dlib-resnet-v1 (hog)" for r in rows.values())


def test_identity_cosines_are_to_the_centre_of_the_kept_faces(result, photo_dir, judge):
    rows = result["rows"]
    units = {}
    for name in (*ASTRONAUTS, "hopper.jpg", "t1_face0.png", "t1_face2.png", "t1_face5.png"):
        rec = select_faces(judge.detect_embed(np.asarray(Image.open(photo_dir / name).convert("RGB"))), "largest")[0]
        units[name] = rec.embedding / np.linalg.norm(rec.embedding)
    centre = np.mean([units[n] for n in ASTRONAUTS], axis=0)
    centre /= np.linalg.norm(centre)
    for name, u in units.items():
        assert float(rows[name]["cosine_to_centre"]) == pytest.approx(float(u @ centre), abs=1e-6), name
    same = [float(rows[n]["cosine_to_centre"]) for n in ASTRONAUTS]
    other = [float(rows[n]["cosine_to_centre"]) for n in units if n not in ASTRONAUTS]
    assert min(same) > 0.98 and max(other) < 0.90  # measured 0.995-1.000 vs 0.851-0.892


def test_training_folder_holds_image_and_caption_pairs(result):
    train = result["out"] / "train"
    stems = {Path(n).stem for n in ASTRONAUTS}
    assert {p.name for p in train.iterdir()} == {f"{s}.png" for s in stems} | {f"{s}.txt" for s in stems}
    for s in stems:
        with Image.open(train / f"{s}.png") as im:
            assert im.size in BUCKETS
        caption = (train / f"{s}.txt").read_text(encoding="utf-8")
        assert caption == render_caption("a {shot} photo of {trigger}", "sks woman", "portrait") + "\n"
    with Image.open(result["out"] / "contact_sheet.png") as sheet:
        assert sheet.width > 1000 and sheet.height > 400  # 14 thumbnails, 6 per row
    assert (result["out"] / "summary.json").is_file()


def test_faces_land_where_they_were_placed(result, judge):
    """Detect the face again in every written crop: centre at (0.5, 0.4), height 0.3 of the crop."""
    for name in ASTRONAUTS:
        row = result["rows"][name]
        img = np.asarray(Image.open(result["out"] / row["output"]).convert("RGB"))
        x0, y0, x1, y1 = select_faces(judge.detect_embed(img), "largest")[0].box
        h, w = img.shape[:2]
        fx, fy = (x0 + x1) / 2 / w, (y0 + y1) / 2 / h
        want_x, want_y = (0.5, 0.4) if row["clamped"] == "false" else map(float, row["face_pos"].split())
        assert abs(fx - want_x) < 0.04 and abs(fy - want_y) < 0.04, (name, fx, fy)
        assert 0.25 < (y1 - y0) / h < 0.36, name
    assert result["rows"]["ast.png"]["clamped"] == "false"


def test_output_rules(photo_dir, result, tmp_path):
    before = snapshot(photo_dir)
    assert run(["dataset", str(photo_dir), "-o", str(photo_dir / "out")])[0] == 2  # inside the input
    assert run(["dataset", str(photo_dir), "-o", str(result["out"])])[0] == 2  # not empty
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.me").write_text("x")
    assert run(["dataset", str(photo_dir), "-o", str(other), "--overwrite"])[0] == 2  # not our output
    assert snapshot(photo_dir) == before and (other / "keep.me").exists()


def test_overwrite_replaces_an_earlier_output(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(photos.astronaut()).save(src / "one.png")
    out = tmp_path / "out"
    assert run(["dataset", str(src), "-o", str(out), "--buckets", "512x512"])[0] == 0
    (src / "one.png").rename(src / "two.png")
    assert run(["dataset", str(src), "-o", str(out), "--buckets", "512x512"])[0] == 2
    assert run(["dataset", str(src), "-o", str(out), "--buckets", "512x512", "--overwrite"])[0] == 0
    assert sorted(p.name for p in (out / "train").iterdir()) == ["two.png", "two.txt"]


def test_a_captioner_fills_the_caption_field(tmp_path, judge):
    class Captioner:  # stand-in with face.caption's interface (Florence-2 itself is not run in tests)
        def __init__(self):
            self.seen = []

        def caption(self, images, task="caption"):
            self.seen += [(np.asarray(i).shape, task) for i in images]
            return ["  a woman in an orange  suit "] * len(images)

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(photos.astronaut()).save(src / "a.png")
    cap = Captioner()
    opts = DatasetOptions(buckets=((512, 512),), trigger="sks woman")
    res = prepare_dataset(src, tmp_path / "out", judge, opts, captioner=cap)
    assert cap.seen == [((512, 512, 3), "caption")]  # the crop the trainer sees, with the brief's task
    assert (tmp_path / "out/train/a.txt").read_text() == "sks woman, a woman in an orange suit\n"
    assert res.kept[0].caption == "sks woman, a woman in an orange suit"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--template", "{trigger} {oops}"], "unknown fields"),
        (["--template", "{trigger}, {caption}"], "no captioner"),
        (["--florence2", "{tmp}"], "--caption florence2"),
        (["--caption", "florence2"], "needs --florence2"),
        (["--buckets", "1000x1004"], "multiple of 8"),
        (["--face-y", "1.5"], "within the crop"),
        (["--judge", "insightface", "--insightface-dir", "{tmp}/nope"], "nope"),
    ],
)
def test_bad_options_exit_before_any_work(extra, message, tmp_path, capsys, caplog):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(photos.astronaut()).save(src / "a.png")
    code, _ = run(
        ["dataset", str(src), "-o", str(tmp_path / "out")] + [e.replace("{tmp}", str(tmp_path)) for e in extra]
    )
    assert code == (3 if "insightface" in extra else 2)
    assert message in capsys.readouterr().err + caplog.text
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------- pure pieces


def test_plan_crop_by_hand():
    # 1000x800 image, face box 100 px high centred at (500, 300), square bucket, face 1/4 of the crop height:
    # crop 400x400 with the centre at (0.5, 0.4) -> x0 = 500 - 200, y0 = 300 - 160
    box, clamped = plan_crop((1000, 800), (450, 250, 550, 350), (512, 512), face_fraction=0.25)
    assert box == pytest.approx((300, 140, 700, 540)) and not clamped
    # largest square that fits: 800x800; centred on x=500 -> 100..900, y pushed back inside from 300-320 to 0
    box, clamped = plan_crop((1000, 800), (450, 250, 550, 350), (512, 512))
    assert box == pytest.approx((100, 0, 900, 800)) and clamped
    # portrait bucket 896x1216 in a landscape image: height-limited, width 800 * 896/1216
    box, _ = plan_crop((1000, 800), (450, 250, 550, 350), (896, 1216))
    assert box[3] - box[1] == pytest.approx(800) and box[2] - box[0] == pytest.approx(800 * 896 / 1216)


def test_buckets_and_shots():
    assert parse_buckets("1024x1024, 896X1216") == ((1024, 1024), (896, 1216))
    with pytest.raises(FaceError, match="WIDTHxHEIGHT"):
        parse_buckets("1024")
    b = ((1024, 1024), (896, 1216), (1216, 896))
    assert choose_bucket(3000, 4000, b) == (896, 1216)
    assert choose_bucket(4000, 3000, b) == (1216, 896)
    assert choose_bucket(1000, 1050, b) == (1024, 1024)
    assert [shot_type(f) for f in (0.5, 0.3, 0.15, 0.05)] == ["close-up", "portrait", "upper body", "full body"]
    assert (
        render_caption("{trigger},  {caption} ", "ohwx man", "portrait", " a man smiling ") == "ohwx man, a man smiling"
    )


def test_sharpness_drops_with_blur():
    ast = photos.astronaut()
    box = (175, 76, 266, 167)  # the astronaut's dlib face box
    blurred = [
        sharpness(np.asarray(Image.fromarray(ast).filter(ImageFilter.GaussianBlur(s))), box) for s in (0.5, 1, 2)
    ]
    assert sharpness(ast, box) > blurred[0] > blurred[1] > blurred[2]
    assert sharpness(ast, (600, 600, 700, 700)) == 0.0  # outside the image


def test_identity_centre_ignores_a_minority_of_other_people():
    rng = np.random.default_rng(0)
    person, other = np.eye(8)[0], np.eye(8)[1]
    same = [person + 0.05 * rng.standard_normal(8) for _ in range(3)]
    second = [other + 0.05 * rng.standard_normal(8) for _ in range(2)]
    centre, cos = identity_centre(same + second, min_similarity=0.9)
    assert centre @ person > 0.99 and math.isclose(float(np.linalg.norm(centre)), 1.0)
    assert all(c > 0.95 for c in cos[:3]) and all(c < 0.2 for c in cos[3:])
    # a plain mean of all five sits between the two people (cos ~3/sqrt(13) = 0.83 to the person): with it,
    # every photo of the person would fall under 0.9 and be dropped
    mean = np.mean([v / np.linalg.norm(v) for v in same + second], axis=0)
    assert mean @ person / np.linalg.norm(mean) < 0.9
