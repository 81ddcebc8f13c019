"""Region-level face similarity: eyes, brows, nose, mouth and skin scored apart, next to the identity score.

Idea taken from ConsistentID (Huang et al., 2024), which splits faces into BiSeNet parsing regions because a
single global identity vector hides which part of a face drifted. Their FGIS metric compares DINO features
of the regions; we have no DINO here, so this module measures something simpler and says so:

**Masked-region structural similarity.** Both faces are aligned with the same 5-point similarity transform
onto the FFHQ 512x512 template (``face.align``) and parsed with BiSeNet (``face.parsing``, CelebAMask-HQ
classes). The image's luma (ITU-R BT.601) is moved onto the reference's luma mean and standard deviation over
the face, so exposure and contrast differences do not count. The score of a region is the mean of the SSIM map
(Wang et al. 2004, ``face.quality.ssim_map``: 11x11 Gaussian window, sigma 1.5) over the pixels that belong
to that region in either face (the union of the two masks: a mouth that moved is scored where it was and where
it is now). 1.0 means pixel-identical structure in that region; it is a pixel measure, not an identity model:
it drops with pose, expression and lighting as well as with identity, so read it next to the same person's
real-vs-real baseline. ``iou`` is the overlap of the two region masks (intersection / union): it measures
whether the part has the same shape and place relative to the eyes and nose.

Every aligned face and label map is computed once per image and cached by the caller (``AlignedFace``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn

from .align import align_face
from .errors import FaceError
from .judge import to_rgb_uint8
from .parsing import parse_face
from .quality import ssim_map

logger = logging.getLogger(__name__)

__all__ = [
    "ALIGNED_SIZE",
    "REGIONS",
    "REGION_NAMES",
    "AlignedFace",
    "RegionScore",
    "align_and_parse",
    "compare_regions",
    "region_columns",
    "region_masks",
    "region_similarity",
]

ALIGNED_SIZE = 512

# BiSeNet / CelebAMask-HQ class ids (face/parsing.py): 1 skin, 2/3 brows, 4/5 eyes, 10 nose, 11 mouth
# (inner), 12/13 lips. Eyeglasses (6) are left out on purpose: glasses are not part of the person's face.
REGIONS: dict[str, tuple[int, ...]] = {
    "eyes": (4, 5),
    "brows": (2, 3),
    "nose": (10,),
    "mouth": (11, 12, 13),
    "skin": (1,),
}
# "face" is the union of the five regions: the whole-face pixel score next to the per-part ones.
REGION_NAMES: tuple[str, ...] = (*REGIONS, "face")

_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601
_SSIM_RADIUS = 5  # ssim_map is 'valid' filtered with an 11x11 window: map pixel (i, j) is image pixel (i+5, j+5)


@dataclass(frozen=True)
class AlignedFace:
    """A face aligned to the 512 template and its BiSeNet class ids: ``image`` (S, S, 3) float32 in [0, 1],
    ``labels`` (S, S) int64."""

    image: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class RegionScore:
    """``ssim``: mean SSIM over the union of the region in both faces (NaN when neither face has it);
    ``iou``: mask intersection over union (NaN likewise); ``pixels``: size of the union."""

    ssim: float
    iou: float
    pixels: int


def _labels(labels: Any) -> np.ndarray:
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    arr = np.asarray(labels)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise FaceError(f"labels must be an (H, W) map of BiSeNet class ids, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise FaceError(f"labels must hold integer class ids, got dtype {arr.dtype}")
    return arr


def region_masks(labels: Any) -> dict[str, np.ndarray]:
    """Boolean (H, W) mask per region name (``REGION_NAMES``) from a BiSeNet class-id map."""
    lab = _labels(labels)
    out = {name: np.isin(lab, ids) for name, ids in REGIONS.items()}
    out["face"] = np.logical_or.reduce([out[name] for name in REGIONS])
    return out


def _luma(rgb: np.ndarray) -> np.ndarray:
    arr = np.asarray(rgb, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise FaceError(f"aligned faces must be (H, W, 3) RGB in [0, 1], got shape {arr.shape}")
    return arr @ np.asarray(_LUMA)


def _match_luma(y: np.ndarray, y_ref: np.ndarray, sel: np.ndarray, sel_ref: np.ndarray) -> np.ndarray:
    """Move ``y``'s mean and std over ``sel`` onto ``y_ref``'s over ``sel_ref`` (a flat face keeps its gain 1)."""
    if not sel.any() or not sel_ref.any():
        return y
    mu, sd = float(y[sel].mean()), float(y[sel].std())
    mu_r, sd_r = float(y_ref[sel_ref].mean()), float(y_ref[sel_ref].std())
    gain = sd_r / sd if sd > 1e-6 else 1.0
    return (y - mu) * gain + mu_r


def region_similarity(ref_image: np.ndarray, image: np.ndarray, ref_labels: Any, labels: Any) -> dict[str, RegionScore]:
    """Per-region score of one aligned face against one aligned reference face (see the module docstring).

    Both images are (S, S, 3) float in [0, 1] on the same aligned grid as their label maps.
    """
    y_ref, y = _luma(ref_image), _luma(image)
    lab_ref, lab = _labels(ref_labels), _labels(labels)
    if y_ref.shape != y.shape or lab_ref.shape != y_ref.shape or lab.shape != y.shape:
        raise FaceError(
            f"aligned faces and label maps must share one grid, got images {y_ref.shape} / {y.shape} "
            f"and labels {lab_ref.shape} / {lab.shape}: align both with align_and_parse"
        )
    h, w = y.shape
    if min(h, w) <= 2 * _SSIM_RADIUS:
        raise FaceError(f"aligned faces of {w}x{h} are too small for an 11x11 SSIM window")
    m_ref, m_img = region_masks(lab_ref), region_masks(lab)
    y = _match_luma(y, y_ref, m_img["face"], m_ref["face"])
    r = _SSIM_RADIUS
    # Only windows centred on face pixels are needed: cut the face's bounding box plus the window radius (clipped
    # to the image). Exact, since SSIM at a pixel only sees its 11x11 neighbourhood; about 2x faster.
    rows, cols = np.nonzero(m_ref["face"] | m_img["face"])
    if rows.size:
        y0, y1 = max(0, rows.min() - r), min(h, rows.max() + 1 + r)
        x0, x1 = max(0, cols.min() - r), min(w, cols.max() + 1 + r)
    else:
        y0, y1, x0, x1 = 0, h, 0, w
    smap = np.full((h, w), np.nan)
    if y1 - y0 > 2 * r and x1 - x0 > 2 * r:
        cut = (slice(y0, y1), slice(x0, x1))
        part = ssim_map(torch.from_numpy(y_ref[cut])[None, None], torch.from_numpy(y[cut])[None, None])[0, 0]
        smap[y0 + r : y1 - r, x0 + r : x1 - r] = part.numpy()
    out: dict[str, RegionScore] = {}
    for name in REGION_NAMES:
        union = m_ref[name] | m_img[name]
        inter = m_ref[name] & m_img[name]
        n_union = int(union.sum())
        if n_union == 0:
            out[name] = RegionScore(math.nan, math.nan, 0)
            continue
        vals = smap[union]
        vals = vals[~np.isnan(vals)]  # pixels within 5 px of the image border have no full window
        out[name] = RegionScore(float(vals.mean()) if vals.size else math.nan, float(inter.sum()) / n_union, n_union)
    return out


def compare_regions(references: Sequence[AlignedFace], face: AlignedFace) -> dict[str, RegionScore]:
    """Per-region scores of ``face`` against each reference, averaged over the references that have the region.

    ``pixels`` is the mean union size. With no reference, every score is NaN.
    """
    per_ref = [region_similarity(ref.image, face.image, ref.labels, face.labels) for ref in references]
    out = {}
    for name in REGION_NAMES:
        ssims = [s[name].ssim for s in per_ref if not math.isnan(s[name].ssim)]
        ious = [s[name].iou for s in per_ref if not math.isnan(s[name].iou)]
        pixels = [s[name].pixels for s in per_ref]
        out[name] = RegionScore(
            float(np.mean(ssims)) if ssims else math.nan,
            float(np.mean(ious)) if ious else math.nan,
            int(round(float(np.mean(pixels)))) if pixels else 0,
        )
    return out


def align_and_parse(
    image: Any, landmarks5: Any, parser: nn.Module, *, size: int = ALIGNED_SIZE, method: str = "umeyama"
) -> AlignedFace:
    """Align one face from its 5 detector landmarks onto the template and parse it.

    ``image`` is an (H, W, 3) uint8 or [0, 1] float RGB image; ``landmarks5`` the judge's 5 points (for dlib
    the mouth corners are estimated from the eyes, see ``DlibJudge``, so the fit follows eyes and nose).
    """
    rgb = to_rgb_uint8(image).astype(np.float32) / 255.0
    aligned, _ = align_face(rgb, landmarks5, size=size, method=method)
    aligned = np.asarray(aligned, dtype=np.float32)
    x = torch.from_numpy(aligned).permute(2, 0, 1)[None].contiguous()
    labels = parse_face(parser, x)[0].cpu().numpy()
    return AlignedFace(aligned, labels)


def region_columns(scores: Mapping[str, RegionScore] | None, suffix: str = "") -> dict[str, float]:
    """CSV columns ``region_<name><suffix>`` (SSIM) and, without a suffix, ``region_<name>_iou``."""
    out: dict[str, float] = {}
    for name in REGION_NAMES:
        s = None if scores is None else scores.get(name)
        out[f"region_{name}{suffix}"] = math.nan if s is None else s.ssim
        if not suffix:
            out[f"region_{name}_iou"] = math.nan if s is None else s.iou
    return out
