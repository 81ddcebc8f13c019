"""LPIPS (AlexNet, v0.1) outside a mask, computed only when its weights are present locally.

LPIPS (Zhang et al., "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric", CVPR 2018):
inputs scaled to [-1, 1] and normalised by the fixed shift/scale below, AlexNet features after each of its
five ReLUs, each feature vector unit-normalised over channels, squared difference, a learned non-negative
1x1 weighting per layer, averaged over space and summed over layers. Two files are needed and neither is
downloaded: torchvision's AlexNet ImageNet checkpoint (``alexnet-owt-7be5be79.pth``; only ``features.*`` is
used) and the LPIPS v0.1 linear layers (``alex.pth``, shipped inside the ``lpips`` PyPI package). Both are
read with ``torch.load(weights_only=True)``.

"Outside the mask": the per-layer distance maps are upsampled (bilinear) to the image size, summed, and
averaged over pixels where the mask is 0, so a changed face does not count as damage to the background.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..common.weights import WeightsReadError, read_weights
from ..contract import LPIPS_ALEXNET, LPIPS_LIN
from .errors import FaceError

ALEXNET_FILE, LIN_FILE = LPIPS_ALEXNET, LPIPS_LIN  # file names: written once, in contract.py
# Input normalisation of the reference implementation (public constants of the LPIPS ScalingLayer).
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
CHANNELS = (64, 192, 384, 256, 256)
# Indices in torchvision's alexnet.features after which LPIPS taps a ReLU output.
TAPS = (1, 4, 7, 9, 11)


class LpipsWeightsError(FaceError):
    """An LPIPS weight file with the wrong content; the message names the file and what was expected."""


def _alexnet_features() -> nn.Sequential:
    # The torchvision AlexNet feature stack, layer for layer, so its checkpoint keys load unchanged.
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),
    )  # fmt: skip


class Lpips(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = _alexnet_features()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in CHANNELS)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in TAPS:
                out.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(B,) LPIPS of two (B, 3, H, W) images in [0, 1], as defined: per-layer spatial means, summed."""
        fa = self._taps((a * 2 - 1 - self.shift) / self.scale)
        fb = self._taps((b * 2 - 1 - self.shift) / self.scale)
        return sum(lin((x - y) ** 2).mean(dim=(1, 2, 3)) for lin, x, y in zip(self.lins, fa, fb))

    def distance_map(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) LPIPS map of two (B, 3, H, W) images in [0, 1]; its mean is ~ the image LPIPS."""
        h, w = a.shape[-2:]
        fa = self._taps((a * 2 - 1 - self.shift) / self.scale)
        fb = self._taps((b * 2 - 1 - self.shift) / self.scale)
        total = torch.zeros(a.shape[0], 1, h, w, dtype=a.dtype, device=a.device)
        for lin, x, y in zip(self.lins, fa, fb):
            total = total + F.interpolate(lin((x - y) ** 2), size=(h, w), mode="bilinear", align_corners=False)
        return total


def _load(path: Path, what: str) -> dict[str, torch.Tensor]:
    try:
        sd = read_weights(path, (path.suffix.lower(),))  # the pack's one safe reader; any name is a torch file
    except WeightsReadError as err:
        raise LpipsWeightsError(f"{what} {str(path)!r} could not be read as plain tensors ({err.detail})") from err
    if not isinstance(sd, dict):
        raise LpipsWeightsError(f"{what} {str(path)!r} holds a {type(sd).__name__}, expected a state dict")
    return sd


def load_lpips(alexnet_path: str | os.PathLike, lin_path: str | os.PathLike) -> Lpips:
    """LPIPS-Alex from torchvision's AlexNet checkpoint and LPIPS v0.1 ``alex.pth`` (strict key check)."""
    model = Lpips()
    alex = _load(Path(alexnet_path), "AlexNet checkpoint")
    feats = {k[len("features."):]: v for k, v in alex.items() if k.startswith("features.")}
    lins = _load(Path(lin_path), "LPIPS linear weights")
    # alex.pth keys are lin{i}.model.1.weight (Dropout at .0, the 1x1 conv at .1).
    lin_sd = {f"{i}.weight": lins.get(f"lin{i}.model.1.weight") for i in range(len(CHANNELS))}
    missing = [k for k, v in lin_sd.items() if v is None]
    if missing or not feats:
        raise LpipsWeightsError(
            f"LPIPS weights do not match: {ALEXNET_FILE} needs 'features.*' tensors ({len(feats)} found) and "
            f"{LIN_FILE} needs lin0..lin4.model.1.weight ({len(missing)} missing)"
        )
    try:
        model.features.load_state_dict(feats, strict=True)
        model.lins.load_state_dict(lin_sd, strict=True)
    except RuntimeError as err:
        raise LpipsWeightsError(f"LPIPS weights have the wrong shapes: {err}") from err
    return model.eval().requires_grad_(False)


def find_lpips_files(search_dirs: list[str | os.PathLike]) -> tuple[Path | None, Path | None]:
    """(alexnet, lin) paths from the given folders, then the torch hub cache and an installed ``lpips`` package."""
    dirs = [Path(d) for d in search_dirs]
    torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
    dirs.append(torch_home / "hub" / "checkpoints")
    spec = importlib.util.find_spec("lpips")  # located, never imported
    if spec is not None and spec.origin:
        dirs.append(Path(spec.origin).parent / "weights" / "v0.1")
    alex = next((d / ALEXNET_FILE for d in dirs if (d / ALEXNET_FILE).is_file()), None)
    lin = next((d / LIN_FILE for d in dirs if (d / LIN_FILE).is_file()), None)
    return alex, lin


def lpips_outside(model: Lpips, a: Any, b: Any, mask: Any = None) -> float:
    """Mean LPIPS of two (H, W, 3) images in [0, 1] over pixels where ``mask`` is 0 (all pixels if None)."""
    x = torch.as_tensor(a, dtype=torch.float32).permute(2, 0, 1)[None]
    y = torch.as_tensor(b, dtype=torch.float32).permute(2, 0, 1)[None]
    if x.shape != y.shape:
        raise ValueError(f"LPIPS needs images of one size, got {tuple(x.shape[-2:])} and {tuple(y.shape[-2:])} (H, W)")
    with torch.inference_mode():
        dmap = model.distance_map(x, y)[0, 0]
    if mask is None:
        return float(dmap.mean())
    keep = torch.as_tensor(mask).to(torch.float32).reshape(dmap.shape) == 0
    if not bool(keep.any()):
        raise ValueError("the mask covers the whole image: nothing is left outside it to score")
    return float(dmap[keep].mean())
