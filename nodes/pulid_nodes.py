"""PuLID-Flux nodes: loaders and Apply PuLID-Flux, injecting identity through ComfyUI's Flux block hooks."""

from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict

import torch

from .. import eva_clip as eva_lib
from .. import pulid as pulid_lib
from ..face.errors import NoFaceError
from ..face.judge import FACE_ORDERS, select_faces, to_rgb_uint8
from ..face.parsing import load_bisenet
from ..face.pulid_features import prepare_pulid_face, to_gray
from . import comfy_adapter as host
from .pulid_support import check_model
from .types import CATEGORY, EVA_CLIP, FACE_ANALYSIS, PULID

log = logging.getLogger(__name__)

DTYPES = ["auto", "float32", "bfloat16", "float16"]
DTYPE_INPUT = (DTYPES, {"default": "auto", "tooltip": "auto: bfloat16 on GPUs that support it, float32 on CPU."})
FUSIONS = ("mean", "max", "concat")
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


class _IdCache:
    """ID tokens per (reference image, models, face choice): re-queued graphs skip the encoders entirely."""

    def __init__(self, size: int = 256):
        self.size = size
        self.data: OrderedDict[str, torch.Tensor] = OrderedDict()

    def get(self, key):
        if key in self.data:
            self.data.move_to_end(key)
            return self.data[key]
        return None

    def put(self, key, value):
        self.data[key] = value
        self.data.move_to_end(key)
        while len(self.data) > self.size:
            self.data.popitem(last=False)


ID_CACHE = _IdCache()


def _image_key(img: torch.Tensor) -> str:
    arr = img.detach().to("cpu", torch.float32).contiguous().numpy()
    return hashlib.sha256(arr.tobytes() + str(arr.shape).encode()).hexdigest()


def encode_reference(pulid: PulidBundle, eva: EvaBundle, face_analysis, parser, image: torch.Tensor, index: int, order: str, face_index: int):
    """ID tokens (1, K, D) for one reference photo, following the PuLID-Flux reference preprocessing."""
    faces = select_faces(face_analysis.detect_embed(to_rgb_uint8(image)), order=order, index=face_index)
    if not faces:
        raise NoFaceError(index, "reference", hint="give Apply PuLID-Flux a photo where the face is clearly visible")
    face = faces[0]
    log.info("PuLID-Flux: reference %d uses face box %s (order=%s, index=%d)", index, [round(v) for v in face.box], order, face_index)
    eva_module = eva.module
    device = next(eva_module.parameters()).device
    img = image.detach().to(torch.float32).cpu().numpy()
    if parser is not None:
        face_input, _ = prepare_pulid_face(img, face.landmarks5, parser, method="lmeds")
    else:
        from ..face.align import align_face

        aligned, _ = align_face(img, face.landmarks5, size=512, method="lmeds")
        aligned = torch.as_tensor(aligned).permute(2, 0, 1)[None].float()
        face_input = to_gray(aligned)
    pixels = eva_lib.preprocess(face_input.to(device), eva_module.config.image_size)
    with torch.no_grad():
        cls_emb, hidden = eva_module(pixels.to(next(eva_module.parameters()).dtype))
        enc = pulid.module.encoder
        enc_param = next(enc.parameters())
        arc = torch.as_tensor(face.embedding, dtype=torch.float32)[None]
        id_cond = pulid_lib.id_cond_from(arc.to(cls_emb.device), cls_emb.float()).to(enc_param.device, enc_param.dtype)
        tokens = enc(id_cond, [h.to(enc_param.device, enc_param.dtype) for h in hidden])
    return tokens.float().cpu()


def _analysis_key(face_analysis) -> str:
    return f"{type(face_analysis).__name__}|{getattr(face_analysis, 'model_dir', id(face_analysis))}|{getattr(face_analysis, 'det_size', '')}"


def fuse(tokens: list[torch.Tensor], fusion: str) -> torch.Tensor:
    stack = torch.cat(tokens, 0)
    if fusion == "mean":
        return stack.mean(0, keepdim=True)
    if fusion == "max":
        return stack.amax(0, keepdim=True)
    if fusion == "concat":
        return stack.reshape(1, -1, stack.shape[-1])
    raise ValueError(f"fusion {fusion!r} is not one of {FUSIONS}")


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
                "fusion": (list(FUSIONS), {"default": "mean", "tooltip": "How several references combine: mean / max of ID tokens, or concat (more tokens)."}),
                "face_order": (list(FACE_ORDERS), {"default": "largest", "tooltip": "Which face of a reference photo with several faces."}),
                "face_index": ("INT", {"default": 0, "min": 0, "max": 63, "tooltip": "Index in that order (0 = first)."}),
            },
            "optional": {
                "parsing_model": ([NO_PARSING, *host.list_model_files("facexlib")], {"default": "parsing_bisenet.pth", "tooltip": "facexlib BiSeNet (models/facexlib) that blanks hair/background as the reference does."}),
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

    def apply(self, model, pulid, eva_clip, face_analysis, image, weight, start_at, end_at, fusion, face_order, face_index, parsing_model=NO_PARSING):
        if start_at > end_at:
            raise ValueError(f"start_at ({start_at}) must not be after end_at ({end_at}); swap them")
        if not torch.isfinite(image).all():
            raise ValueError("the reference image contains NaN or inf values; check the node that produced it")
        n_double, n_single = check_model(model, pulid.module.config.flux_dim, pulid.name)
        if weight == 0:
            log.info("PuLID-Flux: weight 0, model returned unpatched")
            return (model,)
        parser = None
        if parsing_model != NO_PARSING:
            parser = _parser(host.model_file_path("facexlib", parsing_model))
        host.load_on_device([pulid.patcher, eva_clip.patcher])
        tokens, encoded = [], 0
        for i in range(image.shape[0]):
            host.throw_if_interrupted()
            key = "|".join((_image_key(image[i]), pulid.uid, eva_clip.uid, _analysis_key(face_analysis), str(parser is not None), face_order, str(face_index)))
            cached = ID_CACHE.get(key)
            if cached is None:
                cached = encode_reference(pulid, eva_clip, face_analysis, parser, image[i], i, face_order, face_index)
                ID_CACHE.put(key, cached)
                encoded += 1
            tokens.append(cached)
        log.info("PuLID-Flux: %d reference(s): %d encoded, %d from cache", image.shape[0], encoded, image.shape[0] - encoded)
        id_tokens = fuse(tokens, fusion)
        m = model.clone()
        patches = pulid_lib.flux_block_patches(
            pulid.module, id_tokens, float(weight), host.percent_to_sigma(m, start_at), host.percent_to_sigma(m, end_at),
            n_double, n_single, previous=host.dit_replace_patches(m),
        )
        for (block, idx), fn in patches.items():
            m.set_model_patch_replace(fn, "dit", block, idx)
        host.add_diffusion_model_wrapper(m, "likeness_pulid", pulid_lib.image_token_wrapper(patches))  # Kontext
        m.set_additional_models("likeness_pulid", [pulid.patcher])
        return (m,)


_PARSERS: dict[str, object] = {}


def _parser(path: str):
    if path not in _PARSERS:
        _PARSERS[path] = load_bisenet(path)
    return _PARSERS[path]
