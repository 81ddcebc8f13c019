"""Which tokens of a Flux block's image stream belong to the image being generated.

With FLUX.1 Kontext (core ``ReferenceLatent``) ComfyUI 0.3.75 appends each reference latent's tokens after the
generated image's tokens (``comfy/ldm/flux/model.py::Flux._forward``: ``img = cat([img, kontext])``), and cuts the
output back to the first ``img_tokens`` tokens. PuLID must change the generated tokens only: a residual on the
reference tokens would alter the picture the edit copies from.

The count is learned through a stable contract, a ``WrappersMP.DIFFUSION_MODEL`` wrapper that takes and forwards
``*args, **kwargs`` untouched; its first argument is the noisy latent ``x`` (B, C, H, W) of every Flux-family
``forward`` (Flux, Chroma), from which ``_forward`` derives the image token count with the same rounding used here.
No comfy import: the wrapper only reads ``executor.class_obj.patch_size``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F

from .errors import PulidInputError

__all__ = [
    "ImageTokenCounter",
    "TokenGridProbe",
    "generated_span",
    "image_token_count",
    "image_token_grid",
    "mask_token_weights",
    "token_grid_probe",
]


def image_token_count(latent_shape, patch_size: int) -> int:
    """Tokens of a (…, H, W) latent after Flux patchify (ComfyUI pads to the patch size, hence the rounding)."""
    h, w = int(latent_shape[-2]), int(latent_shape[-1])
    p = max(int(patch_size), 1)
    return ((h + p // 2) // p) * ((w + p // 2) // p)


def generated_span(
    block_type: str, length: int, txt_len: int | None, image_tokens: int | None, opts: Mapping | None
) -> tuple[int, int]:
    """[start, end) of the generated image's tokens in a block's ``img`` sequence of ``length`` tokens.

    Double blocks carry image tokens only (generated first, then references); single blocks carry text first
    (``img_slice`` names where the image part starts when ComfyUI provides it). ``image_tokens`` None means no
    wrapper ran (e.g. an old caller): every image token is treated as generated, as before Kontext existed.
    Raises RuntimeError when a single block cannot tell text from image.
    """
    if block_type == "double_block":
        start, end = 0, length
    else:
        start, end = _single_image_range(length, txt_len, opts)
    if image_tokens is not None:
        end = min(end, start + int(image_tokens))
    return start, end


def _single_image_range(length: int, txt_len: int | None, opts: Mapping | None) -> tuple[int, int]:
    sl = opts.get("img_slice") if isinstance(opts, Mapping) else None
    if isinstance(sl, slice):
        return sl.indices(length)[:2]
    if isinstance(sl, (list, tuple)) and len(sl) >= 2:
        return int(sl[0]), int(sl[1])
    if txt_len is None:
        raise RuntimeError(
            "PuLID: single block called before any double block of this forward; cannot tell text tokens "
            "from image tokens"
        )
    return txt_len, length


class ImageTokenCounter:
    """Diffusion-model wrapper: records the generated image's token count on the injection for one forward.

    Accepts and forwards any arguments, so it composes with other wrappers (EasyCache, TorchCompileModel's,
    other packs'); the count is cleared afterwards so a stale value never reaches another model's forward.
    """

    def __init__(self, injection):
        self.injection = injection

    def __call__(self, executor, *args, **kwargs):
        x = args[0] if args else kwargs.get("x")
        patch_size = getattr(getattr(executor, "class_obj", None), "patch_size", 1)
        shape = getattr(x, "shape", None)
        previous = self.injection.image_tokens
        self.injection.image_tokens = image_token_count(shape, patch_size) if shape is not None and len(shape) >= 3 else None
        try:
            return executor(*args, **kwargs)
        finally:
            self.injection.image_tokens = previous

    def __deepcopy__(self, memo) -> ImageTokenCounter:
        """Shares the injection, like the block patches (ComfyUI deep-copies options on clone)."""
        return self

    def __repr__(self) -> str:
        return "ImageTokenCounter(PuLID generated-image tokens)"


# The region mask (issue: masked multi-ID): the generated image's token grid and per-token weights.


def image_token_grid(img_ids: torch.Tensor) -> tuple[int, int]:
    """(rows, cols) of the generated image's token grid from Flux's position ids (B, T, axes).

    The generated image comes first, row-major, with axis 0 constant, axis 1 the row and axis 2 the column
    (``process_img``); Kontext reference latents follow with another axis-0 index or rows/columns offset past the
    grid, so the grid ends at the first row that breaks that pattern.
    """
    ids = img_ids[0].detach().float()
    t = ids.shape[0]
    same_row = (ids[:, 1] == ids[0, 1]).int()
    w = int(same_row.cumprod(0).sum())
    rows = ids[: (t // w) * w].reshape(-1, w, ids.shape[1])
    ok = (rows[:, :, 0] == ids[0, 0]).all(1) & (rows[:, :, 2] == rows[0, :, 2]).all(1) & (rows[:, :, 1] == rows[:, :1, 1]).all(1)
    return int(ok.int().cumprod(0).sum()), w


def mask_token_weights(mask: torch.Tensor, grid: tuple[int, int], n_tokens: int) -> torch.Tensor:
    """A (B, H, W) mask as one weight per image token (B, n_tokens, 1): area-resized to the token grid (each token
    is a 2x2 patch of latents), so a token whose pixels are all 0 gets exactly 0; tokens past the grid (Kontext
    reference latents) get 0."""
    h, w = grid
    m = mask.detach().float()
    m = m[None] if m.dim() == 2 else m
    per = F.interpolate(m[:, None].clamp(0, 1), size=(h, w), mode="area").flatten(1)  # (B, h*w)
    if n_tokens < h * w:
        raise PulidInputError(f"PuLID: {n_tokens} image tokens cannot hold the {h}x{w} token grid of the mask")
    if n_tokens > h * w:
        per = torch.cat((per, per.new_zeros(per.shape[0], n_tokens - h * w)), 1)
    return per[:, :, None]


def _grid_from_aspect(n_tokens: int, mask: torch.Tensor) -> tuple[int, int]:
    """Fallback when no position ids were seen: the factorisation of n_tokens closest to the mask's aspect."""
    aspect = mask.shape[-2] / mask.shape[-1]
    pairs = [(h, n_tokens // h) for h in range(1, n_tokens + 1) if n_tokens % h == 0]
    return min(pairs, key=lambda p: abs(math.log((p[0] / p[1]) / aspect)))


class TokenGridProbe:
    """A ``post_input`` patch that reads the token grid of the image being generated from Flux's position ids.

    ComfyUI calls post_input patches with {img, txt, img_ids, txt_ids} after the input projections and uses the
    returned dict; this one returns it untouched.
    """

    def __init__(self, injection):
        self.injection = injection

    def __call__(self, args: dict) -> dict:
        ids = args.get("img_ids")
        if isinstance(ids, torch.Tensor) and ids.dim() == 3 and ids.shape[1] > 0:
            self.injection.grid = image_token_grid(ids)
        return args

    def to(self, *args, **kwargs) -> TokenGridProbe:
        return self

    def __deepcopy__(self, memo) -> TokenGridProbe:
        return self


def token_grid_probe(patches: Mapping) -> TokenGridProbe:
    """The post_input patch that goes with ``patches`` (one per Apply: each knows its own injection)."""
    return TokenGridProbe(next(iter(patches.values())).injection)
