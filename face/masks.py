"""Paste masks: a feathered ellipse, and feathering of any mask by distance inside it."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# --------------------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------------------


def _inside_distance(inside: torch.Tensor, cap: int) -> torch.Tensor:
    """Euclidean distance (pixel centres) from each inside pixel to the nearest outside one.

    Everything beyond the array counts as outside, so a mask touching the crop border still fades
    out before it. Exact up to ``cap``; larger distances come back as some value > ``cap``. Two
    passes: column distance by cumulative scans, then a min over horizontal offsets |k| <= cap of
    g(x + k)^2 + k^2, which costs O(cap) whole-array ops instead of a Python loop per row.
    """
    B, H, W = inside.shape
    outside = ~inside
    idx = torch.arange(H, device=inside.device).view(1, H, 1).expand(B, H, W)
    above = torch.where(outside, idx, torch.full_like(idx, -1)).cummax(dim=1).values
    below = torch.where(outside, idx, torch.full_like(idx, H)).flip(1).cummin(dim=1).values.flip(1)
    g = torch.minimum(idx - above, below - idx).clamp(max=cap + 1).to(torch.float32)
    gp = F.pad(g, (cap, cap), value=0.0)  # columns beyond the array are outside
    best = g * g
    for k in range(1, cap + 1):
        kk = float(k * k)
        best = torch.minimum(best, gp[..., cap + k : cap + k + W] ** 2 + kk)
        best = torch.minimum(best, gp[..., cap - k : cap - k + W] ** 2 + kk)
    return best.sqrt()


def feather_mask(mask: torch.Tensor, feather_px: float, threshold: float = 0.5) -> torch.Tensor:
    """Binarise ``mask`` at ``threshold``, then fade it out over ``feather_px`` pixels inside its edge.

    Falloff: smoothstep t^2 (3 - 2t) of t = clamp((d - 0.5) / feather_px, 0, 1), where d is the
    Euclidean distance from a pixel centre to the nearest outside pixel centre (the array border
    counts as outside), so d - 0.5 is the distance to the mask's edge. The result is exactly 1 where
    d >= feather_px + 0.5, exactly 0 on every outside pixel, only smoothstep(0.5 / feather_px) on
    the rim (a negligible step where the mask meets the crop border), and
    never larger than the binarised input: feathering eats into the mask instead of spilling out,
    which is what keeps the area around the face untouched. feather_px <= 0 returns the binary mask.
    Shape (H, W) or (B, H, W) in, same shape out (float32).
    """
    m = torch.as_tensor(mask)
    if m.ndim not in (2, 3):
        raise ValueError(f"mask must be (H, W) or (B, H, W), got shape {tuple(m.shape)}")
    squeeze = m.ndim == 2
    inside = (m[None] if squeeze else m) >= threshold
    if feather_px <= 0:
        out = inside.to(torch.float32)
    else:
        d = _inside_distance(inside, int(math.ceil(feather_px + 0.5)))
        t = ((d - 0.5) / float(feather_px)).clamp(0.0, 1.0)
        out = t * t * (3.0 - 2.0 * t)
    return out[0] if squeeze else out


def ellipse_mask(
    h: int,
    w: int,
    feather_px: float = 16,
    scale: float | tuple[float, float] = 0.9,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Feathered ellipse (h, w) centred in the crop: the default paste mask for a face crop.

    The hard ellipse has semi-axes scale_w * w / 2 and scale_h * h / 2 (``scale`` is one float or
    (scale_h, scale_w)); ``feather_mask`` then fades it inwards, so the mask is exactly 0 on and
    outside the ellipse and exactly 1 deeper than ``feather_px`` inside it.
    """
    s_h, s_w = (float(scale), float(scale)) if isinstance(scale, (int, float)) else (float(scale[0]), float(scale[1]))
    if h < 1 or w < 1 or s_h <= 0 or s_w <= 0:
        raise ValueError(f"ellipse_mask needs h, w >= 1 and scale > 0, got h={h} w={w} scale={scale}")
    ys = (torch.arange(h, dtype=torch.float64, device=device) + 0.5 - h / 2.0) / (s_h * h / 2.0)
    xs = (torch.arange(w, dtype=torch.float64, device=device) + 0.5 - w / 2.0) / (s_w * w / 2.0)
    inside = (ys[:, None] ** 2 + xs[None, :] ** 2) <= 1.0
    return feather_mask(inside.to(torch.float32), feather_px)


