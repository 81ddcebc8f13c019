"""Face crop geometry: the crop record, crop boxes, working sizes and the eye angle.

The pixel work lives beside it: crop.py cuts faces out, masks.py builds paste masks, colour.py matches colour,
paste.py puts the enhanced face back; the conventions below hold for all of them.

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

logger = logging.getLogger(__name__)

__all__ = ["COLOR_MATCH_MODES", "PAD_MODES", "CropData", "crop_box", "eye_angle", "working_size"]

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


def eye_angle(landmarks: Any) -> float:
    """Eye-line angle in degrees from landmark 0 (left eye) to landmark 1 (right eye); y points down."""
    pts = _points(landmarks)
    (lx, ly), (rx, ry) = pts[0], pts[1]
    if lx == rx and ly == ry:
        return 0.0
    return math.degrees(math.atan2(ry - ly, rx - lx))


