"""Colour matching of an enhanced crop to the original (mean/std in RGB or CIE Lab), weighted by a mask."""

from __future__ import annotations

import logging

import torch

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# Colour matching
# --------------------------------------------------------------------------------------------------

_RGB_TO_XYZ = torch.tensor(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ],
    dtype=torch.float64,
)
_XYZ_TO_RGB = torch.linalg.inv(_RGB_TO_XYZ)
_WHITE_D65 = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)
_LAB_EPS = (6.0 / 29.0) ** 3


def _srgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] (..., 3) to CIELAB (D65), float64."""
    c = rgb.to(torch.float64).clamp(0.0, 1.0)
    lin = torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = lin @ _RGB_TO_XYZ.to(lin.device).T / _WHITE_D65.to(lin.device)
    f = torch.where(xyz > _LAB_EPS, xyz.clamp(min=_LAB_EPS) ** (1.0 / 3.0), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    L = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return torch.stack((L, a, b), dim=-1)


def _lab_to_srgb(lab: torch.Tensor) -> torch.Tensor:
    """CIELAB (D65) (..., 3) to sRGB clamped to [0, 1], float64."""
    fy = (lab[..., 0] + 16.0) / 116.0
    f = torch.stack((fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0), dim=-1)
    xyz = torch.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * _WHITE_D65.to(lab.device)
    lin = (xyz @ _XYZ_TO_RGB.to(lab.device).T).clamp(min=0.0)
    c = torch.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)
    return c.clamp(0.0, 1.0)


def _match_color(crop: torch.Tensor, ref: torch.Tensor, weights: torch.Tensor, mode: str) -> torch.Tensor:
    """Per-channel mean/std transfer of ``crop`` onto ``ref``'s statistics, weighted by ``weights``.

    out_c = (x_c - mu_crop_c) * (sigma_ref_c / sigma_crop_c) + mu_ref_c, with mu and sigma the
    weighted mean and (population) standard deviation over the mask, per channel, in RGB
    ("mean_std") or CIELAB ("lab_mean_std"). A channel with sigma_crop below a floor (flat
    colour) only gets its mean shifted, since its gain would be meaningless.
    """
    wsum = weights.sum()
    if wsum <= 1e-6:
        logger.warning("colour match skipped: the mask has no weight inside the image")
        return crop
    lab = mode == "lab_mean_std"
    if lab and crop.shape[-1] != 3:
        raise ValueError(f"color_match='lab_mean_std' needs RGB crops (3 channels), got {crop.shape[-1]}")
    x = _srgb_to_lab(crop) if lab else crop.to(torch.float64)
    r = _srgb_to_lab(ref) if lab else ref.to(torch.float64)
    wt = weights.to(torch.float64)[..., None]
    wsum = wt.sum()
    mu_x = (x * wt).sum((0, 1)) / wsum
    mu_r = (r * wt).sum((0, 1)) / wsum
    sd_x = (((x - mu_x) ** 2) * wt).sum((0, 1)).div(wsum).sqrt()
    sd_r = (((r - mu_r) ** 2) * wt).sum((0, 1)).div(wsum).sqrt()
    floor = 1e-2 if lab else 1e-4
    gain = torch.where(sd_x > floor, sd_r / sd_x.clamp(min=floor), torch.ones_like(sd_x))
    out = (x - mu_x) * gain + mu_r
    out = _lab_to_srgb(out) if lab else out.clamp(0.0, 1.0)
    return out.to(crop.dtype)


