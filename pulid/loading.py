"""Config detection and strict, typed-error loading of PuLID-Flux weight files.

The key/shape contract is the official release's (layout per the official PuLID-Flux release, see
shared/reference/pulid_flux_v0.9.x.keys.tsv); shapes are derived by building the model on the meta device so the
model code is the single source of truth.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Mapping

import torch

from ..common.errors import LikenessError
from ..common.layout import compare, listed
from ..common.weights import WeightsReadError, read_weights
from .config import PulidFluxConfig
from .model import PulidFlux, build_pulid_flux

__all__ = [
    "PulidCheckpointError",
    "detect_config",
    "expected_shapes",
    "load_pulid_flux",
    "load_pulid_flux_file",
]

logger = logging.getLogger(__name__)

ENCODER_PREFIX = "pulid_encoder."
CA_PREFIX = "pulid_ca."
OFFICIAL_FILE = "pulid_flux_v0.9.1.safetensors"
EXPECTED = "Expected: a PuLID-Flux file has pulid_encoder.* and pulid_ca.<n>.* keys"
_SAFETENSORS_EXT = (".safetensors", ".sft")
_PICKLE_EXT = (".pt", ".pth", ".bin", ".ckpt")


class PulidCheckpointError(LikenessError, ValueError):
    """A file or state dict that is not a loadable PuLID-Flux checkpoint; the message says what to do."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        missing: list[str] | None = None,
        unexpected: list[str] | None = None,
        misshapen: list[tuple[str, tuple[int, ...], tuple[int, ...]]] | None = None,
    ):
        super().__init__(message)
        self.path = path
        self.missing = missing or []
        self.unexpected = unexpected or []
        self.misshapen = misshapen or []


def _what(path: str | None) -> str:
    return f"PuLID-Flux file '{path}'" if path else "PuLID-Flux state dict"


@functools.lru_cache(maxsize=8)
def _expected_shapes_cached(config: PulidFluxConfig) -> tuple[tuple[str, tuple[int, ...]], ...]:
    model = build_pulid_flux(config, device="meta")
    return tuple((k, tuple(v.shape)) for k, v in model.state_dict().items())


def expected_shapes(config: PulidFluxConfig) -> dict[str, tuple[int, ...]]:
    """Key -> shape that a file of this config must have, in state-dict order."""
    return dict(_expected_shapes_cached(config))


# ---------------------------------------------------------------------------------------------- detection


def _indices(keys, prefix: str) -> set[int]:
    pat = re.compile(re.escape(prefix) + r"(\d+)\.")
    return {int(m.group(1)) for k in keys if (m := pat.match(k))}


def _dim(sd: Mapping[str, torch.Tensor], key: str, axis: int, fallback: int) -> int:
    """Shape lookup that falls back to the official value, so a missing key is reported by validation instead."""
    t = sd.get(key)
    if isinstance(t, torch.Tensor) and t.dim() > axis:
        return int(t.shape[axis])
    return fallback


def _heads(inner: int, official_heads: int, official_dim_head: int, override: int | None) -> tuple[int, int]:
    """Head count is invisible in the shapes (only heads*dim_head is); keep the official 16 heads when it divides."""
    if override is not None:
        if inner % override:
            raise ValueError(f"inner width {inner} is not divisible by {override} heads")
        return override, inner // override
    if inner % official_heads == 0:
        return official_heads, inner // official_heads
    if inner % official_dim_head == 0:
        return inner // official_dim_head, official_dim_head
    return 1, inner


def detect_config(
    state_dict: Mapping[str, torch.Tensor],
    *,
    encoder_heads: int | None = None,
    ca_heads: int | None = None,
) -> PulidFluxConfig:
    """Read every size from the shapes (spandrel style); a size whose key is absent falls back to the official one.

    Only the head split cannot be read from shapes: the official 16 heads are assumed unless overridden.
    Detection never validates; ``load_pulid_flux`` does that against the detected config.
    """
    sd, off = state_dict, PulidFluxConfig.official()
    keys, e, c = list(sd.keys()), ENCODER_PREFIX, CA_PREFIX

    encoder_dim = _dim(sd, e + "latents", 2, off.encoder_dim)
    num_queries = _dim(sd, e + "latents", 1, off.num_queries)
    id_token_dim = _dim(sd, e + "proj_out", 1, off.id_token_dim)
    layer_ids = _indices(keys, e + "layers.")
    encoder_depth = max(layer_ids) + 1 if layer_ids else off.encoder_depth
    scale_ids = {int(m.group(1)) for k in keys if (m := re.match(re.escape(e) + r"mapping_(\d+)\.", k))}
    num_scales = max(scale_ids) + 1 if scale_ids else off.num_scales
    enc_inner = _dim(sd, e + "layers.0.0.to_q.weight", 0, off.encoder_inner_dim)
    enc_heads, enc_dim_head = _heads(enc_inner, off.encoder_heads, off.encoder_dim_head, encoder_heads)
    ff_hidden = _dim(sd, e + "layers.0.1.1.weight", 0, encoder_dim * off.ff_mult)
    ff_mult = max(1, ff_hidden // encoder_dim) if encoder_dim else off.ff_mult
    id_cond_dim = _dim(sd, e + "id_embedding_mapping.0.weight", 1, off.id_cond_dim)
    id_hidden_dim = _dim(sd, e + "id_embedding_mapping.0.weight", 0, off.id_hidden_dim)
    id_out = _dim(sd, e + "id_embedding_mapping.6.weight", 0, encoder_dim * off.num_id_tokens)
    num_id_tokens = max(1, id_out // encoder_dim) if encoder_dim else off.num_id_tokens
    vit_dim = _dim(sd, e + "mapping_0.0.weight", 1, off.vit_dim)
    mapping_hidden_dim = _dim(sd, e + "mapping_0.0.weight", 0, off.mapping_hidden_dim)

    ca_ids = _indices(keys, c)
    num_ca = max(ca_ids) + 1 if ca_ids else off.num_ca
    first = min(ca_ids) if ca_ids else 0
    flux_dim = _dim(sd, f"{c}{first}.norm2.weight", 0, off.flux_dim)
    ca_inner = _dim(sd, f"{c}{first}.to_q.weight", 0, off.ca_inner_dim)
    ca_h, ca_dim_head = _heads(ca_inner, off.ca_heads, off.ca_dim_head, ca_heads)

    depth_ok = encoder_depth % num_scales == 0
    return PulidFluxConfig(
        encoder_dim=encoder_dim,
        encoder_depth=encoder_depth if depth_ok else off.encoder_depth,
        num_scales=num_scales if depth_ok else off.num_scales,
        encoder_heads=enc_heads,
        encoder_dim_head=enc_dim_head,
        ff_mult=ff_mult,
        num_queries=num_queries,
        num_id_tokens=num_id_tokens,
        id_cond_dim=id_cond_dim,
        id_hidden_dim=id_hidden_dim,
        vit_dim=vit_dim,
        mapping_hidden_dim=mapping_hidden_dim,
        id_token_dim=id_token_dim,
        num_ca=num_ca,
        flux_dim=flux_dim,
        ca_heads=ca_h,
        ca_dim_head=ca_dim_head,
    )


# ---------------------------------------------------------------------------------------------- validation


def _guess_layout(keys: list[str]) -> str:
    """Name the file people most often pick by mistake, so the error can say which file to get instead."""
    tops = {k.split(".", 1)[0] for k in keys}
    get = f"download {OFFICIAL_FILE} (ToTheBeginning/PuLID on Hugging Face) into models/pulid"
    if tops & {"id_adapter", "id_adapter_attn_layers"} or {"image_proj", "ip_adapter"} <= tops:
        return f"this looks like a PuLID SDXL file (keys id_adapter.* / ip_adapter.*); {get}"
    if "ip_adapter" in tops:
        return f"this looks like an IP-Adapter file (keys ip_adapter.*); {get}"
    if any(k.startswith("visual.") for k in keys) or ({"patch_embed", "blocks"} <= tops):
        return f"this looks like the EVA02-CLIP vision tower, which is loaded separately; {get}"
    if {"double_blocks", "single_blocks"} & tops or any(".double_blocks." in k for k in keys[:50]):
        return f"this looks like a Flux diffusion model, not the PuLID add-on; {get}"
    return f"this does not look like a PuLID-Flux checkpoint; {get}"


def _check_kinds(sd: Mapping[str, torch.Tensor], path: str | None) -> None:
    """A flat dict of tensors holding both halves (ID encoder and cross-attention modules), or a clear error."""
    keys = list(sd.keys())
    bad = [k for k in keys if not isinstance(k, str) or not isinstance(sd[k], torch.Tensor)]
    if bad:
        raise PulidCheckpointError(
            f"{_what(path)}: not a flat dict of tensors. {EXPECTED}. Found: non-tensor entries "
            f"{listed([str(k) for k in bad])}. Use the unmodified {OFFICIAL_FILE}.",
            path=path,
        )
    has_enc = any(k.startswith(ENCODER_PREFIX) for k in keys)
    has_ca = any(k.startswith(CA_PREFIX) for k in keys)
    if not has_enc and not has_ca:
        found = listed(keys) if keys else "no tensors at all"
        raise PulidCheckpointError(
            f"{_what(path)}: not a PuLID-Flux checkpoint. {EXPECTED}. Found: {len(keys)} other keys ({found}). "
            f"Fix: {_guess_layout(keys)}.",
            path=path,
            unexpected=keys,
        )
    if not has_enc or not has_ca:
        absent = ENCODER_PREFIX if not has_enc else CA_PREFIX
        raise PulidCheckpointError(
            f"{_what(path)}: incomplete PuLID-Flux checkpoint. {EXPECTED}. Found: no {absent}* keys at all. "
            f"Fix: use the complete {OFFICIAL_FILE}.",
            path=path,
            missing=[absent + "*"],
        )



def _validate(sd: Mapping[str, torch.Tensor], config: PulidFluxConfig | None, path: str | None) -> PulidFluxConfig:
    _check_kinds(sd, path)
    if config is not None:
        config.validate()
        candidates = [config]
    else:
        candidates = [detect_config(sd)]
        if candidates[0] != PulidFluxConfig.official():
            # A single bad tensor can skew detection (e.g. a misshapen latents); comparing against the official
            # layout too lets the report name that tensor instead of everything derived from it.
            candidates.append(PulidFluxConfig.official())
    best = None
    for cand in candidates:
        try:
            cand.validate()
        except ValueError:
            continue
        probs = compare(sd, expected_shapes(cand))
        if not probs:
            return cand
        if best is None or probs.size < best[1].size:
            best = (cand, probs)
    if best is None:  # detected nonsense sizes and an explicit config was invalid: validate() raised above
        raise PulidCheckpointError(f"{_what(path)}: {EXPECTED}; its shapes fit no valid layout.", path=path)
    cand, probs = best
    layout = "the official layout" if cand == PulidFluxConfig.official() else f"the layout {cand}"
    raise PulidCheckpointError(
        f"{_what(path)}: does not match {layout}. {EXPECTED}. Found: {probs.describe()}. "
        f"Fix: the file is damaged or a different version; re-download {OFFICIAL_FILE}.",
        path=path,
        missing=probs.missing,
        unexpected=probs.unexpected,
        misshapen=probs.misshapen,
    )


# ---------------------------------------------------------------------------------------------- loading


def _unwrap(sd):
    """Accept the common {"state_dict": {...}} wrapper that training scripts write."""
    if isinstance(sd, Mapping) and "state_dict" in sd and isinstance(sd["state_dict"], Mapping):
        if not any(isinstance(k, str) and k.startswith((ENCODER_PREFIX, CA_PREFIX)) for k in sd):
            return sd["state_dict"]
    return sd


def load_pulid_flux(
    state_dict: Mapping[str, torch.Tensor],
    *,
    config: PulidFluxConfig | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    path: str | None = None,
) -> PulidFlux:
    """Validate, detect the config, and load strictly without a second copy of the weights.

    The model is built on the meta device and the (converted) tensors are assigned in place of its parameters,
    so peak memory is the state dict itself. ``device="meta"`` turns every tensor into a meta tensor: a shape-only
    load for checks. ``dtype=None`` keeps the file's dtype, promoting to float32 if the file mixes dtypes.
    ``path`` only improves error messages.
    """
    sd = _unwrap(state_dict)
    if not isinstance(sd, Mapping):
        raise PulidCheckpointError(
            f"{_what(path)}: not a state dict. {EXPECTED}. Found: a {type(sd).__name__}.", path=path
        )
    cfg = _validate(sd, config, path)

    if dtype is None:
        dtypes = {t.dtype for t in sd.values()}
        if len(dtypes) == 1 and next(iter(dtypes)).is_floating_point:
            dtype = next(iter(dtypes))
        else:
            dtype = torch.float32
            logger.info("%s mixes dtypes %s; loading as float32", _what(path), sorted(map(str, dtypes)))
    model = build_pulid_flux(cfg, device="meta")
    tensors = {}
    for k, t in sd.items():
        t = t.to(device=device, dtype=dtype) if device is not None else t.to(dtype=dtype)
        tensors[k] = t
    model.load_state_dict(tensors, strict=True, assign=True)
    model.eval().requires_grad_(False)
    logger.debug("loaded %s with %s", _what(path), cfg)
    return model


def _read_file(path: str) -> Mapping[str, torch.Tensor]:
    """Read through the pack's one safe weights reader (common/weights.py); say what to do about each failure."""
    try:
        return read_weights(path, _SAFETENSORS_EXT + _PICKLE_EXT)
    except WeightsReadError as err:
        if err.kind == "suffix":
            raise PulidCheckpointError(
                f"{_what(path)}: unsupported file type. Expected: a .safetensors (or .pt/.pth/.bin) file. Found: extension "
                f"'{os.path.splitext(path)[1] or '(none)'}'. Fix: use {OFFICIAL_FILE}.",
                path=path,
            ) from err
        if err.kind == "refused":
            found = (f"a pickle that would import and call {err.global_name} when unpickled" if err.global_name
                     else f"a stream that is not a pickle of plain tensors ({err.detail})")
            raise PulidCheckpointError(
                f"{_what(path)}: refused. Expected: plain tensors only. Found: {found}. Pickles are only read with "
                f"torch.load(weights_only=True), which refuses arbitrary Python objects because unpickling them can "
                f"run code. Fix: use {OFFICIAL_FILE}, or convert a file you trust to .safetensors.",
                path=path,
            ) from err
        if path.lower().endswith(_SAFETENSORS_EXT):
            raise PulidCheckpointError(
                f"{_what(path)}: cannot be read. Expected: a safetensors file. Found: {os.path.getsize(path)} bytes that "
                f"safetensors cannot parse ({err.detail}). Fix: the download is empty or truncated; re-download "
                f"{OFFICIAL_FILE}.",
                path=path,
            ) from err
        raise PulidCheckpointError(
            f"{_what(path)}: cannot be read. Expected: a torch checkpoint of tensors. Found: a file torch.load cannot read "
            f"({err.detail}). Fix: re-download {OFFICIAL_FILE}.",
            path=path,
        ) from err


def load_pulid_flux_file(
    path: str | os.PathLike,
    *,
    config: PulidFluxConfig | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> PulidFlux:
    """Load a weights file; pickles only ever go through ``torch.load(weights_only=True)``."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"PuLID-Flux file '{path}' does not exist")
    sd = _read_file(path)
    return load_pulid_flux(sd, config=config, device=device, dtype=dtype, path=path)
