"""The face image PuLID-Flux's EVA-CLIP encoder sees: aligned face, gray skin, white everything else.

The reference (PuLID-Flux ``get_id_embedding``) parses the 512x512 aligned face with BiSeNet and keeps only
the face: background, ears, earring, neck, necklace, cloth and hat become white, the rest becomes gray
(ITU-R BT.601 luma 0.299 R + 0.587 G + 0.114 B, repeated to 3 channels), in [0, 1]. Gray removes colour
cues (lighting, makeup) so the identity features carry shape; whitening removes hair style and clothes.
The bicubic resize to 336 and the CLIP normalisation happen later, in eva_clip.preprocess.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn as nn

from .align import align_face
from .parsing import parse_face

logger = logging.getLogger(__name__)

__all__ = ["BACKGROUND_LABELS", "GRAY_WEIGHTS", "prepare_pulid_face", "pulid_face_input", "to_gray"]

# BiSeNet classes the reference whitens: 0 background, 7/8 ears, 9 earring, 14 neck, 15 necklace,
# 16 cloth, 18 hat.
BACKGROUND_LABELS = (0, 7, 8, 9, 14, 15, 16, 18)
GRAY_WEIGHTS = (0.299, 0.587, 0.114)


def to_gray(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB -> (B, 3, H, W) luma repeated on the 3 channels, as the reference's ``to_gray``."""
    y = GRAY_WEIGHTS[0] * rgb[:, 0:1] + GRAY_WEIGHTS[1] * rgb[:, 1:2] + GRAY_WEIGHTS[2] * rgb[:, 2:3]
    return y.repeat(1, 3, 1, 1)


def pulid_face_input(aligned_rgb01: torch.Tensor, labels: torch.Tensor, gray: bool = True) -> torch.Tensor:
    """Whiten the non-face classes and gray the face (keep its colour with ``gray=False``, the Enhanced port's switch): (B, 3, H, W) in [0, 1] from the aligned face and its labels.

    ``labels`` are BiSeNet class ids, (B, H, W) or (B, 1, H, W), on the same grid as the image.
    """
    if not isinstance(aligned_rgb01, torch.Tensor) or aligned_rgb01.ndim != 4 or aligned_rgb01.shape[1] != 3:
        shape = tuple(aligned_rgb01.shape) if isinstance(aligned_rgb01, torch.Tensor) else type(aligned_rgb01)
        raise ValueError(f"aligned_rgb01 must be a (B, 3, H, W) tensor in [0, 1], got {shape}")
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"labels must be a (B, H, W) integer tensor of BiSeNet class ids, got {type(labels)}")
    if labels.ndim == 4 and labels.shape[1] == 1:
        labels = labels[:, 0]
    b, _, h, w = aligned_rgb01.shape
    if tuple(labels.shape) != (b, h, w):
        raise ValueError(
            f"labels must be (B, H, W) = {(b, h, w)} to match the image {tuple(aligned_rgb01.shape)}, "
            f"got {tuple(labels.shape)}"
        )
    if labels.is_floating_point():
        raise ValueError(f"labels must hold integer class ids, got dtype {labels.dtype}")
    labels = labels.to(aligned_rgb01.device)
    bg_ids = torch.tensor(BACKGROUND_LABELS, device=labels.device, dtype=labels.dtype)
    bg = torch.isin(labels, bg_ids).unsqueeze(1)  # (B, 1, H, W), broadcast over channels
    white = torch.ones((), dtype=aligned_rgb01.dtype, device=aligned_rgb01.device)
    return torch.where(bg, white, to_gray(aligned_rgb01) if gray else aligned_rgb01)


def prepare_pulid_face(
    image_rgb01: Any, landmarks5: Any, parser: nn.Module, *, method: str = "umeyama", gray: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Align one photo from its detector landmarks, parse it and build the encoder's face input.

    ``image_rgb01`` is (H, W, 3) in [0, 1] (numpy or torch), ``landmarks5`` the insightface detector's 5 points
    in that image (no second detector, see face.align). Returns ``(face_input, aligned)``, both (1, 3, 512, 512)
    float32 on the parser's device: the whitened gray face for EVA-CLIP and the colour aligned face (the
    reference also feeds the latter to the recogniser when insightface found no face). ``method`` is the
    alignment fit (face.align.fit_to_template).
    """
    aligned_hwc, _ = align_face(image_rgb01, landmarks5, size=512, method=method)
    if not isinstance(aligned_hwc, torch.Tensor):
        aligned_hwc = torch.from_numpy(aligned_hwc)
    param = next(parser.parameters(), None)
    device = param.device if param is not None else aligned_hwc.device
    aligned = aligned_hwc.to(device=device, dtype=torch.float32).permute(2, 0, 1).unsqueeze(0).contiguous()
    labels = parse_face(parser, aligned)
    return pulid_face_input(aligned, labels, gray), aligned
