"""Tiny stand-in ONNX files that insightface 2.1 ``FaceAnalysis`` loads and routes like a real model pack.

No real insightface weights can be downloaded in tests, so these files exercise the plumbing instead:
folder checks, model routing, detection decoding, alignment and a 512-d embedding. They are NOT face
models: the detector reports fixed boxes wherever the image content is, and the recogniser is a random
projection of the aligned crop (deterministic per seed, so equal crops give equal embeddings).

Detector (SCRFD-style, the signature insightface routes as a detector: 9 outputs = 3 strides (8, 16, 32) x
score / bbox / kps, 2 anchors per location, outputs shaped (locations * anchors, C) without batch dim):
each output is a strided 1x1 Conv with zero weights plus a bias (so its shape follows the input) plus a
constant map; scores then pass through a Sigmoid, as in released SCRFD graphs. The input is fixed to
1x3x640x640, so insightface always letterboxes images to 640x640 and the constant maps line up. Each
requested face is one anchor (stride 16) with a high score; every other anchor has a very negative logit,
so ``faces=0`` gives zero detections.

Recogniser (ArcFace-style: square 112x112 input): AvgPool(16) -> Flatten -> Gemm(147 -> 512).

The files are written by our own ONNX encoder (``onnx_proto``), so the demo needs no ``onnx`` package; the
graphs are built through a writer object, and the unit tests pass an ``onnx``-backed one to prove the bytes equal.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .onnx_proto import ProtoWriter

__all__ = [
    "build_detector",
    "build_recognizer",
    "DET_SIZE",
    "write_tiny_detector",
    "write_tiny_recognizer",
    "write_tiny_insightface",
    "layout_insightface_models",
    "face_boxes_in_det_frame",
]

DET_SIZE = 640
_STRIDES = (8, 16, 32)
_ANCHORS = 2
_FACE_STRIDE = 16
# ArcFace 112x112 alignment template (public insightface reference values), used to place plausible
# landmarks inside each fake box.
_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)
_MODEL_META = dict(opset=13, ir_version=8, producer="likeness-tests")


def face_boxes_in_det_frame(faces: int, box_size: float | None = None) -> list[tuple[float, float, float, float]]:
    """The boxes (x0, y0, x1, y1) the stand-in detector reports, in its 640x640 letterbox frame.

    Faces sit in one row, left to right, centred on stride-16 anchor centres at y = 288. To map to the
    original image divide by the letterbox scale ``640 / max(h, w)``.
    """
    if faces <= 0:
        return []
    size = float(box_size) if box_size is not None else min(192.0, 560.0 / faces)
    boxes = []
    for i in range(faces):
        cx = _FACE_STRIDE * round((DET_SIZE * (i + 0.5) / faces) / _FACE_STRIDE)
        cy = 288.0
        boxes.append((cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2))
    return boxes


def _add_head(w, g: dict, kind: str, stride: int, channels_per_anchor: int, bias: np.ndarray, const: np.ndarray | None) -> None:
    """One SCRFD output head (score, bbox or kps at one stride) as a zero 1x1 conv plus constants."""
    nodes, inits, outputs = g["nodes"], g["inits"], g["outputs"]
    tag = f"{kind}_{stride}"
    c = channels_per_anchor * _ANCHORS
    inits += [w.tensor(f"{tag}_w", np.zeros((c, 3, 1, 1), np.float32)), w.tensor(f"{tag}_b", bias.astype(np.float32))]
    conv = dict(kernel_shape=[1, 1], strides=[stride, stride])
    nodes.append(w.node("Conv", ["input.1", f"{tag}_w", f"{tag}_b"], [f"{tag}_conv"], f"conv_{tag}", **conv))
    cur = f"{tag}_conv"
    if const is not None:
        inits.append(w.tensor(f"{tag}_map", const.astype(np.float32)))
        nodes.append(w.node("Add", [cur, f"{tag}_map"], [f"{tag}_add"], f"add_{tag}"))
        cur = f"{tag}_add"
    if kind == "score":
        nodes.append(w.node("Sigmoid", [cur], [f"{tag}_sig"], f"sigmoid_{tag}"))
        cur = f"{tag}_sig"
    nodes.append(w.node("Transpose", [cur], [f"{tag}_nhwc"], f"transpose_{tag}", perm=[0, 2, 3, 1]))
    inits.append(w.tensor(f"{tag}_shape", np.array([-1, channels_per_anchor], np.int64)))
    nodes.append(w.node("Reshape", [f"{tag}_nhwc", f"{tag}_shape"], [tag], f"reshape_{tag}"))
    side = DET_SIZE // stride
    outputs[kind].append(w.value_info(tag, [side * side * _ANCHORS, channels_per_anchor]))


def build_detector(writer, faces: int = 1, score: float = 0.9, box_size: float | None = None):
    """The SCRFD-style stand-in detector through ``writer`` (``ProtoWriter`` gives the file's bytes)."""
    if faces < 0 or faces > 8:
        raise ValueError("faces must be between 0 and 8")
    if not 0.5 < score < 1.0:
        raise ValueError("score must be in (0.5, 1) so that insightface's default det_thresh keeps it")
    boxes = face_boxes_in_det_frame(faces, box_size)
    face_logit = math.log(score / (1.0 - score))
    off_logit = -30.0  # sigmoid(-30) ~ 1e-13: never a detection
    g = dict(nodes=[], inits=[], outputs={"score": [], "bbox": [], "kps": []})
    size = boxes[0][2] - boxes[0][0] if boxes else 100.0
    half = size / 2.0
    # Landmarks relative to the box centre: the template scaled from 112 px to the box size.
    kps_rel = (_TEMPLATE - 56.0) * (size / 112.0)
    for stride in _STRIDES:
        side = DET_SIZE // stride
        logits = np.full((1, _ANCHORS, side, side), off_logit, np.float32)
        if stride == _FACE_STRIDE:
            for x0, y0, x1, y1 in boxes:
                cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
                logits[0, 0, int(cy) // stride, int(cx) // stride] = face_logit
        _add_head(writer, g, "score", stride, 1, np.zeros(_ANCHORS), logits)
        # SCRFD multiplies bbox/kps predictions by the stride; distances are (left, top, right, bottom).
        _add_head(writer, g, "bbox", stride, 4, np.tile(np.full(4, half / stride), _ANCHORS), None)
        _add_head(writer, g, "kps", stride, 10, np.tile(kps_rel.reshape(-1) / stride, _ANCHORS), None)
    outs = g["outputs"]
    x = writer.value_info("input.1", [1, 3, DET_SIZE, DET_SIZE])
    return writer.model(
        "tiny_scrfd", g["nodes"], [x], outs["score"] + outs["bbox"] + outs["kps"], g["inits"], **_MODEL_META
    )


def build_recognizer(writer, dim: int = 512, seed: int = 0):
    """The ArcFace-style stand-in recogniser through ``writer``: 112x112 RGB crop -> ``dim`` floats."""
    rng = np.random.default_rng(seed)
    feats = 3 * 7 * 7
    w = (rng.standard_normal((dim, feats)) / math.sqrt(feats)).astype(np.float32)
    b = (rng.standard_normal(dim) * 0.01).astype(np.float32)
    # Node names must not start with "Sub"/"Mul": insightface reads those as an mxnet graph with built-in
    # normalisation and would then feed 0..255 pixels instead of (x - 127.5) / 127.5.
    nodes = [
        writer.node("AveragePool", ["input.1"], ["pooled"], "avgpool", kernel_shape=[16, 16], strides=[16, 16]),
        writer.node("Flatten", ["pooled"], ["flat"], "flatten", axis=1),
        writer.node("Gemm", ["flat", "fc_w", "fc_b"], ["embedding"], "fc", transB=1),
    ]
    inputs = [writer.value_info("input.1", ["batch", 3, 112, 112])]
    outputs = [writer.value_info("embedding", ["batch", dim])]
    inits = [writer.tensor("fc_w", w), writer.tensor("fc_b", b)]
    return writer.model("tiny_arcface", nodes, inputs, outputs, inits, **_MODEL_META)


def _write(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_tiny_detector(path: str | Path, faces: int = 1, score: float = 0.9, box_size: float | None = None) -> Path:
    """Write the SCRFD-style stand-in detector that always reports ``faces`` faces (0 for none)."""
    return _write(path, build_detector(ProtoWriter(), faces=faces, score=score, box_size=box_size))


def write_tiny_recognizer(path: str | Path, dim: int = 512, seed: int = 0) -> Path:
    """Write the ArcFace-style stand-in recogniser: 112x112 RGB crop -> ``dim`` floats (random projection)."""
    return _write(path, build_recognizer(ProtoWriter(), dim=dim, seed=seed))


def write_tiny_insightface(
    folder: str | Path,
    faces: int = 1,
    *,
    det_name: str = "det_10g.onnx",
    rec_name: str = "w600k_r50.onnx",
    score: float = 0.9,
    seed: int = 0,
) -> Path:
    """Write a stand-in model pack (detector + recogniser) into ``folder``; return the folder.

    File names default to buffalo_l's; insightface routes files by their graph signature, not by name.
    """
    folder = Path(folder)
    write_tiny_detector(folder / det_name, faces=faces, score=score)
    write_tiny_recognizer(folder / rec_name, seed=seed)
    return folder


_PACK_FILES = {
    "buffalo_l": ("det_10g.onnx", "w600k_r50.onnx"),
    "antelopev2": ("scrfd_10g_bnkps.onnx", "glintr100.onnx"),
}


def layout_insightface_models(
    models_dir: str | Path,
    names: tuple[str, ...] = ("antelopev2", "buffalo_l"),
    faces: int = 1,
    *,
    nested: bool = False,
) -> dict[str, Path]:
    """Lay out ``<models_dir>/insightface/models/<name>/`` as ComfyUI's insightface loaders expect.

    Returns {name: folder}. ``nested=True`` reproduces the antelopev2 unzip trap: the files go into
    ``<name>/<name>/`` and the returned folder is the outer one (which then holds no .onnx file).
    """
    out = {}
    for name in names:
        det_name, rec_name = _PACK_FILES.get(name, _PACK_FILES["buffalo_l"])
        folder = Path(models_dir) / "insightface" / "models" / name
        target = folder / name if nested else folder
        write_tiny_insightface(target, faces=faces, det_name=det_name, rec_name=rec_name)
        out[name] = folder
    return out
