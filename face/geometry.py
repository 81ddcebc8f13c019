"""Face crop and paste-back geometry: cut a face out at a working size, put the enhanced face back.

Conventions
-----------
* Images are float tensors (H, W, C) or (B, H, W, C) in [0, 1]; masks (H, W) or (B, H, W) in [0, 1].
* Boxes are (x0, y0, x1, y1) in source pixels with x1/y1 exclusive: a box covers columns x0..x1-1.
  A crop box may extend beyond the image; that part is padding ("pad, do not shift"), so the face
  stays centred in the crop whatever its position in the frame.
* Continuous coordinates put pixel (row i, column j) over [j, j+1) x [i, i+1); its centre is at
  (j + 0.5, i + 0.5). Every resize and warp here uses that convention (``align_corners=False``), so a
  crop followed by a paste lands on the same pixels.
* Rotation: ``eye_angle`` is atan2(y_right - y_left, x_right - x_left) in degrees, measured in image
  coordinates (y points down). Positive means the eye line descends to the right, i.e. on screen the
  face is tilted clockwise. An aligned crop samples the box rotated by that angle about its centre,
  so the crop's +x axis runs along the eye line and both eyes land on one row; ``paste_back``
  applies the inverse rotation.
* Masks: "exactly 0" means untouched. ``paste_back`` copies every pixel whose final mask is exactly 0
  from the input tensor and blends only the others, so the rest of the image stays bit-identical.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

__all__ = [
    "COLOR_MATCH_MODES",
    "PAD_MODES",
    "CropData",
    "crop_box",
    "crop_faces",
    "ellipse_mask",
    "eye_angle",
    "feather_mask",
    "paste_back",
    "paste_back_many",
    "working_size",
]

PAD_MODES = ("edge", "constant", "reflect")
COLOR_MATCH_MODES = ("none", "mean_std", "lab_mean_std")


# --------------------------------------------------------------------------------------------------
# Crop record
# --------------------------------------------------------------------------------------------------


def _int_tuple(values: Any, n: int, name: str) -> tuple[int, ...]:
    out = tuple(values)
    if len(out) != n:
        raise ValueError(f"{name} must have {n} values, got {len(out)}: {out!r}")
    ints = []
    for v in out:
        f = float(v)
        if not f.is_integer():
            raise ValueError(f"{name} must hold whole pixel values, got {out!r}: round it first")
        ints.append(int(f))
    return tuple(ints)


def _points(landmarks: Any) -> tuple[tuple[float, float], ...]:
    """Landmarks of any array-like type as a tuple of (x, y) floats (JSON-friendly, hashable)."""
    if isinstance(landmarks, torch.Tensor):
        landmarks = landmarks.detach().cpu().tolist()
    elif hasattr(landmarks, "tolist"):
        landmarks = landmarks.tolist()
    pts = tuple((float(p[0]), float(p[1])) for p in landmarks)
    if len(pts) < 2:
        raise ValueError(f"landmarks need at least the two eye points (x, y), got {len(pts)} points")
    return pts


@dataclass(frozen=True)
class CropData:
    """Everything needed to undo a crop exactly, so paste-back never has to guess.

    box         integer crop box (x0, y0, x1, y1) in source pixels; may extend beyond the image.
    image_hw    (H, W) of the source image.
    working_hw  (h, w) of the crop the box was resampled to.
    scale       (h / box_h, w / box_w): working pixels per source pixel; filled in when omitted.
    angle       eye-line rotation in degrees (see the module docstring for the sign); 0 = none.
    center      (cx, cy) rotation centre in continuous source coordinates; the box centre when omitted.
    face_index  which detected face this crop came from.
    image_index which image of the source batch it came from (used by ``paste_back_many``).
    det_box     the detector's face box (floats) the crop box was built from, if known.
    landmarks   the detector's landmarks ((x, y), ...) if known (5-point order: left eye, right eye,
                nose, left mouth corner, right mouth corner; "left" = smaller x in a frontal face).
    pad_mode    how the out-of-image part was filled: "edge", "constant" (zeros) or "reflect".
    """

    box: tuple[int, int, int, int]
    image_hw: tuple[int, int]
    working_hw: tuple[int, int]
    scale: tuple[float, float] | None = None
    angle: float = 0.0
    center: tuple[float, float] | None = None
    face_index: int = 0
    image_index: int = 0
    det_box: tuple[float, float, float, float] | None = None
    landmarks: tuple[tuple[float, float], ...] | None = None
    pad_mode: str = "edge"

    def __post_init__(self) -> None:
        put = object.__setattr__  # frozen: normalise the fields once, here
        box = _int_tuple(self.box, 4, "CropData.box")
        if box[2] <= box[0] or box[3] <= box[1]:
            raise ValueError(f"CropData.box {box} is empty: need x1 > x0 and y1 > y0")
        image_hw = _int_tuple(self.image_hw, 2, "CropData.image_hw")
        working_hw = _int_tuple(self.working_hw, 2, "CropData.working_hw")
        if min(image_hw) < 1 or min(working_hw) < 1:
            raise ValueError(f"CropData sizes must be positive, got image_hw={image_hw} working_hw={working_hw}")
        if self.pad_mode not in PAD_MODES:
            raise ValueError(f"CropData.pad_mode {self.pad_mode!r} is not one of {PAD_MODES}")
        put(self, "box", box)
        put(self, "image_hw", image_hw)
        put(self, "working_hw", working_hw)
        bh, bw = box[3] - box[1], box[2] - box[0]
        if self.scale is None:
            put(self, "scale", (working_hw[0] / bh, working_hw[1] / bw))
        else:
            put(self, "scale", tuple(float(s) for s in self.scale))
        if self.center is None:
            put(self, "center", ((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0))
        else:
            put(self, "center", (float(self.center[0]), float(self.center[1])))
        put(self, "angle", float(self.angle))
        put(self, "face_index", int(self.face_index))
        put(self, "image_index", int(self.image_index))
        if self.det_box is not None:
            put(self, "det_box", tuple(float(v) for v in self.det_box))
        if self.landmarks is not None:
            put(self, "landmarks", _points(self.landmarks))

    @property
    def box_hw(self) -> tuple[int, int]:
        return self.box[3] - self.box[1], self.box[2] - self.box[0]

    def to_dict(self) -> dict[str, Any]:
        """Plain lists/floats/ints only, so ``json.dumps`` works and ``from_dict`` restores an equal object."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "landmarks" and v is not None:
                v = [list(p) for p in v]
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CropData:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            logger.debug("CropData.from_dict ignores unknown keys %s", unknown)
        return cls(**{k: v for k, v in data.items() if k in known})


# --------------------------------------------------------------------------------------------------
# Box and size arithmetic
# --------------------------------------------------------------------------------------------------


def _round_half_up(v: float) -> int:
    # Python's round() is banker's rounding, which would make box placement depend on parity.
    return int(math.floor(v + 0.5))


def crop_box(
    face_box: Sequence[float],
    image_hw: tuple[int, int],
    context: float = 1.5,
    aspect: float = 1.0,
) -> tuple[int, int, int, int]:
    """Integer crop box centred on the face; never shifted to fit the image (the caller pads).

    The face box is scaled about its centre by ``context`` and its shorter side (relative to
    ``aspect`` = width / height) grown until the box has that aspect. Shifting a border face inwards
    would move it off-centre in the crop and change what the generator sees, so the box is kept
    centred and may extend beyond the image. ``image_hw`` is only used to reject a face box that
    lies entirely outside the image.
    """
    x0, y0, x1, y1 = (float(v) for v in face_box)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"face_box {tuple(face_box)} is empty: need x1 > x0 and y1 > y0")
    if context <= 0 or aspect <= 0:
        raise ValueError(f"context ({context}) and aspect ({aspect}) must be > 0")
    H, W = int(image_hw[0]), int(image_hw[1])
    if x1 <= 0 or y1 <= 0 or x0 >= W or y0 >= H:
        raise ValueError(f"face_box {tuple(face_box)} lies outside the {W}x{H} image: check the detector output")
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    bw, bh = (x1 - x0) * context, (y1 - y0) * context
    if bw / bh < aspect:
        bw = bh * aspect
    else:
        bh = bw / aspect
    # Round the shorter side, then derive the other from it so the integer box keeps the aspect.
    if aspect >= 1.0:
        h = max(1, _round_half_up(bh))
        w = max(1, _round_half_up(h * aspect))
    else:
        w = max(1, _round_half_up(bw))
        h = max(1, _round_half_up(w / aspect))
    bx0 = _round_half_up(cx - w / 2.0)
    by0 = _round_half_up(cy - h / 2.0)
    return bx0, by0, bx0 + w, by0 + h


def working_size(aspect: float = 1.0, size: int = 512, multiple: int = 16) -> tuple[int, int]:
    """(h, w) with the long side ``size`` and both sides multiples of ``multiple``.

    Latent models downsample by 8 (and Flux packs 2x2 latents), so sides that are multiples of 16
    avoid a silent resize inside the sampler. ``aspect`` is width / height.
    """
    if aspect <= 0 or size <= 0 or multiple <= 0:
        raise ValueError(f"aspect ({aspect}), size ({size}) and multiple ({multiple}) must be > 0")

    def snap(v: float) -> int:
        return max(multiple, _round_half_up(v / multiple) * multiple)

    long_side = snap(size)
    if aspect >= 1.0:
        return snap(long_side / aspect), long_side
    return long_side, snap(long_side * aspect)


def auto_working_size(boxes: Sequence[Sequence[float]], low: int = 768, high: int = 1024, multiple: int = 64) -> int:
    """The smallest multiple of ``multiple`` covering the longest side of the crop boxes, clamped to [low, high].

    Sampling cost follows the working size, not the face: a 300 px face sampled at 1024 pays for 1024. A face
    smaller than ``low`` is still sampled at ``low`` (Flux needs enough tokens for a face); a larger one is not
    upscaled past its own pixels until ``high``.
    """
    if low <= 0 or high < low or multiple <= 0:
        raise ValueError(f"auto working size bounds must satisfy 0 < low ({low}) <= high ({high})")
    longest = max((max(b[2] - b[0], b[3] - b[1]) for b in boxes), default=high)
    return int(min(max(math.ceil(longest / multiple) * multiple, low), high))


def eye_angle(landmarks: Any) -> float:
    """Eye-line angle in degrees from landmark 0 (left eye) to landmark 1 (right eye); y points down."""
    pts = _points(landmarks)
    (lx, ly), (rx, ry) = pts[0], pts[1]
    if lx == rx and ly == ry:
        return 0.0
    return math.degrees(math.atan2(ry - ly, rx - lx))


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
        # Inverse warp: for each target pixel near the rotated box, find its point in the box-sized crop.
        cx, cy = cd.center
        cs, sn = _rotation(cd.angle)
        xs, ys = [], []
        for px, py in ((x0, y0), (x1, y0), (x0, y1), (x1, y1)):
            xs.append(cx + cs * (px - cx) - sn * (py - cy))
            ys.append(cy + sn * (px - cx) + cs * (py - cy))
        ix0, iy0 = max(math.floor(min(xs)) - 1, 0), max(math.floor(min(ys)) - 1, 0)
        ix1, iy1 = min(math.floor(max(xs)) + 2, W), min(math.floor(max(ys)) + 2, H)
        if ix0 >= ix1 or iy0 >= iy1:
            return target.clone(), full_mask
        gx = torch.arange(ix0, ix1, dtype=torch.float64, device=target.device) + 0.5 - cx
        gy = torch.arange(iy0, iy1, dtype=torch.float64, device=target.device) + 0.5 - cy
        dy, dx = torch.meshgrid(gy, gx, indexing="ij")
        bx = cx + cs * dx + sn * dy - x0  # rotate by -angle back into the unrotated box
        by = cy - sn * dx + cs * dy - y0
        grid = torch.stack((2.0 * bx / bw - 1.0, 2.0 * by / bh - 1.0), dim=-1)[None].to(dt)
        c_reg = F.grid_sample(
            c_box.permute(2, 0, 1)[None], grid, mode="bicubic", padding_mode="border", align_corners=False
        )[0].permute(1, 2, 0)
        m_reg = F.grid_sample(m_box[None, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0, 0]
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
