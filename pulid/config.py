"""Shape configuration of a PuLID-Flux weights file.

Defaults follow the official PuLID-Flux v0.9.x release (layout per the official PuLID-Flux release, see
shared/reference/README.md and pulid_flux_v0.9.x.keys.tsv).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PulidFluxConfig:
    """Every size a PuLID-Flux state dict can vary in; frozen so it can key caches and compare with ``==``."""

    # ID encoder ("IDFormer")
    encoder_dim: int = 1024  # width of the latent tokens
    encoder_depth: int = 10  # attention+FF layers in total
    num_scales: int = 5  # EVA hidden states / mapping MLPs; layers run in num_scales groups
    encoder_heads: int = 16
    encoder_dim_head: int = 64
    ff_mult: int = 4
    num_queries: int = 32  # learned query tokens, also the number of output ID tokens
    num_id_tokens: int = 5  # tokens made from id_cond by id_embedding_mapping
    id_cond_dim: int = 1280  # ArcFace 512 + EVA class embedding 768
    id_hidden_dim: int = 1024  # hidden width of id_embedding_mapping
    vit_dim: int = 1024  # width of each EVA hidden state
    mapping_hidden_dim: int = 1024  # hidden width of mapping_i
    id_token_dim: int = 2048  # output width of proj_out == kv width of every CA module
    # cross-attention modules ("PerceiverAttentionCA")
    num_ca: int = 20
    flux_dim: int = 3072  # Flux hidden size (image tokens)
    ca_heads: int = 16
    ca_dim_head: int = 128

    @classmethod
    def official(cls) -> PulidFluxConfig:
        """The layout of pulid_flux_v0.9.0 / v0.9.1.safetensors."""
        return cls()

    @property
    def depth_per_scale(self) -> int:
        return self.encoder_depth // self.num_scales

    @property
    def encoder_inner_dim(self) -> int:
        return self.encoder_heads * self.encoder_dim_head

    @property
    def ca_inner_dim(self) -> int:
        return self.ca_heads * self.ca_dim_head

    def validate(self) -> None:
        """Reject configs no module could be built from, before any allocation."""
        for name, value in asdict(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"PulidFluxConfig.{name} must be a positive int, got {value!r}")
        if self.encoder_depth % self.num_scales:
            raise ValueError(
                f"PulidFluxConfig: encoder_depth {self.encoder_depth} is not a multiple of num_scales {self.num_scales}"
            )
