"""Paste enhanced crops back: the inverse of the crop warp, blended through a feathered mask."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .colour import _match_color
from .crop import _as_hwc, _compute_dtype, _resize, _rotation, _sample_crop, _source_coords
from .geometry import COLOR_MATCH_MODES, CropData
from .masks import ellipse_mask, feather_mask

# --------------------------------------------------------------------------------------------------
# Paste-back
# --------------------------------------------------------------------------------------------------


def _crop_mask(mask: torch.Tensor | None, hw: tuple[int, int], feather_px: float, device: torch.device) -> torch.Tensor:
    h, w = hw
    if mask is None:
        return ellipse_mask(h, w, feather_px, device=device)
    m = torch.as_tensor(mask).to(device=device, dtype=torch.float32)
    if m.ndim == 3 and m.shape[0] == 1:
        m = m[0]
    if m.ndim != 2:
        raise ValueError(f"paste mask must be (h, w) in crop space, got shape {tuple(m.shape)}")
    if tuple(m.shape) != (h, w):
        m = _resize(m[..., None], (h, w), mode="bilinear")[..., 0]
    return feather_mask(m.clamp(0.0, 1.0), feather_px)


def _rotated_region(c_box: torch.Tensor, m_box: torch.Tensor, cd: CropData, hw: tuple[int, int], dt: torch.dtype):
    """Inverse warp of an aligned crop: for each target pixel near the rotated box, its point in the box-sized
    crop. Returns ((ix0, iy0, ix1, iy1), crop region, mask region), or None when the box misses the image."""
    H, W = hw
    x0, y0, x1, y1 = cd.box
    bh, bw = cd.box_hw
    cx, cy = cd.center
    cs, sn = _rotation(cd.angle)
    xs, ys = [], []
    for px, py in ((x0, y0), (x1, y0), (x0, y1), (x1, y1)):
        xs.append(cx + cs * (px - cx) - sn * (py - cy))
        ys.append(cy + sn * (px - cx) + cs * (py - cy))
    ix0, iy0 = max(math.floor(min(xs)) - 1, 0), max(math.floor(min(ys)) - 1, 0)
    ix1, iy1 = min(math.floor(max(xs)) + 2, W), min(math.floor(max(ys)) + 2, H)
    if ix0 >= ix1 or iy0 >= iy1:
        return None
    gx = torch.arange(ix0, ix1, dtype=torch.float64, device=c_box.device) + 0.5 - cx
    gy = torch.arange(iy0, iy1, dtype=torch.float64, device=c_box.device) + 0.5 - cy
    dy, dx = torch.meshgrid(gy, gx, indexing="ij")
    bx = cx + cs * dx + sn * dy - x0  # rotate by -angle back into the unrotated box
    by = cy - sn * dx + cs * dy - y0
    grid = torch.stack((2.0 * bx / bw - 1.0, 2.0 * by / bh - 1.0), dim=-1)[None].to(dt)
    c_reg = F.grid_sample(
        c_box.permute(2, 0, 1)[None], grid, mode="bicubic", padding_mode="border", align_corners=False
    )[0].permute(1, 2, 0)
    m_reg = F.grid_sample(m_box[None, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0, 0]
    return (ix0, iy0, ix1, iy1), c_reg, m_reg


def _paste_one(
    target: torch.Tensor,
    reference: torch.Tensor,
    crop: torch.Tensor,
    cd: CropData,
    mask: torch.Tensor | None,
    feather_px: float,
    color_match: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste into ``target`` (H, W, C); colour statistics come from ``reference`` (the unpasted image)."""
    H, W, C = target.shape
    if (H, W) != cd.image_hw:
        raise ValueError(f"image is {H}x{W} (HxW) but the crop was made from a {cd.image_hw[0]}x{cd.image_hw[1]} image")
    if color_match not in COLOR_MATCH_MODES:
        raise ValueError(f"color_match {color_match!r} is not one of {COLOR_MATCH_MODES}")
    dt = _compute_dtype(target)
    c = _as_hwc(crop, "crop").to(device=target.device, dtype=dt)
    if c.shape[-1] != C:
        raise ValueError(f"crop has {c.shape[-1]} channels but the image has {C}")
    ch, cw = c.shape[:2]  # may differ from working_hw (e.g. an upscaled crop): mapping uses the real size
    m = _crop_mask(mask, (ch, cw), feather_px, target.device).to(dt)
    if color_match != "none":
        ref = _sample_crop(reference.to(dt), cd, (ch, cw))
        X, Y = _source_coords(cd, ch, cw, target.device)
        in_image = ((X >= 0) & (X < W) & (Y >= 0) & (Y < H)).to(dt)  # padding is not real colour
        c = _match_color(c, ref, m * in_image, color_match)

    x0, y0, x1, y1 = cd.box
    bh, bw = cd.box_hw
    full_mask = torch.zeros((H, W), dtype=torch.float32, device=target.device)
    c_box = _resize(c, (bh, bw))
    m_box = _resize(m[..., None], (bh, bw), mode="bilinear")[..., 0]
    if cd.angle == 0.0:
        ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
        if ix0 >= ix1 or iy0 >= iy1:
            return target.clone(), full_mask
        c_reg = c_box[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0]
        m_reg = m_box[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0]
    else:
        region = _rotated_region(c_box, m_box, cd, (H, W), dt)
        if region is None:
            return target.clone(), full_mask
        (ix0, iy0, ix1, iy1), c_reg, m_reg = region
    c_reg = c_reg.clamp(0.0, 1.0)
    m_reg = m_reg.clamp(0.0, 1.0)

    out = target.clone()
    orig = target[iy0:iy1, ix0:ix1]
    m3 = m_reg[..., None]
    blended = (orig.to(dt) * (1.0 - m3) + c_reg * m3).to(target.dtype)
    # where() rather than arithmetic: pixels with mask exactly 0 are copied, never recomputed.
    out[iy0:iy1, ix0:ix1] = torch.where(m3 > 0, blended, orig)
    full_mask[iy0:iy1, ix0:ix1] = m_reg.to(torch.float32)
    return out, full_mask


def paste_back(
    image: torch.Tensor,
    crop: torch.Tensor,
    crop_data: CropData,
    mask: torch.Tensor | None = None,
    feather_px: float = 16,
    color_match: str = "none",
    *,
    return_mask: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Put an enhanced crop back where ``crop_data`` says it came from; returns a new (H, W, C) image.

    The crop (any size; normally the working size) is resized to the box size and, for aligned
    crops, rotated back. ``mask`` is in crop space (h, w); None means ``ellipse_mask``. Either way it
    is feathered by ``feather_px`` crop pixels (see ``feather_mask``: soft masks are binarised at
    0.5 first), warped like the crop, and used to blend. Only the in-image part of the box is
    touched; every pixel whose final mask is exactly 0 is bit-identical to ``image``.
    ``color_match`` ("none", "mean_std", "lab_mean_std") first moves the crop's per-channel
    mean/std onto those of the original crop region under the mask (see ``_match_color``).
    With ``return_mask`` also returns the final (H, W) mask in image space.
    """
    img = _as_hwc(image, "image")
    out, m = _paste_one(img, img, crop, crop_data, mask, feather_px, color_match)
    if torch.as_tensor(image).ndim == 4:
        out, m = out[None], m[None]
    return (out, m) if return_mask else out


def paste_back_many(
    image: torch.Tensor,
    crops: torch.Tensor | Sequence[torch.Tensor],
    crop_datas: Sequence[CropData],
    masks: torch.Tensor | Sequence[torch.Tensor | None] | None = None,
    feather_px: float = 16,
    color_match: str = "none",
    *,
    return_mask: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Paste several crops, in order, into an (H, W, C) image or a (B, H, W, C) batch.

    For a batch each crop goes into ``image[crop_data.image_index]``; for a single (H, W, C) image
    the index is ignored. Later crops are blended over earlier ones where they overlap, and colour
    statistics always come from the original image, not from a face pasted earlier. The returned
    mask (with ``return_mask``) is the per-pixel maximum of the final masks.
    """
    img = torch.as_tensor(image)
    if img.ndim not in (3, 4):
        raise ValueError(f"image must be (H, W, C) or (B, H, W, C), got shape {tuple(img.shape)}")
    crop_list = list(crops)
    for what, t in [("image", img)] + [(f"crop {i}", torch.as_tensor(c)) for i, c in enumerate(crop_list)]:
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise ValueError(
                f"{what} has {bad} NaN/inf values: the node that made it produced invalid pixels (often a VAE "
                "overflowing in fp16: try --fp32-vae); nothing was pasted"
            )
    n = len(crop_datas)
    if len(crop_list) != n:
        raise ValueError(f"got {len(crop_list)} crops but {n} crop_datas: pass one CropData per crop")
    mask_list = [None] * n if masks is None else list(masks)
    if len(mask_list) != n:
        raise ValueError(f"got {len(mask_list)} masks but {n} crops: pass one mask per crop (or None)")
    batched = img.ndim == 4
    out = img.clone()
    views = out if batched else out[None]
    refs = img if batched else img[None]
    total = torch.zeros(views.shape[:3], dtype=torch.float32, device=img.device)
    for crop, cd, m in zip(crop_list, crop_datas, mask_list):
        b = cd.image_index if batched else 0
        if not 0 <= b < views.shape[0]:
            raise ValueError(f"crop_data.image_index {b} is outside the batch of {views.shape[0]} images")
        pasted, fm = _paste_one(views[b], refs[b], crop, cd, m, feather_px, color_match)
        views[b] = pasted
        total[b] = torch.maximum(total[b], fm)
    if not batched:
        total = total[0]
    return (out, total) if return_mask else out
