"""Enhancement report (face/report.py): identity change and preservation outside the face, hand-checked."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from likeness.face.errors import NoFaceError
from likeness.face.report import box_mask, enhancement_report, format_report, side_by_side


def rand(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


E1 = np.array([1.0, 0.0, 0.0])
E2 = np.array([0.0, 1.0, 0.0])
HALF = np.array([1.0, 1.0, 0.0])  # cos to E1 = 1/sqrt(2)


def test_identical_images_give_ssim_one_and_psnr_inf() -> None:
    img = rand(0, (40, 48, 3))
    rep = enhancement_report([E1], E1, E1, img, img.clone())
    assert rep["psnr_outside"] == math.inf and rep["psnr_identical"] is True
    assert rep["ssim_outside"] == pytest.approx(1.0, abs=1e-12)
    assert rep["cos_before"] == pytest.approx(1.0) and rep["delta_id"] == pytest.approx(0.0)
    assert rep["mask_source"] == "none: whole frame" and rep["mask_coverage"] == 0.0


def test_delta_sign_follows_the_reference() -> None:
    img = rand(1, (32, 32, 3))
    better = enhancement_report([E1], HALF, E1, img, img)
    assert better["cos_before"] == pytest.approx(1 / math.sqrt(2))
    assert better["cos_after"] == pytest.approx(1.0)
    assert better["delta_id"] == pytest.approx(1.0 - 1 / math.sqrt(2))  # 0.2929 > 0: improved
    worse = enhancement_report([E1], E1, E2, img, img)
    assert worse["delta_id"] == pytest.approx(-1.0)  # cos 1 -> 0: identity lost


def test_references_are_averaged_and_renormalised() -> None:
    img = rand(2, (32, 32, 3))
    # mean of unit E1 and unit (2 * E2) is (0.5, 0.5, 0) -> unit (1, 1, 0)/sqrt(2): cos to E1 = 0.7071
    rep = enhancement_report([E1, 2.0 * E2], E1, HALF, img, img)
    assert rep["cos_before"] == pytest.approx(1 / math.sqrt(2))
    assert rep["cos_after"] == pytest.approx(1.0)


def test_missing_face_is_nan_never_zero_or_one() -> None:
    img = rand(3, (32, 32, 3))
    rep = enhancement_report([E1], None, E1, img, img)
    assert rep["no_face_before"] is True and rep["no_face_after"] is False
    assert math.isnan(rep["cos_before"]) and math.isnan(rep["delta_id"])
    assert rep["cos_after"] == pytest.approx(1.0)
    assert format_report(rep)[1] == "before: no face"
    with pytest.raises(NoFaceError):
        enhancement_report([None], E1, E1, img, img)


def test_only_pixels_outside_the_mask_are_scored() -> None:
    a = rand(4, (48, 64, 3))
    b = a.clone()
    b[10:30, 20:40] = rand(5, (20, 20, 3))  # the "face" changed
    mask = torch.zeros(48, 64)
    mask[10:30, 20:40] = 1.0
    rep = enhancement_report([E1], E1, E1, a, b, mask)
    assert rep["mask_source"] == "input" and rep["psnr_outside"] == math.inf
    assert rep["mask_coverage"] == pytest.approx(400 / (48 * 64))
    whole = enhancement_report([E1], E1, E1, a, b)
    assert math.isfinite(whole["psnr_outside"]) and whole["ssim_outside"] < 0.9


def test_face_boxes_scaled_1_3_are_the_default_mask() -> None:
    # box 20x20 centred at (30, 20) -> scaled 1.3x: 26x26, x 17..43, y 7..33
    m = box_mask([(20.0, 10.0, 40.0, 30.0), None], 48, 64)
    assert m is not None and int(m.sum()) == 26 * 26
    assert m[7, 17] == 1 and m[6, 17] == 0 and m[7, 16] == 0 and m[32, 42] == 1 and m[33, 42] == 0
    assert box_mask([None, None], 48, 64) is None
    a = rand(6, (48, 64, 3))
    b = a.clone()
    b[10:30, 20:40] = 0.0  # changed only inside the box
    rep = enhancement_report([E1], E1, E1, a, b, before_box=(20.0, 10.0, 40.0, 30.0))
    assert rep["mask_source"] == "face boxes x1.3" and rep["psnr_identical"] is True


def test_size_mismatch_names_both_sizes() -> None:
    with pytest.raises(ValueError, match=r"before is 32x16 but after is 32x20"):
        enhancement_report([E1], E1, E1, rand(7, (16, 32, 3)), rand(7, (20, 32, 3)))


def test_side_by_side_resizes_to_one_height() -> None:
    ref = (rand(8, (100, 50, 3)).numpy() * 255).astype(np.uint8)
    before = rand(9, (60, 80, 3))
    out = side_by_side(ref, before, before.clone(), ("reference", "before", "after"), (None, (10, 10, 30, 30), None))
    assert out.dtype == np.uint8 and out.shape == (60, 30 + 80 + 80, 3)
