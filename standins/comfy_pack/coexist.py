"""Test-only stand-in for another node pack that patches the same Flux blocks as PuLID.

Many packs (other PuLID ports, attention-couple, regional prompting) install a ``patches_replace["dit"]`` function
at a Flux block with ``set_model_patch_replace``, calling ``original_block`` and changing its image output. This one
does the same at double block 0 and single block 0 (both also PuLID injection points) and adds a fixed, visible
change to the image tokens, so a test can tell whether it ran.
"""

from __future__ import annotations

import torch

BLOCKS = (("double_block", 0), ("single_block", 0))


class OtherPackBlockPatch:
    """Calls the block (or the patch that was there), then nudges its image output; does not chain itself."""

    def __init__(self, strength: float):
        self.strength = float(strength)

    def __call__(self, args, extra):
        out = extra["original_block"](args)
        img = out["img"]
        return {**out, "img": img + self.strength * torch.tanh(img)}


class LikenessTestOtherPackPatch:
    DESCRIPTION = "Test-only: another pack's block replace patch at double block 0 and single block 0."
    CATEGORY = "Likeness/testing"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL",),
                "strength": ("FLOAT", {"default": 0.3, "min": -2.0, "max": 2.0, "tooltip": "size of the change"}),
            }
        }

    def patch(self, model, strength):
        m = model.clone()
        for block, index in BLOCKS:
            m.set_model_patch_replace(OtherPackBlockPatch(strength), "dit", block, index)
        return (m,)


NODE_CLASS_MAPPINGS = {"LikenessTestOtherPackPatch": LikenessTestOtherPackPatch}
