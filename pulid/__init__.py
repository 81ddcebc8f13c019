"""PuLID-Flux in pure PyTorch: ID encoder, per-block cross-attention, strict loading and Flux block patches.

Imported both as top-level ``pulid`` (tests) and as ``likeness.pulid`` (ComfyUI), hence relative imports only.
"""

from .config import PulidFluxConfig
from .errors import PulidInputError
from .fusion import FUSIONS, fuse_id_tokens
from .loading import PulidCheckpointError, detect_config, expected_shapes, load_pulid_flux, load_pulid_flux_file
from .model import IDFormer, PerceiverAttention, PerceiverAttentionCA, PulidFlux, build_pulid_flux, id_cond_from
from .patch import PulidBlockPatch, ca_schedule, flux_block_patches, image_token_wrapper, release_cast_cache
from .tokens import (
    ImageTokenCounter,
    TokenGridProbe,
    generated_span,
    image_token_count,
    image_token_grid,
    mask_token_weights,
    token_grid_probe,
)

# The reference pipeline (pulid.reference: resize, detection retries, encoding, ID cache) uses face/ and eva_clip/;
# import it as ``likeness.pulid.reference``.
__all__ = [
    "FUSIONS",
    "IDFormer",
    "ImageTokenCounter",
    "PerceiverAttention",
    "PerceiverAttentionCA",
    "PulidBlockPatch",
    "PulidCheckpointError",
    "PulidFlux",
    "PulidFluxConfig",
    "PulidInputError",
    "TokenGridProbe",
    "build_pulid_flux",
    "ca_schedule",
    "detect_config",
    "expected_shapes",
    "flux_block_patches",
    "fuse_id_tokens",
    "image_token_grid",
    "generated_span",
    "id_cond_from",
    "image_token_count",
    "image_token_wrapper",
    "load_pulid_flux",
    "load_pulid_flux_file",
    "mask_token_weights",
    "release_cast_cache",
    "token_grid_probe",
]
