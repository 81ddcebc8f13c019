"""Random full-size facexlib BiSeNet weights (``parsing_bisenet.pth`` layout), written for tests only.

The key names and shapes are generated here from the architecture as read in facexlib 0.3.0
(facexlib/parsing/bisenet.py, resnet.py), independently of face/parsing.py, so a test that loads this file
into face.parsing.BiSeNet checks our module against facexlib's layout rather than against itself.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch


def _bn(prefix: str, c: int) -> list[tuple[str, tuple[int, ...]]]:
    return [(f"{prefix}.{n}", (c,)) for n in ("weight", "bias", "running_mean", "running_var")] + [
        (f"{prefix}.num_batches_tracked", ())
    ]


def _conv(prefix: str, cin: int, cout: int, k: int) -> list[tuple[str, tuple[int, ...]]]:
    return [(f"{prefix}.weight", (cout, cin, k, k))]


def _conv_bn_relu(prefix: str, cin: int, cout: int, k: int) -> list[tuple[str, tuple[int, ...]]]:
    return _conv(f"{prefix}.conv", cin, cout, k) + _bn(f"{prefix}.bn", cout)


def bisenet_key_shapes(num_class: int = 19) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every tensor of facexlib's ``BiSeNet(num_class)`` state dict, in module order."""
    out: list[tuple[str, tuple[int, ...]]] = []
    r = "cp.resnet"
    out += _conv(f"{r}.conv1", 3, 64, 7) + _bn(f"{r}.bn1", 64)
    chans = [(64, 64, 1), (64, 128, 2), (128, 256, 2), (256, 512, 2)]
    for li, (cin, cout, stride) in enumerate(chans, start=1):
        for bi in range(2):
            p = f"{r}.layer{li}.{bi}"
            c_in = cin if bi == 0 else cout
            out += _conv(f"{p}.conv1", c_in, cout, 3) + _bn(f"{p}.bn1", cout)
            out += _conv(f"{p}.conv2", cout, cout, 3) + _bn(f"{p}.bn2", cout)
            if bi == 0 and (cin != cout or stride != 1):
                out += _conv(f"{p}.downsample.0", cin, cout, 1) + _bn(f"{p}.downsample.1", cout)
    for name, cin in (("arm16", 256), ("arm32", 512)):
        out += _conv_bn_relu(f"cp.{name}.conv", cin, 128, 3)
        out += _conv(f"cp.{name}.conv_atten", 128, 128, 1) + _bn(f"cp.{name}.bn_atten", 128)
    out += _conv_bn_relu("cp.conv_head32", 128, 128, 3)
    out += _conv_bn_relu("cp.conv_head16", 128, 128, 3)
    out += _conv_bn_relu("cp.conv_avg", 512, 128, 1)
    out += _conv_bn_relu("ffm.convblk", 256, 256, 1)
    out += _conv("ffm.conv1", 256, 64, 1) + _conv("ffm.conv2", 64, 256, 1)
    for name, cin, cmid in (("conv_out", 256, 256), ("conv_out16", 128, 64), ("conv_out32", 128, 64)):
        out += _conv_bn_relu(f"{name}.conv", cin, cmid, 3)
        out += _conv(f"{name}.conv_out", cmid, num_class, 1)
    return out


def random_bisenet_state_dict(seed: int = 0, num_class: int = 19) -> dict[str, torch.Tensor]:
    """Plausible random values: He-scaled convs and BN statistics near identity, so activations stay finite."""
    gen = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    for name, shape in bisenet_key_shapes(num_class):
        if name.endswith("num_batches_tracked"):
            sd[name] = torch.tensor(1000, dtype=torch.int64)
        elif name.endswith("running_var"):
            sd[name] = 0.5 + torch.rand(shape, generator=gen)
        elif name.endswith("running_mean") or name.endswith("bias"):
            sd[name] = 0.1 * torch.randn(shape, generator=gen)
        elif len(shape) == 1:  # BN weight
            sd[name] = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        else:
            fan_in = shape[1] * shape[2] * shape[3]
            sd[name] = torch.randn(shape, generator=gen) * math.sqrt(2.0 / fan_in)
    return sd


def write_random_bisenet(path: Path | str, seed: int = 0) -> Path:
    """Write a random BiSeNet as facexlib's ``parsing_bisenet.pth`` would be: torch.save of a dict of tensors."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(random_bisenet_state_dict(seed), path)
    return path
