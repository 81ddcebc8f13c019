"""Identity metrics: Face Embed Distance and cosine identity similarity.

Face Embed Distance (FED) follows the public definition of cubiq's ComfyUI_FaceAnalysis "Face Embeds
Distance" node: compare each image's face embedding with the (averaged) reference embedding under one of
three metrics, and report the raw distance plus ``min(1, distance / threshold)``, where the threshold is the
judge's same-person threshold for that metric. Lower is better; normalised < 1 means "same person" under
that threshold.

Deliberate differences from the anchor, each documented where it happens:
- an image without a face gives distance NaN and ``no_face=True`` (the anchor reports distance 100 with
  normalised 0, which reads as a perfect match);
- for cosine and L2_norm the reference is the mean of unit-normalised reference embeddings (the anchor
  averages the embeddings it has: insightface's normed ones, so identical there; dlib's raw ones, which
  differ by the few percent dlib descriptor norms vary). For euclidean the plain mean is used, as the anchor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import FaceError, NoFaceError

__all__ = [
    "METRICS",
    "DistanceResult",
    "reference_embedding",
    "embedding_distance",
    "face_embed_distance",
    "identity_similarity",
    "delta_id",
]

METRICS = ("cosine", "euclidean", "L2_norm")


@dataclass(frozen=True)
class DistanceResult:
    """FED of one image against the reference.

    ``distance``: the raw metric value; ``normalized``: min(1, distance / threshold);
    ``cosine_similarity``: cos(reference, image) whatever the metric, in [-1, 1];
    ``no_face``: True when the image had no face, in which case the three numbers are NaN.
    """

    distance: float
    normalized: float
    cosine_similarity: float
    no_face: bool


SKIP_HINT = "use a clearer frontal photo, or set reference_without_face (no_face in face.metrics) to 'skip'"


def _vector(x: np.ndarray, what: str) -> np.ndarray:
    v = np.asarray(x, dtype=np.float64).reshape(-1)
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise FaceError(f"{what} must be a non-empty finite vector")
    return v


def _unit(v: np.ndarray, what: str) -> np.ndarray:
    n = float(np.linalg.norm(v))
    if not n > 0.0:
        raise FaceError(f"{what} has zero norm; cannot compare identities with it")
    return v / n


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise FaceError(f"unknown metric {metric!r}: expected one of {', '.join(METRICS)}")


def reference_embedding(
    ref_embs: np.ndarray | Sequence[np.ndarray | None],
    metric: str = "cosine",
    *,
    normalize_inputs: bool = False,
    no_face: str = "error",
) -> np.ndarray:
    """Average R reference embeddings into the single vector the images are compared with.

    With e_i the reference embeddings (first scaled to unit length when ``normalize_inputs``):
    - cosine, L2_norm: r = m / ||m|| with m = (1/R) * sum_i e_i / ||e_i||  (each reference weighs the same);
    - euclidean:       r = (1/R) * sum_i e_i  (the plain mean; distances keep the embedding's scale).
    ``None`` entries are references without a face: ``no_face="error"`` raises NoFaceError with the index,
    ``"skip"`` drops them (NoFaceError(None) if none is left).
    """
    _check_metric(metric)
    if no_face not in ("error", "skip"):
        raise FaceError(f"no_face must be 'error' or 'skip', got {no_face!r}")
    if isinstance(ref_embs, np.ndarray):
        if ref_embs.ndim == 1:
            ref_embs = ref_embs[None, :]
        if ref_embs.ndim != 2:
            raise FaceError(f"reference embeddings must be (R, D), got shape {ref_embs.shape}")
        items: list[np.ndarray | None] = list(ref_embs)
    else:
        items = list(ref_embs)
    kept = []
    for i, e in enumerate(items):
        if e is None:
            if no_face == "error":
                raise NoFaceError(i, "reference", hint=SKIP_HINT)
            continue
        kept.append(_vector(e, f"reference embedding {i}"))
    if not kept:
        raise NoFaceError(None, "reference")
    dims = {v.size for v in kept}
    if len(dims) != 1:
        raise FaceError(f"reference embeddings have different sizes {sorted(dims)}: use one judge for all")
    if normalize_inputs:
        kept = [_unit(v, f"reference embedding {i}") for i, v in enumerate(kept)]
    if metric == "euclidean":
        return np.mean(kept, axis=0)
    units = [_unit(v, f"reference embedding {i}") for i, v in enumerate(kept)]
    return _unit(np.mean(units, axis=0), "the mean reference embedding (references cancel out)")


def embedding_distance(a: np.ndarray, b: np.ndarray, metric: str) -> float:
    """One distance between two embeddings.

    cosine:    1 - <a, b> / (||a|| ||b||)          (0 identical direction, 2 opposite)
    euclidean: ||a - b||
    L2_norm:   || a/||a|| - b/||b|| ||             (= sqrt(2 * cosine distance), in [0, 2])
    Tiny negative values from rounding are clipped to 0.
    """
    _check_metric(metric)
    a = _vector(a, "embedding a")
    b = _vector(b, "embedding b")
    if a.size != b.size:
        raise FaceError(f"embeddings have different sizes {a.size} and {b.size}: use one judge for both")
    if metric == "euclidean":
        return float(np.linalg.norm(a - b))
    ua, ub = _unit(a, "embedding a"), _unit(b, "embedding b")
    if metric == "cosine":
        return max(0.0, 1.0 - float(np.dot(ua, ub)))
    return float(np.linalg.norm(ua - ub))


def face_embed_distance(
    ref_embs: np.ndarray | Sequence[np.ndarray | None],
    img_embs: Sequence[np.ndarray | None],
    metric: str = "cosine",
    threshold: float | None = None,
    *,
    normalize_inputs: bool = False,
    no_face: str = "error",
) -> list[DistanceResult]:
    """Face Embed Distance of each image embedding against the averaged reference.

    ``ref_embs``: (R, D) array or a list (``None`` = reference without a face, see ``no_face``);
    ``img_embs``: one embedding or ``None`` (no face) per image; ``threshold``: the judge's same-person
    threshold for ``metric`` (``judge.thresholds[metric]``), required and > 0;
    ``normalize_inputs``: scale every embedding to unit length first; pass ``judge.normalize_embeddings``
    (True for insightface, whose anchor metric uses ``normed_embedding``; False for dlib).

    For each image embedding x (unit-scaled when ``normalize_inputs``) and reference r from
    ``reference_embedding``: distance = embedding_distance(r, x, metric), normalized = min(1, distance /
    threshold), cosine_similarity = <r, x> / (||r|| ||x||). A ``None`` image gives NaN for all three and
    ``no_face=True``: never 0 or 1, so a missing face cannot pass for a match or a mismatch.
    """
    _check_metric(metric)
    if threshold is None or not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold > 0):
        raise FaceError(f"threshold must be a positive number (the judge's {metric} threshold), got {threshold!r}")
    ref = reference_embedding(ref_embs, metric, normalize_inputs=normalize_inputs, no_face=no_face)
    results = []
    for i, e in enumerate(img_embs):
        if e is None:
            results.append(DistanceResult(math.nan, math.nan, math.nan, True))
            continue
        x = _vector(e, f"image embedding {i}")
        if x.size != ref.size:
            raise FaceError(
                f"image embedding {i} has {x.size} values but the reference has {ref.size}: use one judge for both"
            )
        if normalize_inputs:
            x = _unit(x, f"image embedding {i}")
        d = embedding_distance(ref, x, metric)
        cos = float(np.dot(_unit(ref, "reference"), _unit(x, f"image embedding {i}")))
        results.append(DistanceResult(d, min(1.0, d / float(threshold)), cos, False))
    return results


def identity_similarity(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Cosine similarity of two face embeddings in [-1, 1]; NaN when either face is missing (None)."""
    if a is None or b is None:
        return math.nan
    a = _vector(a, "embedding a")
    b = _vector(b, "embedding b")
    if a.size != b.size:
        raise FaceError(f"embeddings have different sizes {a.size} and {b.size}: use one judge for both")
    return float(np.clip(np.dot(_unit(a, "embedding a"), _unit(b, "embedding b")), -1.0, 1.0))


def delta_id(before: float, after: float) -> float:
    """Change in identity similarity: ``after - before`` (cosine to the reference); > 0 means improved.

    NaN (a missing face on either side) propagates, so "no face" is never read as an improvement.
    """
    return float(after) - float(before)
