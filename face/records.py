"""Face judges: a detector plus an identity embedder behind one small interface.

A judge answers "where are the faces and who are they" so identity metrics (``metrics.py``) can compare a
generated image with reference photos. Backends import their heavy libraries lazily, so ``import face`` works
without dlib or insightface installed; a backend whose package is missing raises ``JudgeUnavailableError``.

Landmark convention (all backends): ``landmarks5`` is a (5, 2) float32 array of (x, y) pixel coordinates in
the order used by insightface's SCRFD detector and its ArcFace alignment template:
0 left eye, 1 right eye, 2 nose, 3 left mouth corner, 4 right mouth corner, where "left" means the image's
left for an upright frontal face (the subject's own right eye). The order is semantic, not sorted by x, so a
mirrored face keeps the labels of the person, not of the image.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .errors import FaceError

logger = logging.getLogger(__name__)

# The 5-point ArcFace alignment template for a 112x112 crop (left eye, right eye, nose, left mouth,
# right mouth), as published with insightface's arcface_torch / face_align reference values.
ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)

FACE_ORDERS = ("largest", "left-to-right", "highest-score")


@dataclass
class FaceRecord:
    """One detected face.

    ``box`` is (x0, y0, x1, y1) in pixels and may extend past the image border (detectors extrapolate), so
    crop code must clip. ``embedding`` is the backend's raw float32 identity vector (not normalised);
    ``estimated`` lists the landmark indices that the backend did not measure but derived (see DlibJudge).
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks5: np.ndarray
    embedding: np.ndarray
    estimated: tuple[int, ...] = field(default=())

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)

    @property
    def center(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return ((x0 + x1) / 2.0, (y0 + y1) / 2.0)

    @property
    def normed_embedding(self) -> np.ndarray:
        """The embedding scaled to unit L2 norm (what insightface calls ``normed_embedding``)."""
        norm = float(np.linalg.norm(self.embedding))
        if not norm > 0.0:
            raise FaceError("face embedding has zero norm; the embedder produced an invalid vector")
        return (self.embedding / norm).astype(np.float32)


def to_rgb_uint8(image: Any) -> np.ndarray:
    """Return a C-contiguous HxWx3 uint8 RGB array.

    Accepts uint8 arrays, float arrays/tensors in [0, 1] (ComfyUI's IMAGE convention, one image at a time)
    and drops an alpha channel. Detectors are trained on 8-bit photos, hence the conversion.
    """
    if hasattr(image, "detach") and hasattr(image, "cpu"):  # a torch tensor, without importing torch
        image = image.detach().cpu().numpy()
    arr = np.asarray(image)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise FaceError(f"expected one HxWx3 RGB image, got an array of shape {tuple(arr.shape)}")
    arr = arr[:, :, :3]
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.floating):
            raise FaceError(f"expected a uint8 or float image, got dtype {arr.dtype}")
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        if bad:
            raise FaceError(
                f"the image has {bad} NaN/inf values: the node that made it produced invalid pixels (often a VAE "
                "overflowing in fp16: try --fp32-vae); faces cannot be detected in it"
            )
        arr = np.clip(np.rint(arr.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


class FaceJudge:
    """Interface of a face judge backend.

    Attributes every backend sets: ``name`` (shown to users, e.g. "dlib-resnet-v1 (hog)"), ``thresholds``
    (same-person distance thresholds per metric: "cosine", "euclidean", "L2_norm"), ``commercial_use``
    (whether the model weights' licence allows commercial use), ``embedding_dim`` and
    ``normalize_embeddings`` (whether the Face Embed Distance anchor compares unit-normalised embeddings for
    this backend; pass it to ``metrics.face_embed_distance(normalize_inputs=...)``).
    """

    name: str = "abstract"
    thresholds: dict[str, float] = {}
    commercial_use: bool = False
    embedding_dim: int = 0
    normalize_embeddings: bool = False

    def detect_embed(self, image_rgb_uint8: np.ndarray) -> list[FaceRecord]:  # pragma: no cover - interface
        raise NotImplementedError

    def embed_one(self, image: Any, order: str = "largest", index: int = 0) -> np.ndarray | None:
        """Embedding of one chosen face, or None when the image has no face (metrics turn None into NaN)."""
        picked = select_faces(self.detect_embed(to_rgb_uint8(image)), order=order, index=index)
        return picked[0].embedding if picked else None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


_ORDER_KEYS: dict[str, Callable[[FaceRecord], tuple]] = {
    "largest": lambda r: (-r.area, -r.score, r.center[0], r.center[1]),
    "left-to-right": lambda r: (r.center[0], r.center[1], -r.score),
    "highest-score": lambda r: (-r.score, -r.area, r.center[0]),
}


def sort_faces(records: Sequence[FaceRecord], order: str = "largest") -> list[FaceRecord]:
    """Sort faces: "largest" box area first, "left-to-right" by box centre x, or "highest-score" first.

    Ties are broken by detector score, then by position, so the order is deterministic.
    """
    if order not in FACE_ORDERS:
        raise FaceError(f"unknown face order {order!r}: expected one of {', '.join(FACE_ORDERS)}")
    return sorted(records, key=_ORDER_KEYS[order])


def select_faces(records: Sequence[FaceRecord], order: str = "largest", index: int | None = 0) -> list[FaceRecord]:
    """Pick faces in a stable order.

    Returns ``[]`` when there is no face, all faces sorted when ``index`` is None or -1, else a one-element
    list. An ``index`` beyond the faces found is an error rather than silently judging another person.
    """
    ordered = sort_faces(records, order)
    if index is None or index == -1:
        return ordered
    if not ordered:
        return []
    if index < 0 or index >= len(ordered):
        raise FaceError(
            f"face index {index} requested but only {len(ordered)} face(s) found: "
            f"use an index from 0 to {len(ordered) - 1} ({order} first)"
        )
    return [ordered[index]]


