"""Preservation metrics outside the face mask: PSNR and SSIM (checked against scikit-image)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from likeness.face.quality import psnr_outside, ssim_outside


def rand(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def face_mask(h: int = 48, w: int = 64) -> torch.Tensor:
    m = torch.zeros(h, w)
    m[12:36, 20:44] = 1.0
    m[11, 20:44] = 0.3  # soft edge: still "inside" (not exactly 0)
    return m


def test_identical_images_give_inf_and_one() -> None:
    a = rand(0, (48, 64, 3))
    assert psnr_outside(a, a.clone(), face_mask()) == math.inf
    assert ssim_outside(a, a.clone(), face_mask()) == pytest.approx(1.0, abs=1e-12)
    assert psnr_outside(a, a.clone()) == math.inf
    assert ssim_outside(a, a.clone(), gray=True) == pytest.approx(1.0, abs=1e-12)


def test_psnr_matches_the_formula_for_known_noise() -> None:
    a = 0.2 + 0.6 * rand(1, (2, 48, 64, 3))
    sign = torch.where(rand(2, (2, 48, 64, 3)) > 0.5, 1.0, -1.0)
    b = a + 0.05 * sign  # |error| = 0.05 everywhere outside -> MSE 0.0025
    m = face_mask()
    b[:, m != 0] = 1.0 - a[:, m != 0]  # wreck the face: must not count
    assert psnr_outside(a, b, m) == pytest.approx(10 * math.log10(1 / 0.0025), abs=1e-4)
    assert psnr_outside(a, b, m, data_range=2.0) == pytest.approx(10 * math.log10(4 / 0.0025), abs=1e-4)
    assert psnr_outside(a, b) < psnr_outside(a, b, m)  # the full frame sees the face damage


def test_psnr_accepts_numpy_and_batched_masks() -> None:
    a = rand(3, (2, 20, 20, 3)).numpy()
    b = a.copy()
    b[1, 0, 0, 0] += 0.1
    m = np.zeros((2, 20, 20), dtype=np.float32)
    m[1, 0, 0] = 1.0
    assert psnr_outside(a, b, m) == math.inf
    assert psnr_outside(a, b) == pytest.approx(10 * math.log10(1 / (0.01 / (2 * 20 * 20 * 3))), abs=1e-3)


def test_metrics_reject_a_mask_with_nothing_outside() -> None:
    a = rand(4, (20, 20, 3))
    with pytest.raises(ValueError):
        psnr_outside(a, a, torch.ones(20, 20))
    with pytest.raises(ValueError):
        ssim_outside(a, a, torch.ones(20, 20))
    with pytest.raises(ValueError):
        psnr_outside(a, a[:10])


@pytest.mark.parametrize("seed", [5, 6])
def test_ssim_matches_skimage_full_frame(seed: int) -> None:
    metrics = pytest.importorskip("skimage.metrics")
    a = rand(seed, (40, 56, 3))
    b = (a + 0.15 * (rand(seed + 100, (40, 56, 3)) - 0.5)).clamp(0, 1)
    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
    ref_rgb = metrics.structural_similarity(a.double().numpy(), b.double().numpy(), channel_axis=-1, **kw)
    ours_rgb = ssim_outside(a, b, torch.zeros(40, 56))
    assert ours_rgb == pytest.approx(ref_rgb, abs=1e-3)
    assert ours_rgb == pytest.approx(ref_rgb, abs=1e-9)  # same window and statistics: equal in fact
    assert 0.3 < ours_rgb < 0.99

    luma = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)
    ga, gb = (a.double() @ luma).numpy(), (b.double() @ luma).numpy()
    ref_gray = metrics.structural_similarity(ga, gb, **kw)
    assert ssim_outside(a, b, gray=True) == pytest.approx(ref_gray, abs=1e-9)


def test_ssim_only_scores_the_outside() -> None:
    a = rand(7, (48, 64, 3))
    m = face_mask()
    b = a.clone()
    b[m != 0] = rand(8, (int((m != 0).sum()), 3))  # change only the face
    full = ssim_outside(a, b)
    near = ssim_outside(a, b, m)
    strict = ssim_outside(a, b, m, margin=5)
    assert full < near < 1.0  # windows touching the face still see it
    assert strict == pytest.approx(1.0, abs=1e-12)  # windows fully outside see identical pixels
    noisy = (b + 0.6 * (rand(9, b.shape) - 0.5)).clamp(0, 1)
    assert ssim_outside(a, noisy, m, margin=5) < 0.95


def test_ssim_rejects_tiny_images() -> None:
    a = rand(10, (8, 30, 3))
    with pytest.raises(ValueError):
        ssim_outside(a, a)
