"""Test-only stand-ins for other base-model families, built with ComfyUI 0.3.75's own model classes.

Runnable tiny models (random seeded weights): FLUX.1 schnell and Krea [dev] (comfy.supported_models.FluxSchnell /
Flux; Krea loads as the same class as dev), Chroma (comfy/ldm/chroma through supported_models.Chroma) and FLUX.2
(supported_models.Flux2: 128 latent channels, patch 1, global modulation, 4 rope axes), plus FLUX.2's VAE
(AutoencoderKL with the batch-norm latent, 16x) and a text encoder without a pooled output.
Families PuLID-Flux must refuse (SD3, SDXL, Qwen-Image, full-size FLUX.2 [dev]) are built at their real published
configs on the "meta" device: the class and widths are real, no memory is used, and they are never sampled.
"""

from __future__ import annotations

import comfy.supported_models

from .build import TINY_FLUX, HashTextEncoder, model_patcher, vae
from .nodes import SeededLoader

TINY_CHROMA = dict(
    image_model="chroma", in_channels=64, out_channels=64, context_in_dim=48, hidden_size=64, mlp_ratio=4.0,
    num_heads=2, depth=2, depth_single_blocks=4, axes_dim=[8, 12, 12], theta=10000, patch_size=2, qkv_bias=True,
    in_dim=64, out_dim=64, hidden_dim=32, n_layers=2,
)  # fmt: skip
# FLUX.2 layout as comfy/model_detection.py sets it for a flux2 checkpoint, scaled down (hidden 128 = 2 x 64).
FLUX2_FIXED = dict(
    image_model="flux2", in_channels=128, out_channels=128, vec_in_dim=None, mlp_ratio=3.0, theta=2000,
    patch_size=1, qkv_bias=False, guidance_embed=True, global_modulation=True, mlp_silu_act=True, ops_bias=False,
    default_ref_method="index", ref_index_scale=10.0,
)  # fmt: skip
TINY_FLUX2 = dict(FLUX2_FIXED, context_in_dim=48, hidden_size=128, num_heads=2, depth=1, depth_single_blocks=2,
                  axes_dim=[16, 16, 16, 16])  # fmt: skip
# FLUX.2 [dev] at its published size: 8 double / 48 single blocks, 6144 wide (48 heads x 128), Mistral-3 context.
FULL_FLUX2 = dict(FLUX2_FIXED, context_in_dim=15360, hidden_size=6144, num_heads=48, depth=8, depth_single_blocks=48,
                  axes_dim=[32, 32, 32, 32])  # fmt: skip
FULL_SD3 = dict(
    in_channels=16, patch_size=2, out_channels=16, depth=24, input_size=None, adm_in_channels=2048,
    context_embedder_config={"target": "torch.nn.Linear", "params": {"in_features": 4096, "out_features": 1536}},
    num_patches=36864, pos_embed_max_size=192, pos_embed_scaling_factor=None, x_block_self_attn_layers=[],
)  # fmt: skip
FULL_SDXL = dict(
    use_checkpoint=False, image_size=32, out_channels=4, use_spatial_transformer=True, legacy=False,
    num_classes="sequential", adm_in_channels=2816, in_channels=4, model_channels=320, num_res_blocks=[2, 2, 2],
    transformer_depth=[0, 0, 2, 2, 10, 10], channel_mult=[1, 2, 4], transformer_depth_middle=10,
    use_linear_in_transformer=True, context_dim=2048, num_head_channels=64,
    transformer_depth_output=[0, 0, 0, 2, 2, 2, 10, 10, 10], use_temporal_attention=False, use_temporal_resblock=False,
)  # fmt: skip
FULL_QWEN_IMAGE = dict(image_model="qwen_image", in_channels=64, num_layers=60)

FAMILIES = {
    "krea": (comfy.supported_models.Flux, TINY_FLUX, False),
    "flux_schnell": (comfy.supported_models.FluxSchnell, dict(TINY_FLUX, guidance_embed=False), False),
    "chroma": (comfy.supported_models.Chroma, TINY_CHROMA, False),
    "flux2": (comfy.supported_models.Flux2, TINY_FLUX2, False),
    "flux2_dev_full_size": (comfy.supported_models.Flux2, FULL_FLUX2, True),
    "sd3": (comfy.supported_models.SD3, FULL_SD3, True),
    "sdxl": (comfy.supported_models.SDXL, FULL_SDXL, True),
    "qwen_image": (comfy.supported_models.QwenImage, FULL_QWEN_IMAGE, True),
}


def family_patcher(family: str, seed: int = 0):
    """A MODEL of ``family`` as UNETLoader would return it (meta families are for Apply-time checks only)."""
    config_cls, unet_config, meta = FAMILIES[family]
    return model_patcher(config_cls, unet_config, seed, meta_only=meta)


class LikenessTestTinyFamily(SeededLoader):
    DESCRIPTION = "Test-only stand-in for UNETLoader: another base-model family built with ComfyUI's own class."
    RETURN_TYPES = ("MODEL",)
    REQUIRED_EXTRA = {"family": (list(FAMILIES), {"tooltip": "meta-device families are for Apply-time checks only"})}

    @classmethod
    def INPUT_TYPES(cls):  # family first, as saved graphs list it
        types = super().INPUT_TYPES()
        types["required"] = {"family": types["required"].pop("family"), **types["required"]}
        return types

    @staticmethod
    def make(seed, family):
        return family_patcher(family, seed)


class LikenessTestTinyFlux2VAE(SeededLoader):
    DESCRIPTION = "Test-only stand-in for VAELoader with flux2-vae: 128 latent channels at 16x (batch-norm latent, 2x2)."
    RETURN_TYPES = ("VAE",)

    @staticmethod
    def make(seed):
        return vae(seed, z_channels=32, batch_norm_latent=True)


class LikenessTestTinyFlux2TextEncoder(SeededLoader):
    DESCRIPTION = "Test-only stand-in for CLIPLoader (type flux2): context from a hash of the text, no pooled output."
    RETURN_TYPES = ("CLIP",)

    @staticmethod
    def make(seed):
        return HashTextEncoder(seed, pooled_dim=None)  # as ComfyUI gives a text encoder without a pooled output


NODE_CLASS_MAPPINGS = {
    "LikenessTestTinyFamily": LikenessTestTinyFamily,
    "LikenessTestTinyFlux2VAE": LikenessTestTinyFlux2VAE,
    "LikenessTestTinyFlux2TextEncoder": LikenessTestTinyFlux2TextEncoder,
}
