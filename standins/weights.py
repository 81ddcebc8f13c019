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


# Tiny EVA tower and PuLID-Flux in the official key layouts, sized for the tiny Flux (hidden 64).
TINY_EVA = dict(image_size=56, patch_size=14, width=64, depth=6, heads=4, mlp_hidden=170, out_dim=32)


def write_tiny_eva(path: Path, seed: int = 0) -> Path:
    """EVA02 visual tower keys with the official 'visual.' prefix (rope tables omitted, as files may)."""
    from ..eva_clip import EvaClipConfig, expected_shapes

    gen = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in sorted(expected_shapes(EvaClipConfig(**TINY_EVA)).items()):
        if "rope." in key:
            continue
        base = 1.0 if ("norm" in key or "ln" in key) and key.endswith("weight") else 0.0
        sd[f"visual.{key}"] = (base + 0.05 * torch.randn(shape, generator=gen)).contiguous()
    save_file(sd, str(path))
    return Path(path)


def tiny_pulid_config(flux_dim: int = 64, num_ca: int = 2):
    from ..pulid import PulidFluxConfig

    return PulidFluxConfig(
        encoder_dim=32, encoder_depth=10, num_scales=5, encoder_heads=2, encoder_dim_head=16, ff_mult=4,
        num_queries=8, num_id_tokens=2, id_cond_dim=512 + TINY_EVA["out_dim"], id_hidden_dim=32,
        vit_dim=TINY_EVA["width"], mapping_hidden_dim=32, id_token_dim=48, num_ca=num_ca, flux_dim=flux_dim,
        ca_heads=2, ca_dim_head=16,
    )


def write_tiny_pulid(path: Path, seed: int = 0, flux_dim: int = 64, num_ca: int = 2, std: float = 0.2) -> Path:
    from ..pulid import build_pulid_flux

    model = build_pulid_flux(tiny_pulid_config(flux_dim, num_ca))
    gen = torch.Generator().manual_seed(seed)
    sd = {}
    for k, v in model.state_dict().items():
        base = 1.0 if "norm" in k and k.endswith("weight") else 0.0
        sd[k] = (base + std * torch.randn(v.shape, generator=gen)).contiguous()
    save_file(sd, str(path))
    return Path(path)
