"""Face judges and the Face Embed Distance node: identity scores that REST clients read from /history."""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from ..contract import HISTORY_FACE_DISTANCE
from ..face.judge import FACE_ORDERS, get_judge, select_faces, to_rgb_uint8
from ..face.metrics import METRICS, face_embed_distance
from ..face.overlay import annotate, format_score
from . import comfy_adapter as host
from .types import CATEGORY, FACE_ANALYSIS, FACE_JUDGE

log = logging.getLogger(__name__)

PROVIDERS = {"CPU": ("CPUExecutionProvider",), "CUDA": ("CUDAExecutionProvider", "CPUExecutionProvider")}
DLIB_CHOICES = ("dlib (hog)", "dlib (cnn)")


def _judge_choices(default: str) -> list[str]:
    names = [default] + [n for n in ("buffalo_l", "antelopev2") if n != default]
    names += [n for n in host.insightface_model_dirs() if n not in names]
    return [f"insightface: {n}" for n in names] + list(DLIB_CHOICES)


def build_judge(choice: str, provider: str = "CPU", det_size: int = 640):
    """Turn a loader choice ("insightface: buffalo_l", "dlib (hog)") into a face/ judge."""
    if choice in DLIB_CHOICES:
        return get_judge("dlib", detector=choice[len("dlib (") : -1])
    if not choice.startswith("insightface: "):
        raise ValueError(f"unknown face model choice {choice!r}; pick one of {', '.join(_judge_choices('buffalo_l'))}")
    folder = host.insightface_model_dir(choice[len("insightface: ") :])
    return get_judge("insightface", model_dir=folder, det_size=(det_size, det_size), providers=PROVIDERS[provider])


def _loader_inputs(default: str, purpose: str) -> dict:
    return {
        "required": {
            "model": (
                _judge_choices(default),
                {
                    "default": f"insightface: {default}",
                    "tooltip": f"{purpose} insightface packs are read from models/insightface/models/<name>/ "
                    "(non-commercial licence); dlib ships with `pip install likeness[dlib]` (CC0 models, commercial use allowed).",
                },
            ),
            "provider": (list(PROVIDERS), {"default": "CPU", "tooltip": "onnxruntime execution provider for insightface models."}),
            "det_size": (
                "INT",
                {"default": 640, "min": 160, "max": 2048, "step": 32, "tooltip": "Detector input size (square); 640 as the reference uses."},
            ),
        }
    }


class LikenessFaceJudgeLoader:
    DESCRIPTION = (
        "Load the face model that scores identity (the judge) for Face Embed Distance and the enhancement report. "
        "Keep it separate from the conditioning model so the score is not judged by the model that steered the image."
    )
    CATEGORY = f"{CATEGORY}/loaders"
    RETURN_TYPES = (FACE_JUDGE,)
    RETURN_NAMES = ("judge",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return _loader_inputs("buffalo_l", "The identity judge.")

    def load(self, model, provider, det_size):
        return (build_judge(model, provider, det_size),)


class LikenessFaceAnalysisLoader:
    DESCRIPTION = (
        "Load the face detector + ArcFace model that conditions PuLID-Flux (antelopev2, as the PuLID reference uses). "
        "Checks the folder first: a missing folder or the antelopev2 zip unpacked one level too deep gives a clear error."
    )
    CATEGORY = f"{CATEGORY}/loaders"
    RETURN_TYPES = (FACE_ANALYSIS,)
    RETURN_NAMES = ("face_analysis",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return _loader_inputs("antelopev2", "The conditioning face model.")

    def load(self, model, provider, det_size):
        return (build_judge(model, provider, det_size),)


def _embed_batch(judge, images: torch.Tensor, order: str, index: int):
    """(embedding or None, face record or None) per image of an IMAGE batch."""
    out = []
    for i in range(images.shape[0]):
        host.throw_if_interrupted()
        recs = select_faces(judge.detect_embed(to_rgb_uint8(images[i])), order=order, index=index)
        out.append((recs[0].embedding, recs[0]) if recs else (None, None))
    return out


def _json_number(x: float):
    return None if x is None or math.isnan(x) else float(x)


class LikenessFaceEmbedDistance:
    DESCRIPTION = (
        "Face Embed Distance: how far each image's face is from the reference person (lower is better). "
        "References are averaged; normalised = min(1, distance / threshold). An image without a face gives NaN and a "
        "no-face flag, never 0 or 1. Results appear on the node and in /history for REST clients."
    )
    CATEGORY = f"{CATEGORY}/metrics"
    RETURN_TYPES = ("FLOAT", "FLOAT", "FLOAT", "IMAGE")
    RETURN_NAMES = ("distance", "normalized", "cosine_similarity", "overlay")
    OUTPUT_IS_LIST = (True, True, True, False)
    OUTPUT_TOOLTIPS = (
        "Raw distance per image (NaN without a face).",
        "min(1, distance / threshold) per image.",
        "Cosine similarity to the reference per image.",
        "The images with the measured face outlined and its score.",
    )
    OUTPUT_NODE = True
    FUNCTION = "measure"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "judge": (FACE_JUDGE, {"tooltip": "From Load Face Judge (buffalo_l by default, or dlib)."}),
                "reference": ("IMAGE", {"tooltip": "One or more photos of the person; their embeddings are averaged."}),
                "images": ("IMAGE", {"tooltip": "The images to score against the reference."}),
                "metric": (list(METRICS), {"default": "cosine", "tooltip": "cosine = 1 - cos; euclidean; L2_norm = distance of unit vectors."}),
                "threshold": (
                    "FLOAT",
                    {"default": 0.0, "min": 0.0, "max": 100.0, "step": 0.01,
                     "tooltip": "Same-person threshold for normalising; 0 = the judge's own (ArcFace cosine 0.68, dlib cosine 0.07)."},
                ),
                "face_order": (list(FACE_ORDERS), {"default": "largest", "tooltip": "Which face to measure when an image has several."}),
                "face_index": ("INT", {"default": 0, "min": 0, "max": 63, "tooltip": "Index in that order (0 = first)."}),
                "reference_without_face": (
                    ["error", "skip"],
                    {"default": "error", "tooltip": "A reference photo without a face: stop with an error naming it, or leave it out."},
                ),
            }
        }

    def measure(self, judge, reference, images, metric, threshold, face_order, face_index, reference_without_face):
        thr = float(threshold) if threshold > 0 else judge.thresholds[metric]
        refs = _embed_batch(judge, reference, face_order, face_index)
        imgs = _embed_batch(judge, images, face_order, face_index)
        results = face_embed_distance(
            [e for e, _ in refs],
            [e for e, _ in imgs],
            metric,
            thr,
            normalize_inputs=judge.normalize_embeddings,
            no_face=reference_without_face,
        )
        overlays, rows = [], []
        for i, (res, (_, rec)) in enumerate(zip(results, imgs)):
            text = format_score(res.distance, res.normalized, res.cosine_similarity, res.no_face, metric)
            overlays.append(annotate(to_rgb_uint8(images[i]), text, rec.box if rec else None))
            rows.append(
                {
                    "index": i,
                    "distance": _json_number(res.distance),
                    "normalized": _json_number(res.normalized),
                    "cosine_similarity": _json_number(res.cosine_similarity),
                    "no_face": res.no_face,
                    "metric": metric,
                    "threshold": thr,
                    "judge": judge.name,
                }
            )
            log.info("Face Embed Distance [%s] image %d: %s", judge.name, i, text)
        overlay = torch.from_numpy(np.stack(overlays).astype(np.float32) / 255.0)
        ui = {HISTORY_FACE_DISTANCE: rows, "images": host.save_preview(overlay, "likeness_fed")}
        result = (
            [r.distance for r in results],
            [r.normalized for r in results],
            [r.cosine_similarity for r in results],
            overlay,
        )
        return {"ui": ui, "result": result}
