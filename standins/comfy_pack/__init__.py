"""Test-only ComfyUI node pack: tiny stand-in models built with ComfyUI's own model classes.

Never registered by Likeness itself: the tests, benchmarks and the stand-in demo link this folder into the
server's custom_nodes as ``likeness_standins``. Each node replaces one core loader of a user
workflow (UNETLoader, DualCLIPLoader, VAELoader, ControlNetLoader) and returns an object of the
same kind, so every other node of the workflow runs exactly as it would for a user.
Weights are random but seeded: the same seed gives the same model in every process.
"""

from __future__ import annotations

import hashlib
import logging

import comfy.controlnet
import comfy.latent_formats
import comfy.ldm.flux.controlnet
import comfy.model_management as mm
import comfy.model_patcher
import comfy.ops
import comfy.sd
import comfy.supported_models
import torch

log = logging.getLogger(__name__)

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


def tiny_flux_patcher(seed: int = 0, depth: int = 2, depth_single_blocks: int = 4) -> comfy.model_patcher.ModelPatcher:
    cfg = dict(TINY_FLUX, depth=depth, depth_single_blocks=depth_single_blocks)
    model_config = comfy.supported_models.Flux(cfg)
    model_config.set_inference_dtype(torch.float32, None)
    model = model_config.get_model({})
    _seeded_(model.diffusion_model, seed)
    return comfy.model_patcher.ModelPatcher(model, load_device=mm.get_torch_device(), offload_device=mm.unet_offload_device())


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


def tiny_vae(seed: int = 0) -> comfy.sd.VAE:
    """A real comfy.sd.VAE (AutoencoderKL, 16 latent channels, 8x) with 32 channels at every level (GroupNorm needs 32)."""
    ddconfig = {
        "double_z": True,
        "z_channels": 16,
        "resolution": 256,
        "in_channels": 3,
        "out_ch": 3,
        "ch": 32,
        "ch_mult": [1, 1, 1, 1],
        "num_res_blocks": 1,
        "attn_resolutions": [],
        "dropout": 0.0,
    }
    config = {"params": {"embed_dim": 16, "ddconfig": ddconfig}}
    from comfy.ldm.models.autoencoder import AutoencoderKL

    ref = _seeded_(AutoencoderKL(embed_dim=16, ddconfig=ddconfig), seed, std=0.1)
    vae = comfy.sd.VAE(sd=ref.state_dict(), config=config)
    vae.latent_channels = 16
    return vae


def tiny_union_controlnet(seed: int = 0, num_modes: int = 7):
    """A Flux ControlNet built the way core's load_controlnet_flux_instantx builds Union-Pro."""
    cfg = {k: v for k, v in TINY_FLUX.items() if k != "image_model"}
    cfg.update(depth=2, depth_single_blocks=2)
    operations = comfy.ops.disable_weight_init
    control_model = comfy.ldm.flux.controlnet.ControlNetFlux(
        latent_input=True,
        num_union_modes=num_modes,
        control_latent_channels=16,
        operations=operations,
        device=mm.unet_offload_device(),
        dtype=torch.float32,
        **cfg,
    )
    _seeded_(control_model, seed, std=0.1)
    if num_modes:
        # Distinct, large rows so that which mode reaches the model changes the image visibly.
        with torch.no_grad():
            gen = torch.Generator().manual_seed(seed + 1)
            control_model.controlnet_mode_embedder.weight.copy_(torch.randn(control_model.controlnet_mode_embedder.weight.shape, generator=gen))
    return comfy.controlnet.ControlNet(
        control_model,
        compression_ratio=1,
        latent_format=comfy.latent_formats.Flux(),
        concat_mask=False,
        load_device=mm.get_torch_device(),
        manual_cast_dtype=None,
        extra_conds=["y", "guidance"],
    )


_TIP = "Test stand-in: random seeded weights."


class LikenessTestTinyFlux:
    DESCRIPTION = "Test-only stand-in for UNETLoader: a tiny random Flux built with ComfyUI's Flux class."
    CATEGORY = "Likeness/testing"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {"seed": ("INT", {"default": 0, "min": 0, "max": 2**31, "tooltip": _TIP})},
            "optional": {
                "depth": ("INT", {"default": 2, "min": 1, "max": 19, "tooltip": "double blocks"}),
                "depth_single_blocks": ("INT", {"default": 4, "min": 1, "max": 38, "tooltip": "single blocks"}),
            },
        }

    def load(self, seed, depth=2, depth_single_blocks=4):
        return (tiny_flux_patcher(seed, depth, depth_single_blocks),)


class LikenessTestTinyTextEncoder:
    DESCRIPTION = "Test-only stand-in for DualCLIPLoader: Flux-shaped conditioning from a hash of the text."
    CATEGORY = "Likeness/testing"
    RETURN_TYPES = ("CLIP",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seed": ("INT", {"default": 0, "min": 0, "max": 2**31, "tooltip": _TIP})}}

    def load(self, seed):
        return (TinyFluxTextEncoder(seed),)


class LikenessTestTinyVAE:
    DESCRIPTION = "Test-only stand-in for VAELoader: a tiny AutoencoderKL with Flux's 16 latent channels."
    CATEGORY = "Likeness/testing"
    RETURN_TYPES = ("VAE",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seed": ("INT", {"default": 0, "min": 0, "max": 2**31, "tooltip": _TIP})}}

    def load(self, seed):
        return (tiny_vae(seed),)


class LikenessTestTinyUnionControlNet:
    DESCRIPTION = "Test-only stand-in for ControlNetLoader: a tiny Flux Union ControlNet (7 modes, or 0 like Union-Pro 2.0)."
    CATEGORY = "Likeness/testing"
    RETURN_TYPES = ("CONTROL_NET",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "seed": ("INT", {"default": 0, "min": 0, "max": 2**31, "tooltip": _TIP}),
                "num_modes": ("INT", {"default": 7, "min": 0, "max": 16, "tooltip": "rows of the mode embedding"}),
            }
        }

    def load(self, seed, num_modes):
        return (tiny_union_controlnet(seed, num_modes),)


class LikenessTestBadPixels:
    """Writes NaN or inf into a few pixels, as a broken upstream node (e.g. an fp16 VAE overflow) would."""

    CATEGORY = "Likeness/tests"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "spoil"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "value": (["nan", "inf", "-inf"],), "pixels": ("INT", {"default": 10, "min": 1})}}

    def spoil(self, image, value, pixels):
        out = image.clone()
        flat = out.view(-1)
        flat[: int(pixels)] = float(value)
        return (out,)


NODE_CLASS_MAPPINGS = {
    "LikenessTestBadPixels": LikenessTestBadPixels,
    "LikenessTestTinyFlux": LikenessTestTinyFlux,
    "LikenessTestTinyTextEncoder": LikenessTestTinyTextEncoder,
    "LikenessTestTinyVAE": LikenessTestTinyVAE,
    "LikenessTestTinyUnionControlNet": LikenessTestTinyUnionControlNet,
}
NODE_DISPLAY_NAME_MAPPINGS = {k: k.replace("LikenessTest", "Test stand-in: ") for k in NODE_CLASS_MAPPINGS}
