"""Enhancement report: did a face enhancement move the identity toward the reference, and what did it
do to the rest of the image?

Identity: cosine similarity of the "before" and "after" face embeddings to the reference embedding (the
references' unit embeddings averaged and re-normalised, ``reference_embedding(..., "cosine")``), and
``delta_id = cos_after - cos_before`` (> 0: the identity moved toward the reference). A missing face gives
NaN and a ``no_face_*`` flag, never 0 or 1.

Preservation: PSNR and SSIM between before and after over the pixels OUTSIDE the face mask (mask == 0).
Without a mask, the union of the before/after face boxes, each scaled 1.3x about its centre, is the mask
(``mask_source`` says which was used); without a mask and without any face the whole frame is scored.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from .judge import to_rgb_uint8
from .metrics import delta_id, identity_similarity, reference_embedding
from .overlay import annotate
from .quality import psnr_outside, ssim_outside

__all__ = ["BOX_SCALE", "box_mask", "enhancement_report", "format_report", "side_by_side"]

BOX_SCALE = 1.3

Box = tuple[float, float, float, float]


def box_mask(boxes: Sequence[Box | None], height: int, width: int, scale: float = BOX_SCALE) -> torch.Tensor | None:
    """(H, W) float mask, 1 inside any of the boxes scaled ``scale``x about their centres (clipped to the
    frame), 0 elsewhere. None when no box is given."""
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return None
    m = torch.zeros((height, width), dtype=torch.float32)
    for x0, y0, x1, y1 in boxes:
        cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
        hw, hh = (x1 - x0) * scale / 2.0, (y1 - y0) * scale / 2.0
        c0, c1 = max(0, int(math.floor(cx - hw))), min(width, int(math.ceil(cx + hw)))
        r0, r1 = max(0, int(math.floor(cy - hh))), min(height, int(math.ceil(cy + hh)))
        if c1 > c0 and r1 > r0:
            m[r0:r1, c0:c1] = 1.0
    return m


def _image(x: Any, what: str) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.ndim == 4 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 3 or t.shape[2] < 3:
        raise ValueError(f"{what} must be one (H, W, 3) image, got shape {tuple(t.shape)}")
    return t[..., :3].to(torch.float64)


def _outside_mask(face_mask: Any, before_box: Box | None, after_box: Box | None, H: int, W: int):
    """The mask of the face (scored outside it) and where it came from: the input, the face boxes, or none."""
    if face_mask is not None:
        mask = torch.as_tensor(face_mask).to(torch.float64)
        if mask.ndim == 3 and mask.shape[0] == 1:
            mask = mask[0]
        if tuple(mask.shape) != (H, W):
            raise ValueError(f"face_mask is {tuple(mask.shape)} (H, W) but the images are ({H}, {W})")
        return mask, "input"
    mask = box_mask([before_box, after_box], H, W)
    return mask, (f"face boxes x{BOX_SCALE:g}" if mask is not None else "none: whole frame")


def _outside_scores(b: torch.Tensor, a: torch.Tensor, mask: Any, lpips_model: Any) -> tuple[float, float, float]:
    """PSNR, SSIM and (with a model) LPIPS outside the mask; NaN where nothing is left to score."""
    try:
        psnr = psnr_outside(b, a, mask)
    except ValueError:
        psnr = math.nan
    try:
        ssim = ssim_outside(b, a, mask)
    except ValueError:
        ssim = math.nan
    lp = math.nan
    if lpips_model is not None:
        from .lpips import lpips_outside

        try:
            lp = lpips_outside(lpips_model, b.to(torch.float32), a.to(torch.float32), mask)
        except ValueError:
            lp = math.nan
    return psnr, ssim, lp


def enhancement_report(
    ref_embs: np.ndarray | Sequence[np.ndarray | None],
    before_emb: np.ndarray | None,
    after_emb: np.ndarray | None,
    before_img: Any,
    after_img: Any,
    face_mask: Any = None,
    *,
    before_box: Box | None = None,
    after_box: Box | None = None,
    reference_without_face: str = "error",
    lpips_model: Any = None,
) -> dict:
    """Identity change and preservation of one before/after pair.

    ``ref_embs``: (R, D) or a list of reference embeddings (``None`` = reference without a face, handled by
    ``reference_without_face`` as in ``reference_embedding``); ``before_emb`` / ``after_emb``: the face
    embeddings (None = no face); images (H, W, 3) float in [0, 1], same size; ``face_mask`` (H, W) float,
    where the face is (scored outside = mask == 0) or None to use the face boxes (``before_box``,
    ``after_box``, scaled ``BOX_SCALE``x).

    Returns a dict: cos_before, cos_after, delta_id (NaN when a face is missing), no_face_before,
    no_face_after, psnr_outside (dB; inf when outside pixels are identical, NaN when the mask covers the
    frame), psnr_identical, ssim_outside (NaN when nothing is left to score), mask_source ("input",
    "face boxes x1.3" or "none: whole frame"), mask_coverage (fraction of pixels inside the mask),
    lpips_outside (LPIPS-Alex outside the same mask when ``lpips_model`` is given, see face/lpips.py; else NaN).
    """
    ref = reference_embedding(ref_embs, "cosine", no_face=reference_without_face)
    cos_b = identity_similarity(ref, before_emb)
    cos_a = identity_similarity(ref, after_emb)
    b = _image(before_img, "before")
    a = _image(after_img, "after")
    if b.shape != a.shape:
        raise ValueError(
            f"before is {b.shape[1]}x{b.shape[0]} but after is {a.shape[1]}x{a.shape[0]} (WxH): "
            "resize one to the other's size so pixels outside the face can be compared"
        )
    mask, source = _outside_mask(face_mask, before_box, after_box, int(b.shape[0]), int(b.shape[1]))
    coverage = 0.0 if mask is None else float((mask != 0).to(torch.float64).mean())
    psnr, ssim, lp = _outside_scores(b, a, mask, lpips_model)
    return {
        "cos_before": cos_b,
        "cos_after": cos_a,
        "delta_id": delta_id(cos_b, cos_a),
        "no_face_before": before_emb is None,
        "no_face_after": after_emb is None,
        "psnr_outside": psnr,
        "psnr_identical": psnr == math.inf,
        "ssim_outside": ssim,
        "mask_source": source,
        "mask_coverage": coverage,
        "lpips_outside": lp,
    }


def _num(x: float, fmt: str) -> str:
    return "n/a" if math.isnan(x) else format(x, fmt)


def format_report(report: dict) -> tuple[str, str, str]:
    """Captions for side_by_side: (reference, before, after)."""
    before = "before: no face" if report["no_face_before"] else f"before: cos {_num(report['cos_before'], '.3f')}"
    if report["no_face_after"]:
        after = "after: no face"
    else:
        after = f"after: cos {_num(report['cos_after'], '.3f')}, dID {_num(report['delta_id'], '+.3f')}"
    return "reference", before, after


def side_by_side(
    ref_img: Any,
    before_img: Any,
    after_img: Any,
    texts: Sequence[str],
    boxes: Sequence[Box | None] = (None, None, None),
) -> np.ndarray:
    """reference | before | after, resized to the before image's height, each captioned with ``annotate``
    (and its face box outlined when given). Returns uint8 (H, W_total, 3)."""
    imgs = [to_rgb_uint8(x) for x in (ref_img, before_img, after_img)]
    height = imgs[1].shape[0]
    panels = []
    for img, text, box in zip(imgs, texts, boxes):
        h, w = img.shape[:2]
        s = height / h
        if h != height:
            img = np.asarray(Image.fromarray(img).resize((max(1, round(w * s)), height), Image.BICUBIC))
            box = None if box is None else tuple(v * s for v in box)
        panels.append(annotate(img, text, box))
    return np.concatenate(panels, axis=1)
