"""The one way the pack reads a weights file: safetensors, or a pickle only through ``torch.load(weights_only=True)``.

Unpickling arbitrary objects can run code, so a pickle holding anything but tensors and plain containers is
refused before it runs. Callers turn a WeightsReadError into their own typed error with their own fix.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

from .errors import LikenessError

SAFETENSORS_SUFFIXES = (".safetensors", ".sft")
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


class WeightsReadError(LikenessError):
    """A weights file could not be read safely.

    ``kind``: "refused" (a pickle that needs more than tensors; never executed), "unreadable" (a damaged or
    truncated file) or "suffix" (neither safetensors nor a torch pickle). ``detail``: the one useful line;
    ``global_name``: the global a refused pickle asked for, when torch names it.
    """

    def __init__(self, path: str, kind: str, detail: str, global_name: str | None = None):
        super().__init__(f"{path}: {detail}")
        self.path, self.kind, self.detail, self.global_name = path, kind, detail, global_name


def unpickler_reason(err: Exception) -> str:
    """The one line of torch's weights_only refusal that names the forbidden global (without the ANSI colours
    and the advice to retry with weights_only=False)."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", ln).strip() for ln in str(err).splitlines()]
    lines = [ln for ln in lines if ln]
    named = [ln for ln in lines if "Unsupported" in ln or "WeightsUnpickler error" in ln]
    line = (named or lines or [type(err).__name__])[0]
    line = line.split("WeightsUnpickler error:", 1)[-1].strip()
    return line.split(". Please", 1)[0].split(" Please use")[0].rstrip(".")


def read_weights(path: str | os.PathLike, suffixes: tuple[str, ...] = SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES) -> Any:
    """The object stored in ``path`` (a name -> tensor dict for safetensors; a plain container for a pickle)."""
    import torch

    path = os.fspath(path)
    suffix = Path(path).suffix.lower()
    if suffix not in suffixes:
        raise WeightsReadError(path, "suffix", f"extension {suffix or '(none)'!r} is not one of {', '.join(suffixes)}")
    if suffix in SAFETENSORS_SUFFIXES:
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except Exception as err:  # safetensors raises its own SafetensorError / OSError variants
            raise WeightsReadError(path, "unreadable", f"not a valid safetensors file ({err})") from err
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        glob = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
        raise WeightsReadError(path, "refused", unpickler_reason(err), glob.group(1) if glob else None) from err
    except Exception as err:  # truncated zip, not a torch file at all, ...
        first = str(err).splitlines()[0] if str(err) else ""
        raise WeightsReadError(path, "unreadable", f"{type(err).__name__}: {first}") from err
