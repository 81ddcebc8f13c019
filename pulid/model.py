"""PuLID-Flux ID encoder and per-block cross-attention, written from the public architecture facts.

Layout per the official PuLID-Flux release, see shared/reference/README.md and
shared/reference/pulid_flux_v0.9.x.keys.tsv: the parameter names below are the loading contract, so module
attribute names and ``nn.Sequential`` indices are chosen to reproduce that key list exactly.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

import torch
from torch import nn

from .config import PulidFluxConfig

__all__ = [
    "FeedForward",
    "IDFormer",
    "PerceiverAttention",
    "PerceiverAttentionCA",
    "PulidFlux",
    "build_pulid_flux",
    "id_cond_from",
]


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, L, heads*d) -> (B, heads, L, d); head h owns channels h*d .. (h+1)*d - 1."""
    b, n, _ = x.shape
    return x.reshape(b, n, heads, -1).transpose(1, 2)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, dim_head: int) -> torch.Tensor:
    """Multi-head attention with the PuLID scaling: q and k each times dim_head**-0.25, softmax in float32.

    Scaling both operands (instead of the product) is what the reference does; it keeps bf16 logits in range.
    """
    b, n, _ = q.shape
    q, k, v = (_split_heads(t, heads) for t in (q, k, v))
    scale = 1.0 / math.sqrt(math.sqrt(dim_head))
    logits = (q * scale) @ (k * scale).transpose(-2, -1)
    weight = torch.softmax(logits.float(), dim=-1).to(logits.dtype)
    out = weight @ v
    return out.transpose(1, 2).reshape(b, n, heads * dim_head)


class PerceiverAttention(nn.Module):
    """Encoder attention: latents attend over concat(context, latents).

    ``to_kv`` packs keys then values along its output dim (first half k, second half v), as in the reference.
    """

    def __init__(self, dim: int, dim_head: int, heads: int, kv_dim: int | None = None):
        super().__init__()
        kv_dim = dim if kv_dim is None else kv_dim
        self.dim, self.dim_head, self.heads, self.kv_dim = dim, dim_head, heads, kv_dim
        inner = heads * dim_head
        self.norm1 = nn.LayerNorm(kv_dim)  # context (the ID tokens in the Flux blocks)
        self.norm2 = nn.LayerNorm(dim)  # latents (the image tokens in the Flux blocks)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(kv_dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def _keys_values_from(self, context: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        return torch.cat((context, latents), dim=-2)

    def forward(self, context: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        context = self.norm1(context)
        latents = self.norm2(latents)
        q = self.to_q(latents)
        k, v = self.to_kv(self._keys_values_from(context, latents)).chunk(2, dim=-1)
        return self.to_out(_attend(q, k, v, self.heads, self.dim_head))


def FeedForward(dim: int, mult: int = 4) -> nn.Sequential:  # noqa: N802 - reads like the module it builds
    """LayerNorm -> Linear -> GELU -> Linear; the Sequential indices (0, 1, 3) are the manifest's key names.

    Assumption: exact (erf) GELU, torch's default; the manifest cannot tell the activation.
    """
    inner = dim * mult
    return nn.Sequential(
        nn.LayerNorm(dim),
        nn.Linear(dim, inner, bias=False),
        nn.GELU(),
        nn.Linear(inner, dim, bias=False),
    )


def _mapping_mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    """Linear/LayerNorm/LeakyReLU x2 then Linear: key indices 0,1,3,4,6 in the manifest.

    Assumption (manifest is silent on parameter-free layers): indices 2 and 5 are LeakyReLU with torch's
    default slope 0.01, per the reference README, for both id_embedding_mapping and mapping_i.
    """
    return nn.Sequential(
        nn.Linear(in_dim, hidden),
        nn.LayerNorm(hidden),
        nn.LeakyReLU(),
        nn.Linear(hidden, hidden),
        nn.LayerNorm(hidden),
        nn.LeakyReLU(),
        nn.Linear(hidden, out_dim),
    )


class IDFormer(nn.Module):
    """Turns (id_cond, EVA hidden states) into ``num_queries`` ID tokens of width ``id_token_dim``."""

    def __init__(self, config: PulidFluxConfig):
        super().__init__()
        c = config
        self.config = c
        self.num_queries = c.num_queries
        self.num_id_tokens = c.num_id_tokens
        self.num_scales = c.num_scales
        self.depth_per_scale = c.depth_per_scale
        self.dim = c.encoder_dim
        self.latents = nn.Parameter(torch.randn(1, c.num_queries, c.encoder_dim) / c.encoder_dim**0.5)
        self.proj_out = nn.Parameter(torch.randn(c.encoder_dim, c.id_token_dim) * c.encoder_dim**-0.5)
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    PerceiverAttention(c.encoder_dim, c.encoder_dim_head, c.encoder_heads),
                    FeedForward(c.encoder_dim, c.ff_mult),
                ]
            )
            for _ in range(c.encoder_depth)
        )
        for i in range(c.num_scales):
            self.add_module(f"mapping_{i}", _mapping_mlp(c.vit_dim, c.mapping_hidden_dim, c.encoder_dim))
        self.id_embedding_mapping = _mapping_mlp(c.id_cond_dim, c.id_hidden_dim, c.encoder_dim * c.num_id_tokens)

    def forward(self, id_cond: torch.Tensor, vit_hidden: Sequence[torch.Tensor]) -> torch.Tensor:
        """id_cond (B, id_cond_dim), vit_hidden num_scales x (B, T, vit_dim) -> (B, num_queries, id_token_dim).

        Inputs are moved to the weights' device/dtype because ArcFace/EVA usually run in fp32 elsewhere.
        """
        if len(vit_hidden) != self.num_scales:
            raise ValueError(f"IDFormer expects {self.num_scales} EVA hidden states, got {len(vit_hidden)}")
        ref = self.latents
        x = id_cond.to(device=ref.device, dtype=ref.dtype)
        if x.dim() == 1:
            x = x.unsqueeze(0)
        b = x.shape[0]
        id_tokens = self.id_embedding_mapping(x).reshape(b, self.num_id_tokens, self.dim)
        latents = torch.cat((self.latents.expand(b, -1, -1), id_tokens), dim=1)
        for i in range(self.num_scales):
            hidden = vit_hidden[i].to(device=ref.device, dtype=ref.dtype)
            context = torch.cat((id_tokens, getattr(self, f"mapping_{i}")(hidden)), dim=1)
            for attn, ff in self.layers[i * self.depth_per_scale : (i + 1) * self.depth_per_scale]:
                latents = attn(context, latents) + latents
                latents = ff(latents) + latents
        return latents[:, : self.num_queries] @ self.proj_out


class PerceiverAttentionCA(PerceiverAttention):
    """Flux image tokens (queries) attend over the ID tokens only; returns the residual to add to the image tokens.

    forward(id_tokens (B, K, kv_dim), img_tokens (B, N, dim)) -> (B, N, dim); same keys as the encoder attention.
    """

    def __init__(self, dim: int = 3072, dim_head: int = 128, heads: int = 16, kv_dim: int = 2048):
        super().__init__(dim, dim_head, heads, kv_dim)

    def _keys_values_from(self, context: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        return context


class PulidFlux(nn.Module):
    """Both halves of a PuLID-Flux file; attribute names make ``state_dict()`` keys equal the file's keys."""

    def __init__(self, config: PulidFluxConfig | None = None):
        super().__init__()
        config = PulidFluxConfig.official() if config is None else config
        config.validate()
        self.config = config
        self.pulid_encoder = IDFormer(config)
        self.pulid_ca = nn.ModuleList(
            PerceiverAttentionCA(config.flux_dim, config.ca_dim_head, config.ca_heads, config.id_token_dim)
            for _ in range(config.num_ca)
        )

    @property
    def encoder(self) -> IDFormer:
        return self.pulid_encoder

    @property
    def ca(self) -> nn.ModuleList:
        return self.pulid_ca

    def forward(self, id_cond: torch.Tensor, vit_hidden: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.pulid_encoder(id_cond, vit_hidden)


def build_pulid_flux(
    config: PulidFluxConfig | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> PulidFlux:
    """Construct directly on ``device`` (``"meta"`` allocates nothing) so loading never holds two copies."""
    with torch.device(device) if device is not None else contextlib.nullcontext():
        model = PulidFlux(config)
    if dtype is not None:
        model = model.to(dtype=dtype)
    return model


def id_cond_from(arcface: torch.Tensor, eva_cls: torch.Tensor) -> torch.Tensor:
    """concat(ArcFace embedding, L2-normalised EVA class embedding), the encoder's id_cond.

    The reference divides the EVA embedding by its L2 norm and leaves the ArcFace embedding unnormalised.
    """
    if arcface.dim() == 1:
        arcface = arcface.unsqueeze(0)
    if eva_cls.dim() == 1:
        eva_cls = eva_cls.unsqueeze(0)
    eva_cls = eva_cls.to(arcface.device, arcface.dtype)
    eva_cls = eva_cls / eva_cls.norm(p=2, dim=1, keepdim=True)
    return torch.cat((arcface, eva_cls), dim=-1)
