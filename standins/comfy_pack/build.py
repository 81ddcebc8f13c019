"""The one stand-in builder: ComfyUI's own Flux-family, ControlNet and VAE classes with random seeded weights.

Tests use the tiny shapes (hidden 64, so the suite is fast); benchmarks use the same functions at Flux-dev's
head size and text widths (``bench_flux_config``), so a benchmark times the code path a test proves. Dtypes
follow core UNETLoader's ``weight_dtype`` through the same ``comfy.model_management`` calls (float32 on the
CPU), and weights are generated on the load device, then left on the offload device as a loader leaves them.
"""

from __future__ import annotations

import hashlib

import comfy.controlnet
import comfy.latent_formats
import comfy.ldm.flux.controlnet
import comfy.model_management as mm
import comfy.model_patcher
import comfy.ops
import comfy.sd
import comfy.supported_models
import torch

WEIGHT_DTYPES = ["default", "fp8_e4m3fn", "fp8_e4m3fn_fast"]  # core UNETLoader's choices
BENCH_HEAD_DIM = 128  # flux1-dev: 3072 / 24 heads; rope axes [16, 56, 56] sum to it
BENCH_CONTEXT_DIM, BENCH_POOLED_DIM = 4096, 768  # T5-XXL and CLIP-L widths that flux1-dev's txt_in / vector_in take


def flux_config(hidden_size: int = 64, num_heads: int = 2, depth: int = 2, depth_single_blocks: int = 4,
                context_dim: int = 48, pooled_dim: int = 32, axes_dim=(8, 12, 12)) -> dict:
    """A Flux unet config (public fields of comfy.ldm.flux.model.FluxParams); the defaults are the tiny test Flux."""
    if hidden_size % num_heads or hidden_size // num_heads != sum(axes_dim):
        raise ValueError(f"hidden_size {hidden_size} / {num_heads} heads must equal the rope axes' sum {sum(axes_dim)}")
    return dict(
        image_model="flux", in_channels=16, out_channels=16, vec_in_dim=pooled_dim, context_in_dim=context_dim,
        hidden_size=hidden_size, mlp_ratio=4.0, num_heads=num_heads, depth=depth,
        depth_single_blocks=depth_single_blocks, axes_dim=list(axes_dim), theta=10000, patch_size=2, qkv_bias=True,
        guidance_embed=True,
    )  # fmt: skip


def bench_flux_config(hidden_size: int, depth: int, depth_single_blocks: int) -> dict:
    """Flux-dev's head size and text widths at a chosen width and depth (3072, 19, 38 is the full flux1-dev shape)."""
    if hidden_size % BENCH_HEAD_DIM:
        raise ValueError(f"hidden_size {hidden_size} must be a multiple of {BENCH_HEAD_DIM} (Flux-dev's head size)")
    return flux_config(hidden_size, hidden_size // BENCH_HEAD_DIM, depth, depth_single_blocks,
                       BENCH_CONTEXT_DIM, BENCH_POOLED_DIM, (16, 56, 56))  # fmt: skip


TINY_FLUX = flux_config()
TEXT_TOKENS = 8


def fill_(module: torch.nn.Module, seed: int, std: float | str = 0.05) -> torch.nn.Module:
    """Every floating parameter/buffer from one seeded generator on the module's device (ComfyUI's ops skip init).

    Norm weights and scales are near 1; the rest ``std`` x N(0, 1), or with ``std="fan_in"`` min(0.05, 1/sqrt(fan in))
    so activations of a wide model stay finite.
    """
    tensors = sorted(module.state_dict(keep_vars=True).items())
    device = next((t.device for _, t in tensors), torch.device("cpu"))
    gen = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, t in tensors:
            if not torch.is_floating_point(t):
                continue
            noise = torch.randn(t.shape, generator=gen, device=device, dtype=torch.float32)
            if name.endswith(".scale") or ("norm" in name and name.endswith("weight")):
                t.copy_(1.0 + 0.1 * noise)
            elif std == "fan_in":
                t.copy_((min(0.05, t.shape[-1] ** -0.5) if t.ndim >= 2 else 0.02) * noise)
            else:
                t.copy_(std * noise)
            del noise
    return module


def _materialise(module: torch.nn.Module, seed: int, std, load_device, offload_device) -> torch.nn.Module:
    """A module built on the meta device gets its memory on the load device (fast on a GPU), weights, then moves."""
    module.to_empty(device=load_device)
    fill_(module, seed, std)
    return module.to(offload_device)


def unet_dtypes(weight_dtype: str, supported, load_device):
    """(dtype, manual cast dtype) as core UNETLoader picks them for ``weight_dtype``."""
    if weight_dtype not in WEIGHT_DTYPES:
        raise ValueError(f"weight_dtype {weight_dtype!r}: one of {WEIGHT_DTYPES}")
    dtype = mm.unet_dtype(model_params=0, supported_dtypes=list(supported)) if weight_dtype == "default" else torch.float8_e4m3fn
    return dtype, mm.unet_manual_cast(dtype, load_device, supported)


def model_patcher(config_cls, unet_config: dict, seed: int = 0, weight_dtype: str = "default", std: float | str = 0.05,
                  meta_only: bool = False) -> comfy.model_patcher.ModelPatcher:
    """A MODEL of ``config_cls`` (a comfy.supported_models class) as UNETLoader would return it.

    ``meta_only``: real class and widths on the meta device, no memory, never sampled (for Apply-time checks).
    """
    load_device, offload_device = mm.get_torch_device(), mm.unet_offload_device()
    model_config = config_cls(dict(unet_config))
    dtype, manual_cast = unet_dtypes(weight_dtype, model_config.supported_inference_dtypes, load_device)
    model_config.set_inference_dtype(dtype, manual_cast)
    if weight_dtype == "fp8_e4m3fn_fast":
        model_config.optimizations["fp8"] = True
    model = model_config.get_model({}, "", device=torch.device("meta"))
    if not meta_only:
        _materialise(model.diffusion_model, seed, std, load_device, offload_device)
        model.device = None  # as a loader leaves it; ModelPatcher sets the offload device
    return comfy.model_patcher.ModelPatcher(model, load_device=load_device, offload_device=offload_device)


def flux_patcher(unet_config: dict = TINY_FLUX, seed: int = 0, weight_dtype: str = "default", std: float | str = 0.05):
    return model_patcher(comfy.supported_models.Flux, unet_config, seed, weight_dtype, std)


def union_controlnet(unet_config: dict = TINY_FLUX, seed: int = 0, num_modes: int = 7, depth: int = 2,
                     depth_single_blocks: int = 2, std: float | str = 0.1) -> comfy.controlnet.ControlNet:
    """A Flux Union ControlNet built the way core's load_controlnet_flux_instantx builds Union-Pro (v1: 10 modes)."""
    load_device, offload_device = mm.get_torch_device(), mm.unet_offload_device()
    supported = list(comfy.supported_models.Flux.supported_inference_dtypes)
    dtype = mm.unet_dtype(model_params=-1, supported_dtypes=supported)  # core's choice for a file without a dtype hint
    manual_cast = mm.unet_manual_cast(dtype, load_device)
    cfg = {k: v for k, v in unet_config.items() if k != "image_model"}
    cfg.update(depth=depth, depth_single_blocks=depth_single_blocks)
    control_model = comfy.ldm.flux.controlnet.ControlNetFlux(
        latent_input=True, num_union_modes=num_modes, control_latent_channels=16,
        operations=comfy.ops.pick_operations(dtype, manual_cast, disable_fast_fp8=True),
        device=torch.device("meta"), dtype=dtype, **cfg,
    )  # fmt: skip
    _materialise(control_model, seed, std, load_device, offload_device)
    if num_modes:  # distinct, large rows, so which mode reaches the model changes the image visibly
        with torch.no_grad():
            rows = control_model.controlnet_mode_embedder.weight
            rows.copy_(torch.randn(rows.shape, generator=torch.Generator().manual_seed(seed + 1)))
    return comfy.controlnet.ControlNet(
        control_model, compression_ratio=1, latent_format=comfy.latent_formats.Flux(), concat_mask=False,
        load_device=load_device, manual_cast_dtype=manual_cast, extra_conds=["y", "guidance"],
    )  # fmt: skip


def vae(seed: int = 0, z_channels: int = 16, batch_norm_latent: bool = False) -> comfy.sd.VAE:
    """A real comfy.sd.VAE (AutoencoderKL, 8x) with 32 channels at every level (GroupNorm needs 32).

    ``batch_norm_latent``: FLUX.2's layout, whose batch-norm latent is patchified 2x2 (4 x z channels at 16x).
    """
    from comfy.ldm.models.autoencoder import AutoencoderKL

    ddconfig = {
        "double_z": True, "z_channels": z_channels, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 32,
        "ch_mult": [1, 1, 1, 1], "num_res_blocks": 1, "attn_resolutions": [], "dropout": 0.0,
    }  # fmt: skip
    if batch_norm_latent:
        ddconfig["batch_norm_latent"] = True
    ref = fill_(AutoencoderKL(embed_dim=z_channels, ddconfig=ddconfig), seed, std=0.1)
    out = comfy.sd.VAE(sd=ref.state_dict(), config={"params": {"embed_dim": z_channels, "ddconfig": ddconfig}})
    out.latent_channels = z_channels
    if batch_norm_latent:  # an identity batch norm (fresh statistics), the 2x2 patchified latent at 16x
        with torch.no_grad():
            out.first_stage_model.bn.running_mean.zero_()
            out.first_stage_model.bn.running_var.fill_(1.0)
        out.latent_channels, out.downscale_ratio, out.upscale_ratio = z_channels * 4, 16, 16
    return out


class HashTextEncoder:
    """Duck-typed CLIP: core CLIPTextEncode calls tokenize() then encode_from_tokens_scheduled().

    Conditioning is a pure function of the text: context (1, tokens, context_dim) and pooled (1, pooled_dim), or
    no pooled output (``pooled_dim=None``, as FLUX.2's Mistral encoder gives none).
    """

    def __init__(self, seed: int = 0, tokens: int = TEXT_TOKENS, context_dim: int = 48, pooled_dim: int | None = 32):
        self.seed, self.tokens, self.context_dim, self.pooled_dim = seed, tokens, context_dim, pooled_dim

    def clone(self):
        return HashTextEncoder(self.seed, self.tokens, self.context_dim, self.pooled_dim)

    def tokenize(self, text, return_word_ids=False, **kwargs):
        return {"text": text}

    def _encode(self, text: str):
        digest = hashlib.sha256(f"{self.seed}:{text}".encode()).digest()
        gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))
        cond = torch.randn((1, self.tokens, self.context_dim), generator=gen)
        return cond, torch.randn((1, self.pooled_dim), generator=gen) if self.pooled_dim else None

    def encode_from_tokens(self, tokens, return_pooled=False, return_dict=False):
        cond, pooled = self._encode(tokens["text"])
        if return_dict:
            return {"cond": cond, "pooled_output": pooled}
        return (cond, pooled) if return_pooled else cond

    def encode_from_tokens_scheduled(self, tokens, unprojected=False, add_dict=None, show_pbar=True):
        cond, pooled = self._encode(tokens["text"])
        return [[cond, {"pooled_output": pooled, **(add_dict or {})}]]
