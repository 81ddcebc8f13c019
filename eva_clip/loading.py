"""Reading an EVA-CLIP checkpoint file safely: safetensors, or torch.load with weights_only=True only."""

from __future__ import annotations

import logging
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from .errors import EvaClipCheckpointError
from .model import EvaClipVision, load_eva_clip

logger = logging.getLogger(__name__)

PICKLE_SUFFIXES = (".pt", ".pth", ".bin")
_REDOWNLOAD = "download the file again (it looks truncated or corrupted) and check its size against the source"


def _pickle_reason(e: Exception) -> str:
    """torch's refusal is a long, ANSI-coloured essay; keep the line naming the forbidden global."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", ln).strip() for ln in str(e).splitlines()]
    lines = [ln for ln in lines if ln]
    named = [ln for ln in lines if "Unsupported" in ln or "WeightsUnpickler error" in ln]
    return (named or lines or [type(e).__name__])[0].split(" Please use")[0]


def read_state_dict(path: str | os.PathLike) -> Mapping:
    """The raw mapping inside the file, unwrapped from a training checkpoint's "state_dict"/"model" key."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"EVA-CLIP checkpoint not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            obj = load_file(str(path), device="cpu")
        except Exception as e:  # safetensors raises its own SafetensorError / OSError variants
            raise EvaClipCheckpointError(str(path), f"an unreadable safetensors file ({type(e).__name__}: {e})",
                                         fix=_REDOWNLOAD) from e
    elif suffix in PICKLE_SUFFIXES:
        try:
            # weights_only=True: tensors and plain containers only; any other global in the pickle is refused
            # before it can run. This is the only way this package unpickles.
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            first = _pickle_reason(e)
            raise EvaClipCheckpointError(
                str(path), "a pickle that needs more than tensors to load; it was refused unexecuted by "
                           f"torch.load(weights_only=True) ({first})",
                fix="use the official EVA02_CLIP_L_336_psz14_s6B.pt (a plain state dict) or a .safetensors "
                    "conversion; never load a checkpoint from an untrusted source with weights_only=False") from e
        except Exception as e:  # truncated zip, not a torch file at all, ...
            raise EvaClipCheckpointError(str(path), f"an unreadable torch file ({type(e).__name__}: {e})",
                                         fix=_REDOWNLOAD) from e
    else:
        raise EvaClipCheckpointError(str(path), f"a file with extension {suffix!r}",
                                     fix="use a .safetensors, .pt, .pth or .bin EVA02-CLIP checkpoint")
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
