"""The insightface judge (SCRFD detector + ArcFace) over a local model folder, and the ONNX Runtime check."""

from __future__ import annotations

import glob
import importlib.util
import logging
import math
import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import FaceModelMissingError, JudgeUnavailableError
from .records import FaceJudge, FaceRecord, to_rgb_uint8

logger = logging.getLogger(__name__)

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


