"""PuLID-Flux in pure PyTorch: ID encoder, per-block cross-attention, strict loading and Flux block patches.

Imported both as top-level ``pulid`` (tests) and as ``likeness.pulid`` (ComfyUI), hence relative imports only.
"""

from .config import PulidFluxConfig
from .loading import PulidCheckpointError, detect_config, expected_shapes, load_pulid_flux, load_pulid_flux_file
from .model import IDFormer, PerceiverAttention, PerceiverAttentionCA, PulidFlux, build_pulid_flux, id_cond_from
from .patch import PulidBlockPatch, ca_schedule, flux_block_patches, image_token_wrapper, release_cast_cache
from .tokens import ImageTokenCounter, generated_span, image_token_count

__all__ = [
    "IDFormer",
    "ImageTokenCounter",
    "PerceiverAttention",
    "PerceiverAttentionCA",
    "PulidBlockPatch",
    "PulidCheckpointError",
    "PulidFlux",
    "PulidFluxConfig",
    "build_pulid_flux",
    "ca_schedule",
    "detect_config",
    "expected_shapes",
    "flux_block_patches",
    "generated_span",
    "id_cond_from",
    "image_token_count",
    "image_token_wrapper",
    "load_pulid_flux",
    "load_pulid_flux_file",
    "release_cast_cache",
]
