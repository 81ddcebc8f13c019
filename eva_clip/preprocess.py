"""Pixels in [0, 1] -> the normalised input of the EVA tower, as PuLID prepares its face crop."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The OpenAI CLIP normalisation constants (openai/CLIP clip/clip.py `_transform`; the same values are
# OPENAI_DATASET_MEAN/STD in EVA-CLIP eva_clip/constants.py), which PuLID passes to its EVA transform.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def preprocess(face_rgb01: torch.Tensor, image_size: int = 336) -> torch.Tensor:
    """(B,3,H,W) RGB in [0,1] -> (B,3,S,S) bicubic-resized, CLIP-normalised.

    PuLID calls torchvision ``resize(img, 336, BICUBIC)``, which for tensors antialiases by default since
    torchvision 0.17 and does not clamp floats; F.interpolate(antialias=True) is that same kernel. The output is
    square even for a non-square input (PuLID's aligned face crop is square, so nothing changes there).
    """
    if face_rgb01.ndim != 4 or face_rgb01.shape[1] != 3:
        raise ValueError(f"expected a (B, 3, H, W) RGB batch, got {tuple(face_rgb01.shape)}")
    if not face_rgb01.is_floating_point():
        raise ValueError(f"expected float pixels in [0, 1], got {face_rgb01.dtype}")
    if face_rgb01.numel() and face_rgb01.max() > 2.0:
        raise ValueError("pixels look like 0-255 values; divide by 255 first (expected [0, 1])")
    x = face_rgb01
    if tuple(x.shape[-2:]) != (image_size, image_size):
        x = F.interpolate(x, size=(image_size, image_size), mode="bicubic", align_corners=False, antialias=True)
    mean = torch.tensor(CLIP_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std
