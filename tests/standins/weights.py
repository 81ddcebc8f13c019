"""Tiny model files in official key layouts, written for tests (never shipped)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file


def seeded_state_dict(module: torch.nn.Module, seed: int, std: float = 0.05) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {k: (std * torch.randn(v.shape, generator=gen)).to(v.dtype).contiguous() for k, v in module.state_dict().items()}


def write_tiny_esrgan(path: Path, seed: int = 0) -> Path:
    """An ESRGAN x4 with 8 filters and 1 RRDB block in the old key layout that spandrel detects."""
    from spandrel.architectures.ESRGAN import ESRGAN

    model = ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=4)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(seeded_state_dict(model, seed), str(path))
    return path
