"""PuLID-Flux nodes: loaders and Apply PuLID-Flux, injecting identity through ComfyUI's Flux block hooks."""

from __future__ import annotations

import logging
import os

import torch

from .. import eva_clip as eva_lib
from .. import pulid as pulid_lib
from ..contract import APPLY_PULID
from ..face.judge import FACE_ORDERS
from ..face.parsing import load_bisenet
from ..face.recognizer import check_antelopev2
from ..pulid import reference as reference_lib
from ..pulid.errors import PulidInputError
from . import comfy_adapter as host
from .pulid_support import check_model
from .types import CATEGORY, EVA_CLIP, FACE_ANALYSIS, PULID

log = logging.getLogger(__name__)

DTYPES = ["auto", "float32", "bfloat16", "float16"]
DTYPE_INPUT = (DTYPES, {"default": "auto", "tooltip": "auto: bfloat16 on GPUs that support it, float32 on CPU."})
FUSIONS = pulid_lib.FUSIONS
NO_PARSING = "none (keep background)"


class PulidBundle:
    """What flows on a LIKENESS_PULID socket: the module, its memory manager, and a cache identity."""

    def __init__(self, module, path: str, dtype: str):
        self.module = module
        self.patcher = host.managed(module)
        self.name = os.path.basename(path)
        # Identity of the weights, not of this object: a reloaded file keeps hitting the ID cache.
        st = os.stat(path)
        self.uid = f"{path}|{st.st_size}|{st.st_mtime_ns}|{dtype}"


class EvaBundle(PulidBundle):
    pass


class LikenessPulidFluxLoader:
    DESCRIPTION = (
        "Load PuLID-Flux weights (pulid_flux_v0.9.1.safetensors) from models/pulid. The layout is checked strictly: an SDXL "
        "PuLID file, a truncated file or another model gives an error naming the file and what was expected."
    )
    CATEGORY = f"{CATEGORY}/loaders"
    RETURN_TYPES = (PULID,)
    RETURN_NAMES = ("pulid",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "pulid_file": (host.list_model_files("pulid"), {"tooltip": "A PuLID-Flux weights file in models/pulid."}),
                "dtype": DTYPE_INPUT,
            }
        }

    def load(self, pulid_file, dtype):
        path = host.model_file_path("pulid", pulid_file)
        module = pulid_lib.load_pulid_flux_file(path, dtype=host.weight_dtype(dtype))
        return (PulidBundle(module, path, dtype),)


class LikenessEvaClipLoader:
    DESCRIPTION = (
        "Load the EVA02-CLIP-L-14-336 visual tower PuLID uses (EVA02_CLIP_L_336_psz14_s6B.pt, or a safetensors of its visual.* "
        "tensors) from models/eva_clip or models/clip_vision. .pt files are read with torch.load(weights_only=True)."
    )
    CATEGORY = f"{CATEGORY}/loaders"
    RETURN_TYPES = (EVA_CLIP,)
    RETURN_NAMES = ("eva_clip",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "eva_file": (host.list_model_files("eva_clip"), {"tooltip": "The EVA-CLIP checkpoint."}),
                "dtype": DTYPE_INPUT,
            }
        }

    def load(self, eva_file, dtype):
        path = host.model_file_path("eva_clip", eva_file)
        module = eva_lib.load_eva_clip_file(path, dtype=host.weight_dtype(dtype))
        return (EvaBundle(module, path, dtype),)


ENCODER = reference_lib.ReferenceEncoder()  # one ID cache per process, shared by every Apply node


def _analysis_key(face_analysis) -> str:
    return f"{type(face_analysis).__name__}|{getattr(face_analysis, 'model_dir', id(face_analysis))}|{getattr(face_analysis, 'det_size', '')}"


def _check_mask(mask):
    if mask is None:
        return None
    if mask.dim() not in (2, 3) or not torch.isfinite(mask).all():
        raise PulidInputError(f"the mask must be a finite (H, W) or (B, H, W) MASK, got shape {tuple(mask.shape)}; connect a MASK output")
    return mask if mask.dim() == 3 else mask[None]


class LikenessApplyPulidFlux:
    DESCRIPTION = (
        "Inject a person's identity into Flux with PuLID-Flux: the reference face(s) become ID tokens that cross-attention "
        "modules add to the image tokens after every 2nd double block and every 4th single block, between start_at and end_at "
        "of the schedule. Returns a patched copy of the model; the input model is untouched. Encodings are cached."
    )
    CATEGORY = f"{CATEGORY}/pulid"
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("model",)
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "A FLUX.1 model (dev, Krea, Kontext, schnell) or Chroma; others are refused with the reason."}),
                "pulid": (PULID, {"tooltip": "From Load PuLID-Flux Model."}),
                "eva_clip": (EVA_CLIP, {"tooltip": "From Load EVA-CLIP."}),
                "face_analysis": (FACE_ANALYSIS, {"tooltip": "From Load Face Analysis for PuLID (antelopev2)."}),
                "image": ("IMAGE", {"tooltip": "Reference photo(s) of the person; a batch is fused."}),
                "weight": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 5.0, "step": 0.05, "tooltip": "Identity strength; 0.6-0.8 keeps expressions when enhancing, 1.0 for generation."}),
                "start_at": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": "Fraction of the schedule where injection starts."}),
                "end_at": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": "Fraction of the schedule where injection ends (>= start_at)."}),
                "fusion": (list(FUSIONS), {"default": "mean", "tooltip": "How several references combine: mean (official), max, concat (all tokens), norm_id (weighted by token norm), max_token (strongest token per position), auto_weight (ranked weights from fusion_weight_min to _max)."}),
                "face_order": (list(FACE_ORDERS), {"default": "largest", "tooltip": "Which face of a reference photo with several faces."}),
                "face_index": ("INT", {"default": 0, "min": 0, "max": 63, "tooltip": "Index in that order (0 = first)."}),
            },
            "optional": {
                "parsing_model": ([NO_PARSING, *host.list_model_files("facexlib")], {"default": "parsing_bisenet.pth", "tooltip": "facexlib BiSeNet (models/facexlib) that blanks hair/background as the reference does."}),
                "mask": ("MASK", {"tooltip": "Where the identity goes: the residual is multiplied per image token by this mask (resized to the 16 px token grid); 0 = untouched. Two Apply nodes with two masks put two people in one image."}),
                "fusion_weight_min": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 20.0, "step": 0.1, "tooltip": "auto_weight: weight of the reference with the weakest token."}),
                "fusion_weight_max": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 20.0, "step": 0.1, "tooltip": "auto_weight: weight of the reference with the strongest token."}),
                "use_gray": ("BOOLEAN", {"default": True, "tooltip": "Gray face for EVA-CLIP, as the official pipeline; off keeps colour (sometimes more detail)."}),
                "uncond_zero_id": ("BOOLEAN", {"default": False, "tooltip": "True CFG (cfg > 1): give the negative pass the encoder's tokens for zero inputs, as the official pipeline; off gives it the same identity."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, start_at=0.0, end_at=1.0):
        # No **kwargs here: ComfyUI skips its own min/max checks for every input when VALIDATE_INPUTS takes
        # **kwargs, and for each input it names; so only these two are named, and checked here in full.
        for name, value in (("start_at", start_at), ("end_at", end_at)):
            if not 0.0 <= value <= 1.0:
                return f"{name} ({value}) must be between 0.0 and 1.0 (a fraction of the sampling schedule)"
        if start_at > end_at:
            return f"start_at ({start_at}) must not be after end_at ({end_at}); swap them"
        return True

    def apply(self, model, pulid, eva_clip, face_analysis, image, weight, start_at, end_at, fusion, face_order, face_index,
              parsing_model=NO_PARSING, mask=None, fusion_weight_min=0.0, fusion_weight_max=1.0, use_gray=True, uncond_zero_id=False):
        if start_at > end_at:
            raise ValueError(f"start_at ({start_at}) must not be after end_at ({end_at}); swap them")
        if not torch.isfinite(image).all():
            raise ValueError("the reference image contains NaN or inf values; check the node that produced it")
        mask = _check_mask(mask)
        n_double, n_single = check_model(model, pulid.module.config.flux_dim, pulid.name)
        check_antelopev2(face_analysis, user=APPLY_PULID)  # before any encoding: a wrong recogniser gives a wrong identity, not an error
        if weight == 0:
            log.info("PuLID-Flux: weight 0, model returned unpatched")
            return (model,)
        parser = _parser(host.model_file_path("facexlib", parsing_model)) if parsing_model != NO_PARSING else None
        host.load_on_device([pulid.patcher, eva_clip.patcher])
        tokens, encoded = ENCODER.encode(
            pulid.module, pulid.uid, eva_clip.module, eva_clip.uid, face_analysis, _analysis_key(face_analysis), parser,
            image, face_order, face_index, bool(use_gray), interrupt=host.throw_if_interrupted,
        )
        log.info("PuLID-Flux: %d reference(s): %d encoded, %d from cache", image.shape[0], encoded, image.shape[0] - encoded)
        id_tokens = pulid_lib.fuse_id_tokens(tokens, fusion, fusion_weight_min, fusion_weight_max)
        uncond = None
        if uncond_zero_id:
            uncond = ENCODER.zero_tokens(pulid.module, pulid.uid, eva_clip.module, eva_clip.uid, len(tokens), fusion, fusion_weight_min, fusion_weight_max)
        m = model.clone()
        patches = pulid_lib.flux_block_patches(
            pulid.module, id_tokens, float(weight), host.percent_to_sigma(m, start_at), host.percent_to_sigma(m, end_at),
            n_double, n_single, previous=host.dit_replace_patches(m), mask=mask, uncond_tokens=uncond,
        )
        for (block, idx), fn in patches.items():
            m.set_model_patch_replace(fn, "dit", block, idx)
        host.add_diffusion_model_wrapper(m, "likeness_pulid", pulid_lib.image_token_wrapper(patches))  # Kontext
        if mask is not None:
            m.set_model_post_input_patch(pulid_lib.token_grid_probe(patches))
        m.set_additional_models("likeness_pulid", [pulid.patcher])
        return (m,)


_PARSERS: dict[str, object] = {}


def _parser(path: str):
    if path not in _PARSERS:
        _PARSERS[path] = load_bisenet(path)
    return _PARSERS[path]
