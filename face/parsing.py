"""BiSeNet face parsing (19 classes), loadable from facexlib's ``parsing_bisenet.pth`` as is.

PuLID-Flux whitens the background, ears, neck, cloth and hat of the aligned reference face before its EVA-CLIP
encoder sees it; the mask comes from this network. We re-implement it (no facexlib dependency: facexlib pulls
a detector, downloads weights on import paths and is unmaintained) with exactly the state-dict key names and
shapes of facexlib's ``BiSeNet(num_class=19)``, so the published file loads strictly.

Architecture (C. Yu et al., "BiSeNet: Bilateral Segmentation Network for Real-time Semantic Segmentation",
ECCV 2018), in the face-parsing variant facexlib ships (facts read from facexlib 0.3.0
facexlib/parsing/bisenet.py and resnet.py; this code is our own):
* context path: a ResNet-18 trunk (7x7/2 stem, max pool, 4 stages of 2 basic blocks, 64/128/256/512
  channels, 1x1 conv + BN shortcut where the shape changes) giving 1/8, 1/16 and 1/32 features; a
  global-average-pooled 1/32 feature (1x1 conv-BN-ReLU, 512 -> 128) added to an attention refinement module
  (ARM) on 1/32 (512 -> 128), nearest-upsampled to 1/16 and refined by a 3x3 conv-BN-ReLU; the same on
  1/16 (ARM 256 -> 128, plus the upsampled 1/32 result) up to 1/8.
* spatial path: in this variant the ResNet's 1/8 feature (128 channels) plays the spatial path; it has no
  weights of its own.
* feature fusion module (FFM): concat (128 + 128) -> 1x1 conv-BN-ReLU to 256, channel attention (global
  pool, 1x1 256 -> 64, ReLU, 1x1 64 -> 256, sigmoid), output = feat * atten + feat.
* heads: 3x3 conv-BN-ReLU then a 1x1 conv to 19 classes; the main head on the FFM output (256 -> 256 -> 19),
  auxiliary heads on the 1/8 and 1/16 context features (128 -> 64 -> 19); all upsampled bilinearly
  (align_corners=True) to the input size.
Every conv is bias-free; every BN is a plain ``BatchNorm2d``.

Class ids (CelebAMask-HQ order): 0 background, 1 skin, 2 l_brow, 3 r_brow, 4 l_eye, 5 r_eye, 6 eye_g,
7 l_ear, 8 r_ear, 9 ear_r (earring), 10 nose, 11 mouth, 12 u_lip, 13 l_lip, 14 neck, 15 neck_l (necklace),
16 cloth, 17 hair, 18 hat.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..common.layout import compare
from ..common.weights import WeightsReadError, read_weights
from .errors import FaceError, FaceModelMissingError

logger = logging.getLogger(__name__)

__all__ = [
    "BISENET_FILENAME",
    "BISENET_NUM_CLASSES",
    "BISENET_URL",
    "EXPECTED_MODEL_PATH",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "BiSeNet",
    "ParsingWeightsError",
    "load_bisenet",
    "parse_face",
]

BISENET_NUM_CLASSES = 19
BISENET_FILENAME = "parsing_bisenet.pth"
EXPECTED_MODEL_PATH = "models/facexlib/parsing_bisenet.pth"
BISENET_URL = "https://github.com/xinntao/facexlib/releases/download/v0.2.0/parsing_bisenet.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_HOW_TO_GET = f"download {BISENET_URL} and put it at ComfyUI/{EXPECTED_MODEL_PATH}"


class ParsingWeightsError(FaceError):
    """A face-parsing weights file exists but is not facexlib's BiSeNet, or is unsafe to read.

    Defined here because face/errors.py has no "wrong weights file" error yet; it is a ``FaceError`` (so a
    ``ValueError``) like the others.
    """


# --------------------------------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------------------------------


class _ConvBNReLU(nn.Module):
    """Bias-free conv, BN, ReLU: keys ``conv.weight`` and ``bn.*``."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class _BasicBlock(nn.Module):
    """ResNet basic block; the shortcut gets a 1x1 conv + BN (``downsample.0/1``) when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if cin != cout or stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = F.relu(self.bn1(self.conv1(x)))
        res = self.bn2(self.conv2(res))
        short = x if self.downsample is None else self.downsample(x)
        return F.relu(short + res)


class _ResNet18(nn.Module):
    """ResNet-18 trunk without the classifier; returns the 1/8, 1/16 and 1/32 features."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = nn.Sequential(_BasicBlock(64, 64), _BasicBlock(64, 64))
        self.layer2 = nn.Sequential(_BasicBlock(64, 128, 2), _BasicBlock(128, 128))
        self.layer3 = nn.Sequential(_BasicBlock(128, 256, 2), _BasicBlock(256, 256))
        self.layer4 = nn.Sequential(_BasicBlock(256, 512, 2), _BasicBlock(512, 512))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        f8 = self.layer2(self.layer1(x))
        f16 = self.layer3(f8)
        f32 = self.layer4(f16)
        return f8, f16, f32


def _global_pool(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, x.shape[2:])


class _AttentionRefinement(nn.Module):
    """3x3 conv-BN-ReLU, then a per-channel sigmoid gate from its global average."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = _ConvBNReLU(cin, cout, 3)
        self.conv_atten = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x)
        gate = torch.sigmoid(self.bn_atten(self.conv_atten(_global_pool(feat))))
        return feat * gate


class _ContextPath(nn.Module):
    def __init__(self):
        super().__init__()
        self.resnet = _ResNet18()
        self.arm16 = _AttentionRefinement(256, 128)
        self.arm32 = _AttentionRefinement(512, 128)
        self.conv_head32 = _ConvBNReLU(128, 128, 3)
        self.conv_head16 = _ConvBNReLU(128, 128, 3)
        self.conv_avg = _ConvBNReLU(512, 128, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f8, f16, f32 = self.resnet(x)
        ctx = self.conv_avg(_global_pool(f32))  # (B, 128, 1, 1), broadcast over the 1/32 grid
        up32 = F.interpolate(self.arm32(f32) + ctx, size=f16.shape[2:], mode="nearest")
        up32 = self.conv_head32(up32)
        up16 = F.interpolate(self.arm16(f16) + up32, size=f8.shape[2:], mode="nearest")
        up16 = self.conv_head16(up16)
        return f8, up16, up32  # 1/8 trunk feature (the "spatial path"), 1/8 and 1/16 context


class _FeatureFusion(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.convblk = _ConvBNReLU(cin, cout, 1)
        self.conv1 = nn.Conv2d(cout, cout // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(cout // 4, cout, 1, bias=False)

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        feat = self.convblk(torch.cat([spatial, context], dim=1))
        gate = torch.sigmoid(self.conv2(F.relu(self.conv1(_global_pool(feat)))))
        return feat * gate + feat


class _Head(nn.Module):
    def __init__(self, cin: int, cmid: int, num_class: int):
        super().__init__()
        self.conv = _ConvBNReLU(cin, cmid, 3)
        self.conv_out = nn.Conv2d(cmid, num_class, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """Face-parsing BiSeNet; ``forward`` returns (main, aux 1/8, aux 1/16) logits at the input size."""

    def __init__(self, num_class: int = BISENET_NUM_CLASSES):
        super().__init__()
        self.num_class = num_class
        self.cp = _ContextPath()
        self.ffm = _FeatureFusion(256, 256)
        self.conv_out = _Head(256, 256, num_class)
        self.conv_out16 = _Head(128, 64, num_class)
        self.conv_out32 = _Head(128, 64, num_class)

    @staticmethod
    def _up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return F.interpolate(x, size=size, mode="bilinear", align_corners=True)

    def forward_main(self, x: torch.Tensor) -> torch.Tensor:
        """Only the main head's logits: what parsing uses, without the auxiliary heads' cost."""
        size = tuple(x.shape[2:])
        f8, ctx8, _ = self.cp(x)
        return self._up(self.conv_out(self.ffm(f8, ctx8)), size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        size = tuple(x.shape[2:])
        f8, ctx8, ctx16 = self.cp(x)
        out = self.conv_out(self.ffm(f8, ctx8))
        return self._up(out, size), self._up(self.conv_out16(ctx8), size), self._up(self.conv_out32(ctx16), size)


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def _read_file(path: Path) -> Any:
    """Read a weights file through the pack's one safe reader (common/weights.py)."""
    try:
        return read_weights(path, (path.suffix.lower(),))  # safetensors by name; any other name is a torch file
    except WeightsReadError as err:
        if err.kind == "refused":
            raise ParsingWeightsError(
                f"refused to read face-parsing weights {path}: its pickle holds Python objects other than tensors, "
                f"and it is only read with torch.load(weights_only=True) because unpickling arbitrary objects can run "
                f"code ({err.detail}). Expected facexlib's {BISENET_FILENAME} (plain tensors): {_HOW_TO_GET}"
            ) from err
        if path.suffix.lower() == ".safetensors":
            raise ParsingWeightsError(
                f"cannot read face-parsing weights {path}: {err.detail}; "
                f"expected facexlib's {BISENET_FILENAME}: {_HOW_TO_GET}"
            ) from err
        raise ParsingWeightsError(
            f"cannot read face-parsing weights {path}: not a torch checkpoint ({err.detail}); "
            f"expected facexlib's {BISENET_FILENAME}: {_HOW_TO_GET}"
        ) from err


def _unwrap(obj: Any, source: str) -> dict[str, torch.Tensor]:
    """The flat name -> tensor dict, looking inside a "params"/"state_dict" wrapper and past "module."."""
    for _ in range(3):
        if isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            for key in ("params_ema", "params", "state_dict", "model"):
                if isinstance(obj.get(key), Mapping):
                    logger.debug("face parsing weights %s: using the nested %r entry", source, key)
                    obj = obj[key]
                    break
            else:
                break
        else:
            break
    if not isinstance(obj, Mapping):
        raise ParsingWeightsError(
            f"face-parsing weights {source} hold a {type(obj).__name__}, expected a dict of tensors "
            f"(facexlib's {BISENET_FILENAME}): {_HOW_TO_GET}"
        )
    bad = [str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ParsingWeightsError(
            f"face-parsing weights {source} have {len(bad)} entries that are not tensors (e.g. {bad[:3]}), "
            f"expected facexlib's {BISENET_FILENAME} state dict: {_HOW_TO_GET}"
        )
    sd = {str(k): v for k, v in obj.items()}
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def _check_keys(model: BiSeNet, sd: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """Strict key and shape check with a message that says what is wrong; BN step counters are optional."""
    expected = model.state_dict()
    sd = dict(sd)
    for k, v in expected.items():
        # num_batches_tracked only counts training steps; older checkpoints lack it and eval ignores it.
        if k.endswith("num_batches_tracked") and k not in sd:
            sd[k] = v.clone()
    probs = compare(sd, {k: tuple(v.shape) for k, v in expected.items()})
    if probs:
        raise ParsingWeightsError(
            f"face-parsing weights {source} are not facexlib's BiSeNet (19 classes, {len(expected)} tensors): "
            f"{probs.describe(3)}. Use facexlib's {BISENET_FILENAME} (not parsing_parsenet.pth): {_HOW_TO_GET}"
        )
    return sd


def load_bisenet(
    path_or_state_dict: str | os.PathLike | Mapping[str, Any], *, device: str | torch.device = "cpu"
) -> BiSeNet:
    """Build the BiSeNet and load facexlib's ``parsing_bisenet.pth`` (or the same tensors) strictly, in eval mode.

    ``.pth``/``.pt`` files go only through ``torch.load(map_location="cpu", weights_only=True)``;
    ``.safetensors`` through safetensors. A dict already in memory is accepted too (tests, other loaders).
    """
    model = BiSeNet(BISENET_NUM_CLASSES)
    if isinstance(path_or_state_dict, Mapping):
        source = "(state dict)"
        obj: Any = path_or_state_dict
    else:
        path = Path(os.fspath(path_or_state_dict)).expanduser()
        source = str(path)
        if not path.is_file():
            raise FaceModelMissingError(
                path,
                f"BiSeNet face-parsing weights (facexlib {BISENET_FILENAME})",
                hint=_HOW_TO_GET[0].upper() + _HOW_TO_GET[1:],
            )
        obj = _read_file(path)
    sd = _check_keys(model, _unwrap(obj, source), source)
    model.load_state_dict(sd, strict=True)
    model.eval().requires_grad_(False)
    logger.info("loaded BiSeNet face parsing weights from %s", source)
    return model.to(device)


# --------------------------------------------------------------------------------------------------
# Inference
# --------------------------------------------------------------------------------------------------


def _main_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if isinstance(model, BiSeNet):
        return model.forward_main(x)
    out = model(x)
    return out[0] if isinstance(out, (tuple, list)) else out


def parse_face(model: nn.Module, aligned: torch.Tensor) -> torch.Tensor:
    """Per-pixel class ids (B, H, W) int64 for aligned RGB faces (B, 3, H, W) in [0, 1].

    Normalises with the ImageNet mean/std and takes the argmax of the main head, as the reference does on
    the 512x512 aligned face. The model's device and dtype are used; labels come back on the input's device.
    """
    if not isinstance(aligned, torch.Tensor):
        raise TypeError(f"aligned must be a torch tensor (B, 3, H, W) in [0, 1], got {type(aligned).__name__}")
    if aligned.ndim != 4 or aligned.shape[1] != 3:
        raise ValueError(f"aligned must be (B, 3, H, W) RGB in [0, 1], got shape {tuple(aligned.shape)}")
    param = next(model.parameters(), None)
    device = param.device if param is not None else aligned.device
    dtype = param.dtype if param is not None else torch.float32
    x = aligned.to(device=device, dtype=torch.float32)
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    x = ((x - mean) / std).to(dtype)
    with torch.no_grad():  # not inference_mode: callers may reuse the labels in autograd code
        logits = _main_logits(model, x)
    return logits.argmax(dim=1).to(device=aligned.device, dtype=torch.int64)
