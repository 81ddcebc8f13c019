"""Tiny Flux config, deterministic seeding and the Flux-shaped text encoder shared by the stand-in modules."""

from __future__ import annotations

import hashlib

import torch

# Tiny Flux: same class and wrapper ComfyUI builds for flux1-dev, scaled down (public config fields
# of comfy.ldm.flux.model.FluxParams). pe_dim = hidden/heads = 32 = sum(axes_dim).
TINY_FLUX = dict(
    image_model="flux",
    in_channels=16,
    out_channels=16,
    vec_in_dim=32,
    context_in_dim=48,
    hidden_size=64,
    mlp_ratio=4.0,
    num_heads=2,
    depth=2,
    depth_single_blocks=4,
    axes_dim=[8, 12, 12],
    theta=10000,
    patch_size=2,
    qkv_bias=True,
    guidance_embed=True,
)
TEXT_TOKENS = 8


def _seeded_(module: torch.nn.Module, seed: int, std: float = 0.05) -> torch.nn.Module:
    """Fill every parameter/buffer deterministically (ComfyUI's ops skip weight init)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in sorted(module.state_dict(keep_vars=True).items()):
            if not torch.is_floating_point(tensor):
                continue
            if name.endswith(".scale") or ("norm" in name and name.endswith("weight")):
                tensor.copy_(1.0 + 0.1 * torch.randn(tensor.shape, generator=gen))
            else:
                tensor.copy_(std * torch.randn(tensor.shape, generator=gen))
    return module


class TinyFluxTextEncoder:
    """Duck-typed CLIP: core CLIPTextEncode calls tokenize() then encode_from_tokens_scheduled().

    Conditioning is Flux-shaped (context (1, T, 48), pooled (1, 32)) and a pure function of the text.
    """

    def __init__(self, seed: int = 0):
        self.seed = seed

    def clone(self):
        return TinyFluxTextEncoder(self.seed)

    def tokenize(self, text, return_word_ids=False, **kwargs):
        return {"text": text}

    def _encode(self, text: str):
        digest = hashlib.sha256(f"{self.seed}:{text}".encode()).digest()
        gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))
        cond = torch.randn((1, TEXT_TOKENS, TINY_FLUX["context_in_dim"]), generator=gen)
        pooled = torch.randn((1, TINY_FLUX["vec_in_dim"]), generator=gen)
        return cond, pooled

    def encode_from_tokens(self, tokens, return_pooled=False, return_dict=False):
        cond, pooled = self._encode(tokens["text"])
        if return_dict:
            return {"cond": cond, "pooled_output": pooled}
        return (cond, pooled) if return_pooled else cond

    def encode_from_tokens_scheduled(self, tokens, unprojected=False, add_dict=None, show_pbar=True):
        cond, pooled = self._encode(tokens["text"])
        return [[cond, {"pooled_output": pooled, **(add_dict or {})}]]
