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

from collections.abc import Mapping

__all__ = ["ImageTokenCounter", "generated_span", "image_token_count"]


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
