"""Region-level similarity (face/regions.py): masks from BiSeNet class ids and the masked-region SSIM score.

The BiSeNet weights available to tests are random, so the parsing network cannot prove anything about real
faces. Region plumbing is therefore tested on hand-made label maps, and the score on real photos uses a stand-in
parser that always returns one fixed label map drawn around the FFHQ template points (the aligned faces put
eyes, nose and mouth there), so what is measured there does not depend on random weights. The random BiSeNet
is only run end to end to prove the file-to-score path.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import photos
import pytest
import torch
import torch.nn as nn
from likeness.face import DlibJudge, select_faces
from likeness.face.align import FFHQ_TEMPLATE_512, align_face
from likeness.face.errors import FaceError
from likeness.face.parsing import load_bisenet, parse_face
from likeness.face.regions import (
    REGION_NAMES,
    AlignedFace,
    align_and_parse,
    compare_regions,
    region_masks,
    region_similarity,
)
from PIL import Image, ImageEnhance, ImageFilter

pytest.importorskip("dlib", reason="the real-photo tests use the dlib judge ([dlib] extra)")


def hand_labels() -> np.ndarray:
    """64x64 map: skin everywhere in the middle, then one rectangle per part (ids as in face/parsing.py)."""
    lab = np.zeros((64, 64), np.int64)
    lab[4:60, 4:60] = 1  # skin
    lab[12:15, 10:22] = 2  # l_brow
    lab[12:15, 42:54] = 3  # r_brow
    lab[18:22, 10:22] = 4  # l_eye
    lab[18:22, 42:54] = 5  # r_eye
    lab[17:23, 30:34] = 6  # eyeglasses bridge: not an eye
    lab[24:36, 28:36] = 10  # nose
    lab[42:44, 20:44] = 11  # mouth (inner)
    lab[40:42, 20:44] = 12  # upper lip
    lab[44:47, 20:44] = 13  # lower lip
    lab[0:4, :] = 17  # hair
    return lab


def rand_image(seed: int, size: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).random((size, size, 3)).astype(np.float32)


def test_region_masks_follow_the_celebamask_ids():
    lab = hand_labels()
    m = region_masks(lab)
    assert set(m) == set(REGION_NAMES)
    # pixel counts by hand from the rectangles above
    assert m["brows"].sum() == 2 * 3 * 12
    assert m["eyes"].sum() == 2 * 4 * 12
    assert m["nose"].sum() == 12 * 8
    assert m["mouth"].sum() == 7 * 24
    assert m["eyes"][19, 31] == False and lab[19, 31] == 6  # noqa: E712 - glasses stay out of "eyes"
    assert not m["face"][1, 10]  # hair is not face
    union = m["eyes"] | m["brows"] | m["nose"] | m["mouth"] | m["skin"]
    assert np.array_equal(m["face"], union)
    assert m["skin"].sum() == 56 * 56 - 72 - 96 - 24 - 96 - 168  # the square less every other part and the glasses


def test_identical_faces_score_one_and_an_absent_region_is_nan():
    lab = hand_labels()
    lab[lab == 2] = 1
    lab[lab == 3] = 1  # no brows in either face
    img = rand_image(0)
    scores = region_similarity(img, img.copy(), lab, lab.copy())
    for name in ("eyes", "nose", "mouth", "skin", "face"):
        assert scores[name].ssim == pytest.approx(1.0, abs=1e-12), name
        assert scores[name].iou == 1.0
    assert math.isnan(scores["brows"].ssim) and math.isnan(scores["brows"].iou) and scores["brows"].pixels == 0


def test_exposure_and_contrast_changes_do_not_count():
    lab = hand_labels()
    img = rand_image(1)
    darker = 0.6 * img + 0.1  # same affine change on every channel = the same change of luma
    scores = region_similarity(img, darker, lab, lab)
    for name in REGION_NAMES:
        assert scores[name].ssim == pytest.approx(1.0, abs=1e-9), name


def test_a_change_inside_the_mouth_lowers_the_mouth_score_most():
    lab = hand_labels()
    img = rand_image(2)
    changed = img.copy()
    mouth = region_masks(lab)["mouth"]
    changed[mouth] = np.random.default_rng(3).random((int(mouth.sum()), 3)).astype(np.float32)
    scores = region_similarity(img, changed, lab, lab)
    assert scores["mouth"].ssim < 0.5
    # the eyes and brows are more than 5 px (the SSIM window radius) above the mouth: only the global luma
    # matching moves them, by a hair
    assert scores["eyes"].ssim > 0.99 and scores["brows"].ssim > 0.99
    assert scores["face"].ssim < scores["eyes"].ssim


def test_iou_is_mask_overlap_and_the_score_covers_the_union():
    ref = hand_labels()
    moved = hand_labels()
    moved[40:47, 20:44] = 1  # mouth moved down by 4 rows
    moved[44:46, 20:44] = 12
    moved[46:48, 20:44] = 11
    moved[48:51, 20:44] = 13
    img = rand_image(4)
    s = region_similarity(img, img, ref, moved)
    # rows 40..46 vs 44..50, 24 columns: intersection 3 rows, union 11 rows
    assert s["mouth"].iou == pytest.approx(3 / 11)
    assert s["mouth"].pixels == 11 * 24
    assert s["mouth"].ssim == pytest.approx(1.0, abs=1e-12)  # same pixels: the mask moved, not the image
    assert s["eyes"].iou == 1.0


def test_several_references_are_averaged_where_they_have_the_region():
    lab = hand_labels()
    no_brows = lab.copy()
    no_brows[(no_brows == 2) | (no_brows == 3)] = 1
    img = rand_image(5)
    ref_a, ref_b = AlignedFace(rand_image(6), lab), AlignedFace(img * 0.5 + rand_image(7) * 0.5, no_brows)
    face = AlignedFace(img, no_brows)
    out = compare_regions([ref_a, ref_b], face)
    a = region_similarity(ref_a.image, img, lab, no_brows)
    b = region_similarity(ref_b.image, img, no_brows, no_brows)
    assert out["eyes"].ssim == pytest.approx((a["eyes"].ssim + b["eyes"].ssim) / 2)
    assert out["brows"].iou == pytest.approx(a["brows"].iou)  # only ref_a has brows: b's NaN is skipped
    assert a["brows"].iou == 0.0  # the face has none: the union is ref_a's brows alone
    assert all(math.isnan(v.ssim) for v in compare_regions([], face).values())


def test_bad_inputs_are_typed_errors():
    lab = hand_labels()
    with pytest.raises(FaceError, match="share one grid"):
        region_similarity(rand_image(0), rand_image(0, 48), lab, lab)
    with pytest.raises(FaceError, match="integer class ids"):
        region_similarity(rand_image(0), rand_image(0), lab.astype(np.float32), lab)
    with pytest.raises(FaceError, match=r"\(H, W\)"):
        region_masks(np.zeros((2, 3, 4, 5), np.int64))


# ---------------------------------------------------------------------------------------- real photos


@functools.lru_cache(maxsize=4)
def template_labels(size: int = 512) -> np.ndarray:
    """Ellipses around the FFHQ 5-point template: where an aligned face has its parts (drawn by eye)."""
    s = size / 512
    t = FFHQ_TEMPLATE_512 * s
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    lab = np.zeros((size, size), np.int64)

    def ellipse(c, rx, ry, v):
        lab[((xx - c[0]) / rx) ** 2 + ((yy - c[1]) / ry) ** 2 <= 1] = v

    ellipse((256 * s, 290 * s), 150 * s, 195 * s, 1)
    ellipse(t[0] + [0, -32 * s], 36 * s, 9 * s, 2)
    ellipse(t[1] + [0, -32 * s], 36 * s, 9 * s, 3)
    ellipse(t[0], 26 * s, 11 * s, 4)
    ellipse(t[1], 26 * s, 11 * s, 5)
    ellipse(t[2] + [0, -22 * s], 20 * s, 38 * s, 10)
    mouth = (t[3] + t[4]) / 2
    ellipse(mouth, 62 * s, 22 * s, 12)
    lab[(lab == 12) & (yy > mouth[1])] = 13
    ellipse(mouth, 45 * s, 5 * s, 11)
    return lab


class TemplateParser(nn.Module):
    """Stand-in parser: one-hot logits of ``template_labels`` whatever the input (not a trained model)."""

    def __init__(self):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))  # parse_face reads the device from the parameters

    def forward(self, x):
        lab = torch.from_numpy(template_labels(x.shape[-1]).copy())
        return nn.functional.one_hot(lab, 19).permute(2, 0, 1).float()[None].repeat(x.shape[0], 1, 1, 1)


@pytest.fixture(scope="module")
def judge():
    return DlibJudge()


@pytest.fixture(scope="module")
def aligned(judge):
    ast = photos.astronaut()
    pil = Image.fromarray(ast)
    t1 = photos.group_t1()
    imgs = {
        "astronaut": ast,
        "crop": np.ascontiguousarray(ast[20:400, 60:420]),
        "brighter": np.asarray(ImageEnhance.Brightness(pil).enhance(1.15)),
        "resized": np.asarray(pil.resize((640, 640), Image.BICUBIC)),
        "blurred": np.asarray(pil.filter(ImageFilter.GaussianBlur(2))),
        "grace_hopper": photos.grace_hopper(),
    }
    parser = TemplateParser()
    out = {}
    for k, img in imgs.items():
        rec = select_faces(judge.detect_embed(img), "largest")[0]
        out[k] = align_and_parse(img, rec.landmarks5, parser)
    # three of t1's faces, cut out first (dlib boxes measured once) so only one face per image is embedded
    for i, (x0, y0, x1, y1) in enumerate(((67, 283, 176, 391), (450, 295, 558, 403), (1118, 283, 1227, 391))):
        cut = np.ascontiguousarray(t1[y0 - 60 : y1 + 60, x0 - 60 : x1 + 60])
        rec = select_faces(judge.detect_embed(cut), "largest")[0]
        out[f"t1_{i}"] = align_and_parse(cut, rec.landmarks5, parser)
    return out


def test_real_photos_same_person_scores_above_other_people(aligned):
    ref = aligned["astronaut"]
    score = {k: compare_regions([ref], f) for k, f in aligned.items()}
    for name in REGION_NAMES:
        assert score["astronaut"][name].ssim == pytest.approx(1.0, abs=1e-12)
        assert score["crop"][name].ssim > 0.99  # the same face pixels, found at another position
        assert score["brighter"][name].ssim > 0.97  # exposure does not count
    same = [score[k]["face"].ssim for k in ("crop", "brighter", "resized")]
    others = [score[k]["face"].ssim for k in ("grace_hopper", "t1_0", "t1_1", "t1_2")]
    # measured: same person 0.95-1.0, other people 0.32-0.48 (face region)
    assert min(same) > 0.9 > 0.6 > max(others)
    # a blurred copy of the same photo drops below the clean resized copy: the score sees detail, not identity
    assert score["blurred"]["face"].ssim < score["resized"]["face"].ssim - 0.1
    assert score["blurred"]["eyes"].ssim < 0.8


def test_random_bisenet_runs_from_the_weights_to_the_score(judge):
    from likeness.standins.facexlib_weights import random_bisenet_state_dict

    model = load_bisenet(random_bisenet_state_dict(seed=0))  # the file path is covered by test_eval's --parsing run
    ast = photos.astronaut()
    rec = select_faces(judge.detect_embed(ast), "largest")[0]
    face = align_and_parse(ast, rec.landmarks5, model, size=256)  # 256 px: the same path, 4x less work
    assert face.image.shape == (256, 256, 3) and face.labels.shape == (256, 256)
    assert face.labels.dtype == np.int64 and face.labels.min() >= 0 and face.labels.max() <= 18
    # the labels are BiSeNet's argmax on the aligned face, computed here independently
    ref_aligned, _ = align_face(ast.astype(np.float32) / 255.0, rec.landmarks5, size=256)
    labels = parse_face(model, torch.from_numpy(ref_aligned).permute(2, 0, 1)[None])[0].numpy()
    assert np.array_equal(face.labels, labels)
    np.testing.assert_allclose(face.image, ref_aligned, atol=1e-6)
    scores = compare_regions([face], face)
    present = [n for n in REGION_NAMES if scores[n].pixels > 0 and not math.isnan(scores[n].ssim)]
    assert present, "the random parser labelled none of the regions"
    for n in present:
        assert scores[n].ssim == pytest.approx(1.0, abs=1e-12) and scores[n].iou == 1.0
