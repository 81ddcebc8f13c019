"""Flux block-replace patches that add the PuLID cross-attention residual to the image tokens.

Hook contract (ComfyUI 0.3.75 ``comfy/ldm/flux/model.py::forward_orig``, no comfy import here): a replace function
is called as ``fn(args, {"original_block": block_wrap})``. Double blocks get ``args`` with img, txt, vec, pe,
attn_mask, transformer_options and return ``{"img", "txt"}``; single blocks get img = concat(txt, img) and return
``{"img"}``. Newer releases add keys (e.g. ``transformer_options["img_slice"] = [txt_len, total_len]``), so
everything is read by key and passed through untouched. With Kontext reference latents the image stream also
carries the references' tokens after the generated image's; only the generated ones get the residual (tokens.py).

Injection points and formula per the official PuLID-Flux release (see shared/reference/README.md): after double
block i with i % 2 == 0 and after single block i with i % 4 == 0, ``img = img + weight * ca[n](id_tokens, img)``.
"""

from __future__ import annotations

import copy
import logging
import math
import weakref
from collections.abc import Callable, Mapping

import torch

from .errors import PulidInputError
from .model import PerceiverAttentionCA, PulidFlux
from .tokens import ImageTokenCounter, _grid_from_aspect, generated_span, mask_token_weights

__all__ = ["PulidBlockPatch", "ca_schedule", "flux_block_patches", "image_token_wrapper", "release_cast_cache"]

logger = logging.getLogger(__name__)

PatchFn = Callable[[dict, dict], dict]

# Per-model cache of CA modules cast to the sampler's device/dtype, shared by every Apply node that uses the same
# PulidFlux so two identities do not hold two GPU copies. Weak keys: dropping the model drops its copies.
_CA_CASTS: weakref.WeakKeyDictionary[PulidFlux, dict[int, tuple[torch.device, torch.dtype, PerceiverAttentionCA]]]
_CA_CASTS = weakref.WeakKeyDictionary()


def _cast_ca(pulid: PulidFlux, index: int, device: torch.device, dtype: torch.dtype) -> PerceiverAttentionCA:
    """CA ``index`` on ``device``/``dtype``: the module itself when it already is, else one cached copy."""
    ca = pulid.ca[index]
    p = ca.to_q.weight
    if p.device == device and p.dtype == dtype:
        return ca
    casts = _CA_CASTS.setdefault(pulid, {})
    hit = casts.get(index)
    if hit is not None and hit[0] == device and hit[1] == dtype:
        return hit[2]
    with torch.device("meta"):
        moved = PerceiverAttentionCA(ca.dim, ca.dim_head, ca.heads, ca.kv_dim)
    moved.load_state_dict({k: v.to(device=device, dtype=dtype) for k, v in ca.state_dict().items()}, assign=True)
    moved.eval().requires_grad_(False)
    casts[index] = (device, dtype, moved)
    return moved


def release_cast_cache(pulid: PulidFlux | None = None, keep_device: torch.device | str | None = None) -> None:
    """Free cast CA copies (all, or those not on ``keep_device``), e.g. when ComfyUI offloads patches."""
    models = [pulid] if pulid is not None else list(_CA_CASTS.keys())
    keep = torch.device(keep_device) if keep_device is not None else None
    for m in models:
        casts = _CA_CASTS.get(m)
        if not casts:
            continue
        for index in [i for i, (dev, _, _) in casts.items() if keep is None or not _same_device(dev, keep)]:
            del casts[index]


def _same_device(a: torch.device, b: torch.device) -> bool:
    """'cuda' and 'cuda:0' name the same device when the index is left out."""
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


def ca_schedule(
    num_double_blocks: int = 19,
    num_single_blocks: int = 38,
    double_interval: int = 2,
    single_interval: int = 4,
) -> dict[tuple[str, int], int]:
    """Which CA module follows which block: double blocks first, then single blocks, in block order."""
    if double_interval < 1 or single_interval < 1:
        raise ValueError("double_interval and single_interval must be >= 1")
    schedule: dict[tuple[str, int], int] = {}
    n = 0
    for i in range(0, num_double_blocks, double_interval):
        schedule[("double_block", i)] = n
        n += 1
    for i in range(0, num_single_blocks, single_interval):
        schedule[("single_block", i)] = n
        n += 1
    return schedule


def _match_batch(x: torch.Tensor, b: int, what: str) -> torch.Tensor:
    """1 broadcasts, a divisor repeats (ComfyUI stacks [cond..., uncond...] chunks of the same per-image order)."""
    if x.shape[0] == b:
        return x
    if x.shape[0] == 1:
        return x.expand(b, *x.shape[1:])
    if b % x.shape[0] == 0:
        return x.repeat(b // x.shape[0], *([1] * (x.dim() - 1)))
    raise PulidInputError(f"PuLID: {x.shape[0]} {what} cannot be matched to an image batch of {b}")


class _Injection:
    """State shared by all block patches of one Apply: the window decision, text length and cast id tokens."""

    def __init__(self, pulid: PulidFlux, id_tokens: torch.Tensor, weight: float, sigma_start: float, sigma_end: float,
                 mask: torch.Tensor | None = None, uncond_tokens: torch.Tensor | None = None):
        self.pulid = pulid
        self.id_tokens = id_tokens.detach()
        # Optional: per-token multiplier (B, H, W) and the tokens for rows ComfyUI marks uncond (true CFG).
        self.mask = mask.detach().float().cpu() if mask is not None else None
        self.uncond_tokens = uncond_tokens.detach() if uncond_tokens is not None else None
        self.grid: tuple[int, int] | None = None  # set by TokenGridProbe (post_input) on every forward
        self._mask_cache: dict[tuple, torch.Tensor] = {}
        self.weight = float(weight)
        self.sigma_start = float(sigma_start)
        self.sigma_end = float(sigma_end)
        self.txt_len: int | None = None
        self.image_tokens: int | None = None  # generated-image tokens of this forward (ImageTokenCounter)
        self._ids: dict[tuple[str, torch.device, torch.dtype], torch.Tensor] = {}
        self._last_sigmas: object = None
        self._last_active = True
        self._warned_no_sigma = False

    def active(self, transformer_options: Mapping) -> bool:
        """Inside [sigma_end, sigma_start]; decided once per forward (the sigmas object is the same for all blocks)."""
        sigmas = transformer_options.get("sigmas") if isinstance(transformer_options, Mapping) else None
        if sigmas is None:
            if not self._warned_no_sigma:
                logger.warning("PuLID: transformer_options has no 'sigmas'; applying at every step")
                self._warned_no_sigma = True
            return True
        if sigmas is self._last_sigmas:
            return self._last_active
        if isinstance(sigmas, torch.Tensor):
            sigma = float(sigmas.detach().max()) if sigmas.numel() else math.nan
        else:
            sigma = float(max(sigmas)) if isinstance(sigmas, (list, tuple)) else float(sigmas)
        self._last_sigmas = sigmas
        self._last_active = self.sigma_end <= sigma <= self.sigma_start
        return self._last_active

    def _cast(self, name: str, tokens: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        key = (name, img.device, img.dtype)
        out = self._ids.get(key)
        if out is None:
            out = tokens.to(device=img.device, dtype=img.dtype)
            self._ids[key] = out
        return out

    def ids_for(self, img: torch.Tensor, opts: Mapping | None = None) -> torch.Tensor:
        """ID tokens on img's device/dtype (cast once), batch-matched; with uncond tokens, the rows of the chunks
        ``transformer_options["cond_or_uncond"]`` marks 1 (uncond) get those instead."""
        b = img.shape[0]
        ids = _match_batch(self._cast("id", self.id_tokens, img), b, "ID-token sets")
        coc = opts.get("cond_or_uncond") if isinstance(opts, Mapping) and self.uncond_tokens is not None else None
        if not coc or 1 not in coc or b % len(coc):
            return ids
        rows = torch.tensor([c == 1 for c in coc], device=img.device).repeat_interleave(b // len(coc))
        un = _match_batch(self._cast("uncond", self.uncond_tokens, img), b, "uncond ID-token sets")
        return torch.where(rows[:, None, None], un, ids)

    def token_weights(self, img: torch.Tensor) -> torch.Tensor | float:
        """The residual's multiplier for these image tokens: ``weight``, times the mask per token when there is one.

        Kept apart from the block patch so other per-token restrictions can compose with it.
        """
        if self.mask is None:
            return self.weight
        b, n = img.shape[0], img.shape[1]
        grid = self.grid or _grid_from_aspect(n, self.mask)
        key = (grid, n, b, img.device, img.dtype)
        w = self._mask_cache.get(key)
        if w is None:
            w = _match_batch(mask_token_weights(self.mask, grid, n), b, "masks")
            w = (w * self.weight).to(device=img.device, dtype=img.dtype)
            self._mask_cache = {key: w}
        return w

    def residual(self, ca_index: int, img: torch.Tensor, opts: Mapping | None = None) -> torch.Tensor:
        ca = _cast_ca(self.pulid, ca_index, img.device, img.dtype)
        return ca(self.ids_for(img, opts), img).to(img.dtype)

    def weighted_residual(self, ca_index: int, img: torch.Tensor, opts: Mapping | None = None) -> torch.Tensor:
        return self.token_weights(img) * self.residual(ca_index, img, opts)

    def __deepcopy__(self, memo) -> _Injection:
        """Shared, never copied: ComfyUI deep-copies model_options on every ModelPatcher.clone()."""
        return self

    def drop_casts(self, device: torch.device | str) -> None:
        keep = torch.device(device)
        self._ids = {k: v for k, v in self._ids.items() if _same_device(k[1], keep)}
        self._mask_cache = {}
        release_cast_cache(self.pulid, keep_device=keep)


class PulidBlockPatch:
    """One replace function; an object (not a closure) so ComfyUI's ``model_patches_to`` can call ``.to``."""

    def __init__(
        self,
        injection: _Injection,
        block_type: str,
        block_index: int,
        ca_index: int,
        previous: PatchFn | None = None,
    ):
        self.injection = injection
        self.block_type = block_type
        self.block_index = block_index
        self.ca_index = ca_index
        self.previous = previous

    def __call__(self, args: dict, extra: dict) -> dict:
        inj = self.injection
        if self.block_type == "double_block" and isinstance(args.get("txt"), torch.Tensor):
            inj.txt_len = int(args["txt"].shape[1])  # single blocks of this forward need it
        if self.previous is not None:
            out = self.previous(args, extra)
        else:
            out = extra["original_block"](args)
        opts = args.get("transformer_options") or {}
        if inj.weight == 0.0 or not inj.active(opts):
            return out
        img = out["img"]
        start, end = self._image_range(opts, img.shape[1])
        if (start, end) == (0, img.shape[1]):
            new_img = img + inj.weighted_residual(self.ca_index, img, opts)
        else:  # text (single blocks) and Kontext reference tokens stay untouched; the mask covers the generated grid
            part = img[:, start:end]
            part = part + inj.weighted_residual(self.ca_index, part, opts)
            new_img = torch.cat((img[:, :start], part, img[:, end:]), dim=1)
        result = dict(out)
        result["img"] = new_img
        return result

    def _image_range(self, opts: Mapping, length: int) -> tuple[int, int]:
        """[start, end) of the generated image's tokens in this block's sequence (see tokens.generated_span)."""
        inj = self.injection
        return generated_span(self.block_type, length, inj.txt_len, inj.image_tokens, opts)

    def to(self, *args, **kwargs) -> PulidBlockPatch:
        """ComfyUI moves patches to the load device before sampling and to the offload device after: drop GPU
        copies then. Dtype-only moves are ignored because casting follows the image tokens anyway."""
        device = kwargs.get("device")
        for a in args:
            if isinstance(a, (torch.device, str)):
                device = a
        if device is not None:
            self.injection.drop_casts(device)
        if self.previous is not None and hasattr(self.previous, "to"):
            self.previous = self.previous.to(*args, **kwargs)
        return self

    def __deepcopy__(self, memo) -> PulidBlockPatch:
        """ComfyUI deep-copies model_options on every ModelPatcher.clone(); copying the PuLID model and ID tokens
        each time would cost gigabytes, so a copy shares the injection and only copies the chain of patches."""
        return PulidBlockPatch(
            self.injection, self.block_type, self.block_index, self.ca_index, copy.deepcopy(self.previous, memo)
        )

    def __repr__(self) -> str:
        chained = ", after a previous patch" if self.previous is not None else ""
        return f"PulidBlockPatch({self.block_type} {self.block_index} -> ca {self.ca_index}{chained})"


def flux_block_patches(
    pulid: PulidFlux,
    id_tokens: torch.Tensor,
    weight: float,
    sigma_start: float,
    sigma_end: float,
    num_double_blocks: int = 19,
    num_single_blocks: int = 38,
    previous: Mapping[tuple[str, int], PatchFn] | None = None,
    double_interval: int = 2,
    single_interval: int = 4,
    mask: torch.Tensor | None = None,
    uncond_tokens: torch.Tensor | None = None,
) -> dict[tuple[str, int], PulidBlockPatch]:
    """Replace functions keyed like ComfyUI's ``patches_replace["dit"]``, to be merged over the existing ones.

    ``previous`` holds replace functions already installed at the same keys (another Apply node); each is called
    first and the PuLID residual is added to its output. ``sigma_start >= sigma_end`` are sigmas (not percents):
    the patch applies while ``sigma_end <= sigma <= sigma_start``. ``mask`` (B, H, W) multiplies the residual per
    image token (install ``token_grid_probe(patches)`` as a post_input patch so it knows the token grid);
    ``uncond_tokens`` go to the rows marked uncond in ``transformer_options["cond_or_uncond"]``.
    """
    if id_tokens.dim() == 2:
        id_tokens = id_tokens.unsqueeze(0)
    if id_tokens.dim() != 3 or id_tokens.shape[-1] != pulid.config.id_token_dim:
        raise ValueError(f"PuLID: id_tokens must be (B, K, {pulid.config.id_token_dim}), got {tuple(id_tokens.shape)}")
    schedule = ca_schedule(num_double_blocks, num_single_blocks, double_interval, single_interval)
    if len(schedule) > len(pulid.ca):
        raise ValueError(
            f"PuLID: {num_double_blocks} double / {num_single_blocks} single blocks at intervals "
            f"{double_interval}/{single_interval} need {len(schedule)} CA modules, the model has {len(pulid.ca)}"
        )
    if sigma_start < sigma_end:
        logger.warning("PuLID: sigma_start %s < sigma_end %s, the patch will never apply", sigma_start, sigma_end)
    if uncond_tokens is not None and uncond_tokens.shape[-2:] != id_tokens.shape[-2:]:
        raise PulidInputError(f"PuLID: uncond tokens {tuple(uncond_tokens.shape)} do not match id tokens {tuple(id_tokens.shape)}")
    injection = _Injection(pulid, id_tokens, weight, sigma_start, sigma_end, mask, uncond_tokens)
    previous = previous or {}
    return {
        key: PulidBlockPatch(injection, key[0], key[1], ca_index, previous.get(key))
        for key, ca_index in schedule.items()
    }


def image_token_wrapper(patches: Mapping[tuple[str, int], PulidBlockPatch]) -> ImageTokenCounter:
    """The diffusion-model wrapper that tells these patches which tokens are the generated image (Kontext)."""
    injections = {id(p.injection): p.injection for p in patches.values()}
    if len(injections) != 1:
        raise ValueError("PuLID: image_token_wrapper needs the patches of one flux_block_patches call")
    return ImageTokenCounter(next(iter(injections.values())))
