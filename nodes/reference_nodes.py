"""Reference latents for edit models (FLUX.2, FLUX.1 Kontext): one per reference image, through core's contract."""

from __future__ import annotations

from . import comfy_adapter as host
from .types import CATEGORY


class LikenessReferenceLatents:
    DESCRIPTION = (
        "Give an edit model (FLUX.2 [dev], FLUX.1 Kontext) one reference latent per image of a batch, exactly as "
        "chaining core Reference Latent once per image would: each image is VAE-encoded on its own and appended to "
        "the conditioning's reference_latents. Use it for several reference face crops."
    )
    CATEGORY = f"{CATEGORY}/conditioning"
    RETURN_TYPES = ("CONDITIONING",)
    RETURN_NAMES = ("conditioning",)
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "conditioning": ("CONDITIONING", {"tooltip": "The prompt conditioning (after Flux Guidance)."}),
                "vae": ("VAE", {"tooltip": "The model's VAE (flux2-vae for FLUX.2, ae for Kontext)."}),
                "images": ("IMAGE", {"tooltip": "Reference images, e.g. the cropped reference faces; a batch gives one reference each."}),
                "max_references": ("INT", {"default": 4, "min": 1, "max": 10, "tooltip": "Refuse more references than this (each one adds a latent's worth of tokens to every step)."}),
            }
        }

    def apply(self, conditioning, vae, images, max_references):
        n = int(images.shape[0])
        if n > max_references:
            raise ValueError(f"{n} reference images but max_references is {max_references}: raise it or pass fewer images")
        latents = [host.vae_encode(vae, images[i : i + 1]) for i in range(n)]
        return (host.append_reference_latents(conditioning, latents),)
