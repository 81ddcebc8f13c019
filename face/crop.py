"""Cut faces out of an image at a working size (optionally eye-aligned), padding past the edges."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from .geometry import PAD_MODES, CropData, _round_half_up, eye_angle

# --------------------------------------------------------------------------------------------------
# Sampling helpers
# --------------------------------------------------------------------------------------------------


def _compute_dtype(t: torch.Tensor) -> torch.dtype:
    # Bicubic/grid_sample are not implemented for half types on every device; float64 stays float64.
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def _as_hwc(image: torch.Tensor, name: str) -> torch.Tensor:
    t = torch.as_tensor(image)
    if t.ndim == 4 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 3:
        raise ValueError(f"{name} must be (H, W, C) or (1, H, W, C), got shape {tuple(t.shape)}")
    return t


def _pad_index(start: int, stop: int, n: int, mode: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Source indices for positions start..stop-1 along an axis of length n, and which are in range.

    Index arithmetic instead of ``F.pad`` because reflect padding there is limited to less than the
    input size, and a corner face can need more padding than that.
    """
    i = torch.arange(start, stop, device=device)
    valid = (i >= 0) & (i < n)
    if mode == "reflect" and n > 1:
        period = 2 * (n - 1)  # d c b | a b c d | c b a: the edge pixel is not repeated
        j = torch.remainder(i, period)
        idx = torch.where(j >= n, period - j, j)
    else:
        idx = i.clamp(0, n - 1)
    return idx, valid


def _extract(image: torch.Tensor, x0: int, y0: int, x1: int, y1: int, mode: str) -> torch.Tensor:
    """image[y0:y1, x0:x1] with the out-of-image part filled by ``mode``."""
    H, W = image.shape[:2]
    ry, vy = _pad_index(y0, y1, H, mode, image.device)
    rx, vx = _pad_index(x0, x1, W, mode, image.device)
    out = image.index_select(0, ry).index_select(1, rx)
    if mode == "constant":
        keep = (vy[:, None] & vx[None, :])[..., None]
        out = torch.where(keep, out, torch.zeros((), dtype=out.dtype, device=out.device))
    return out


def _resize(x: torch.Tensor, hw: tuple[int, int], mode: str = "bicubic") -> torch.Tensor:
    """Resize (H, W, C): antialiased when shrinking either side (no aliasing of skin texture)."""
    h, w = int(hw[0]), int(hw[1])
    if tuple(x.shape[:2]) == (h, w):
        return x
    down = h < x.shape[0] or w < x.shape[1]
    t = x.permute(2, 0, 1)[None]
    t = F.interpolate(t, size=(h, w), mode=mode, align_corners=False, antialias=down)
    return t[0].permute(1, 2, 0)


def _rotation(angle_deg: float) -> tuple[float, float]:
    th = math.radians(angle_deg)
    return math.cos(th), math.sin(th)


def _source_coords(cd: CropData, out_h: int, out_w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Continuous source (X, Y) of every crop pixel centre: box position, then rotation about the centre."""
    x0, y0, x1, y1 = cd.box
    u = (torch.arange(out_w, dtype=torch.float64, device=device) + 0.5) * ((x1 - x0) / out_w) + x0
    v = (torch.arange(out_h, dtype=torch.float64, device=device) + 0.5) * ((y1 - y0) / out_h) + y0
    py, px = torch.meshgrid(v, u, indexing="ij")
    cx, cy = cd.center
    c, s = _rotation(cd.angle)
    dx, dy = px - cx, py - cy
    return cx + c * dx - s * dy, cy + s * dx + c * dy


def _sample_crop(image: torch.Tensor, cd: CropData, out_hw: tuple[int, int]) -> torch.Tensor:
    """Resample the (possibly rotated) box of ``image`` (H, W, C) to ``out_hw``, clamped to [0, 1]."""
    h, w = int(out_hw[0]), int(out_hw[1])
    x0, y0, x1, y1 = cd.box
    if cd.angle == 0.0:
        return _resize(_extract(image, x0, y0, x1, y1, cd.pad_mode), (h, w)).clamp(0.0, 1.0)
    # Rotated: cut an axis-aligned region around the rotated box, resize it to the working scale
    # (antialiased), then rotate at that scale with bicubic grid_sample. grid_sample alone cannot
    # antialias, so a large face would alias if it were sampled straight from the source.
    X, Y = _source_coords(cd, h, w, image.device)
    sy, sx = h / (y1 - y0), w / (x1 - x0)
    margin = 2 + math.ceil(3.0 / min(sx, sy, 1.0))
    rx0 = math.floor(X.min().item()) - margin
    ry0 = math.floor(Y.min().item()) - margin
    rx1 = math.floor(X.max().item()) + 1 + margin
    ry1 = math.floor(Y.max().item()) + 1 + margin
    region = _extract(image, rx0, ry0, rx1, ry1, cd.pad_mode)
    rh, rw = ry1 - ry0, rx1 - rx0
    inter = _resize(region, (max(1, _round_half_up(rh * sy)), max(1, _round_half_up(rw * sx))))
    # Normalised grid_sample coordinates of the resized region: the resize factor cancels out.
    grid = torch.stack((2.0 * (X - rx0) / rw - 1.0, 2.0 * (Y - ry0) / rh - 1.0), dim=-1)[None]
    out = F.grid_sample(
        inter.permute(2, 0, 1)[None],
        grid.to(inter.dtype),
        mode="bicubic",
        padding_mode="border",
        align_corners=False,
    )
    return out[0].permute(1, 2, 0).clamp(0.0, 1.0)


def crop_faces(
    image: torch.Tensor,
    boxes: Sequence[Sequence[float]] | torch.Tensor,
    working: tuple[int, int] = (512, 512),
    pad_mode: str = "edge",
    align_eyes: bool = False,
    landmarks: Sequence[Any] | None = None,
    *,
    det_boxes: Sequence[Sequence[float]] | None = None,
    face_indices: Sequence[int] | None = None,
    image_index: int = 0,
) -> tuple[torch.Tensor, list[CropData]]:
    """Cut each crop box out of one image at the working size; returns (crops (N, h, w, C), records).

    ``boxes`` are crop boxes (see ``crop_box``; non-integers are rounded). Where a box leaves the image
    the missing part is padded with ``pad_mode``. Shrinking is antialiased bicubic, enlarging bicubic,
    and the result is clamped to [0, 1]. With ``align_eyes`` each box is rotated about its centre by
    the eye-line angle of its 5-point landmarks (required then) so the eyes lie on one row.
    ``det_boxes``/``landmarks``/``face_indices``/``image_index`` are recorded in the CropData so the
    paste can be traced back to the detection.
    """
    img = _as_hwc(image, "image")
    if pad_mode not in PAD_MODES:
        raise ValueError(f"pad_mode {pad_mode!r} is not one of {PAD_MODES}")
    if isinstance(boxes, torch.Tensor):
        boxes = boxes.detach().cpu().tolist()
    box_list = [tuple(_round_half_up(float(v)) for v in b) for b in boxes]
    n = len(box_list)
    for name, seq in (("landmarks", landmarks), ("det_boxes", det_boxes), ("face_indices", face_indices)):
        if seq is not None and len(seq) != n:
            raise ValueError(f"{name} has {len(seq)} entries but there are {n} boxes: pass one per box")
    if align_eyes and landmarks is None:
        raise ValueError("align_eyes=True needs landmarks (5 points per face): pass landmarks or align_eyes=False")
    h, w = int(working[0]), int(working[1])
    H, W, C = img.shape
    work = img.to(_compute_dtype(img))
    crops, datas = [], []
    for i, box in enumerate(box_list):
        lm = None if landmarks is None else landmarks[i]
        cd = CropData(
            box=box,
            image_hw=(H, W),
            working_hw=(h, w),
            angle=eye_angle(lm) if align_eyes else 0.0,
            face_index=i if face_indices is None else face_indices[i],
            image_index=image_index,
            det_box=None if det_boxes is None else det_boxes[i],
            landmarks=lm,
            pad_mode=pad_mode,
        )
        crops.append(_sample_crop(work, cd, (h, w)).to(img.dtype))
        datas.append(cd)
    if not crops:
        return img.new_zeros((0, h, w, C)), datas
    return torch.stack(crops), datas


