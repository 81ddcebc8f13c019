"""Tiny model configs shared by the unit tests (in-code, diffusers style)."""

import math
from pathlib import Path

import pytest
import torch
from likeness.pulid import PulidFluxConfig, build_pulid_flux

# A PuLID-Flux small enough for CPU unit tests: 6 CA modules for a Flux with 5 double / 9 single blocks.
UNIT_PULID = PulidFluxConfig(
    encoder_dim=64,
    encoder_depth=4,
    num_scales=2,
    encoder_heads=4,
    encoder_dim_head=16,
    ff_mult=4,
    num_queries=8,
    num_id_tokens=3,
    id_cond_dim=40,
    id_hidden_dim=32,
    vit_dim=24,
    mapping_hidden_dim=32,
    id_token_dim=48,
    num_ca=6,
    flux_dim=96,
    ca_heads=4,
    ca_dim_head=16,
)


REFERENCE = Path(__file__).resolve().parent / "reference"  # key/shape manifests of the official files (README there)


def read_manifest(name: str) -> dict[str, tuple[int, ...]]:
    """A key/shape manifest from tests/reference as {key: shape}."""
    path = REFERENCE / name
    if not path.is_file():
        pytest.fail(f"manifest not found at {path}")
    out = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, shape = line.split("\t")
        out[key] = tuple(int(s) for s in shape.strip("[] ").split(",") if s.strip())
    return out


def seeded_unit_pulid(seed: int = 0):
    """UNIT_PULID with seeded weights scaled so activations stay O(1)."""
    model = build_pulid_flux(UNIT_PULID)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[-1]))
    return model.eval()
