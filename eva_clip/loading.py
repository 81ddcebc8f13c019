"""Reading an EVA-CLIP checkpoint file safely, through the pack's one weights reader (common/weights.py)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import torch

from ..common.weights import WeightsReadError, read_weights
from .errors import EvaClipCheckpointError
from .model import EvaClipVision, load_eva_clip

logger = logging.getLogger(__name__)

_REDOWNLOAD = "download the file again (it looks truncated or corrupted) and check its size against the source"


def read_state_dict(path: str | os.PathLike) -> Mapping:
    """The raw mapping inside the file, unwrapped from a training checkpoint's "state_dict"/"model" key."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"EVA-CLIP checkpoint not found: {path}")
    try:
        obj = read_weights(path, (".safetensors", ".pt", ".pth", ".bin"))
    except WeightsReadError as e:
        if e.kind == "refused":
            raise EvaClipCheckpointError(
                str(path), "a pickle that needs more than tensors to load; it was refused unexecuted by "
                           f"torch.load(weights_only=True) ({e.detail})",
                fix="use the official EVA02_CLIP_L_336_psz14_s6B.pt (a plain state dict) or a .safetensors "
                    "conversion; never load a checkpoint from an untrusted source with weights_only=False") from e
        if e.kind == "suffix":
            raise EvaClipCheckpointError(str(path), f"a file with extension {path.suffix.lower()!r}",
                                         fix="use a .safetensors, .pt, .pth or .bin EVA02-CLIP checkpoint") from e
        kind = "safetensors" if path.suffix.lower() == ".safetensors" else "torch"
        raise EvaClipCheckpointError(str(path), f"an unreadable {kind} file ({e.detail})", fix=_REDOWNLOAD) from e
    for _ in range(3):  # {"state_dict": {...}} / {"model": {...}}, possibly nested once
        if isinstance(obj, Mapping) and "cls_token" not in obj and "visual.cls_token" not in obj:
            inner = next((obj[k] for k in ("state_dict", "model") if isinstance(obj.get(k), Mapping)), None)
            if inner is not None:
                obj = inner
                continue
        break
    if not isinstance(obj, Mapping):
        raise EvaClipCheckpointError(str(path), f"a pickled {type(obj).__name__}, not a state dict")
    return obj


def load_eva_clip_file(path: str | os.PathLike, device="cpu", dtype: torch.dtype = torch.float32, *,
                       head_dim: int | None = None) -> EvaClipVision:
    """Load the tower from a file; every content problem surfaces as EvaClipCheckpointError naming the file."""
    sd = read_state_dict(path)
    return load_eva_clip(sd, device=device, dtype=dtype, head_dim=head_dim, source=str(path))
