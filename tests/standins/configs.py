"""Tiny model configs shared by the unit tests (in-code, diffusers style)."""

from pulid import PulidFluxConfig

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
