"""The one error type this package raises for a file or state dict that is not the expected EVA tower."""

from __future__ import annotations

from collections.abc import Iterable

from ..common.errors import LikenessError

EXPECTED = (
    "an EVA02-CLIP visual tower: visual.cls_token, visual.pos_embed, visual.patch_embed.proj.weight, "
    "visual.blocks.N.attn.q_proj.weight / q_bias / v_bias / inner_attn_ln, visual.blocks.N.mlp.w1 / w2 / ffn_ln / w3, "
    "visual.norm, visual.head (the 'visual.' prefix is optional)"
)
FIX = (
    "use EVA02_CLIP_L_336_psz14_s6B.pt (QuanSun/EVA-CLIP, the file PuLID loads), not an OpenAI CLIP, "
    "SigLIP or Hugging Face CLIPVision file"
)


class EvaClipCheckpointError(LikenessError, ValueError):
    """Raised instead of a raw KeyError/RuntimeError so a node can tell the user which file is wrong and why."""

    def __init__(self, source: str, found: str, *, expected: str = EXPECTED, fix: str = FIX):
        self.source = source
        self.found = found
        self.expected = expected
        self.fix = fix
        super().__init__(f"{source}: not a usable EVA-CLIP checkpoint. Expected {expected}. Found: {found}. Fix: {fix}.")


def first_few(items: Iterable[str], n: int = 5) -> str:
    """Keeps messages readable when hundreds of keys are wrong."""
    items = list(items)
    shown = ", ".join(items[:n])
    return f"{shown} (+{len(items) - n} more)" if len(items) > n else shown
