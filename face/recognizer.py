"""Which identity model a face analysis really runs: a fingerprint of its recogniser's ONNX graph.

PuLID-Flux was trained on the ArcFace embeddings of antelopev2's recogniser ``glintr100.onnx``: an IResNet-100
(insightface arcface_torch ``iresnet100``, trained on Glint360K) with a 112x112 RGB input and a 512-d output.
buffalo_l's ``w600k_r50.onnx`` (IResNet-50 on WebFace600K) has the same input and output widths but another
identity space, so widths alone cannot tell them apart; depth can. An IResNet has one stem convolution, two 3x3
convolutions per residual block and one 1x1 shortcut convolution per stage, with [3, 13, 30, 3] blocks for
IResNet-100 (49 blocks -> 103 Conv nodes) and [3, 4, 14, 3] for IResNet-50 (24 blocks -> 53). (Published
architecture of insightface's recognition/arcface_torch/backbones/iresnet.py; batch norms may be folded into the
convolutions on export, convolutions never disappear.) dlib's recogniser is a 128-d ResNet, not ONNX at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..contract import ANTELOPEV2 as ANTELOPEV2_DIR
from .errors import FaceError

__all__ = ["ANTELOPEV2", "RecognizerFingerprint", "WrongFaceModelError", "check_antelopev2", "recognizer_fingerprint"]

ANTELOPEV2_FOLDER = f"ComfyUI/models/insightface/models/{ANTELOPEV2_DIR}/"
IRESNET_CONVS = {103: "IResNet-100", 53: "IResNet-50", 37: "IResNet-34", 21: "IResNet-18", 201: "IResNet-200"}


class WrongFaceModelError(FaceError):
    """A face model PuLID-Flux was not trained with (it would give a wrong identity, not an error)."""


@dataclass(frozen=True)
class RecognizerFingerprint:
    """What identifies an ArcFace ONNX: input side, output width and the number of Conv nodes (depth)."""

    file: str
    input_side: int | None
    output_dim: int | None
    convs: int

    @property
    def architecture(self) -> str:
        return IRESNET_CONVS.get(self.convs, f"a network with {self.convs} convolutions")

    def describe(self) -> str:
        return f"{Path(self.file).name}: {self.architecture}, {self.input_side}x{self.input_side} input, {self.output_dim}-d output"


ANTELOPEV2 = RecognizerFingerprint("glintr100.onnx", 112, 512, 103)

_CACHE: dict[tuple[str, int, int], RecognizerFingerprint] = {}


def _dim(d) -> int | None:
    return int(d.dim_value) if d.HasField("dim_value") else None


def recognizer_fingerprint(path: str | os.PathLike) -> RecognizerFingerprint:
    """Fingerprint of one recogniser ONNX file, cached per (path, size, mtime): the graph is parsed once."""
    st = os.stat(path)
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _CACHE:
        try:
            import onnx  # insightface depends on it
        except ImportError as exc:
            raise WrongFaceModelError(
                f"cannot check the recogniser {Path(path).name}: the onnx package is missing (pip install onnx; "
                "insightface normally installs it)"
            ) from exc

        graph = onnx.load(str(path), load_external_data=False).graph
        init = {t.name for t in graph.initializer}
        inputs = [i for i in graph.input if i.name not in init]
        in_dims = [_dim(d) for d in inputs[0].type.tensor_type.shape.dim] if inputs else []
        out_dims = [_dim(d) for d in graph.output[0].type.tensor_type.shape.dim] if graph.output else []
        convs = sum(1 for n in graph.node if n.op_type == "Conv")
        side = in_dims[2] if len(in_dims) == 4 and in_dims[2] == in_dims[3] else None
        _CACHE[key] = RecognizerFingerprint(str(path), side, out_dims[-1] if out_dims else None, convs)
    return _CACHE[key]


def _matches(fp: RecognizerFingerprint) -> bool:
    return (fp.input_side, fp.output_dim, fp.convs) == (ANTELOPEV2.input_side, ANTELOPEV2.output_dim, ANTELOPEV2.convs)


def check_antelopev2(judge, user: str = "PuLID-Flux") -> RecognizerFingerprint:
    """Raise WrongFaceModelError unless ``judge`` embeds faces with antelopev2's recogniser; return its fingerprint."""
    need = (
        f"{user} needs antelopev2's recogniser ({ANTELOPEV2.describe()}), the model PuLID-Flux was trained with: put "
        f"the antelopev2 pack's .onnx files in {ANTELOPEV2_FOLDER} and pick 'insightface: antelopev2' in Load Face "
        "Analysis for PuLID (other judges stay available for scoring)"
    )
    rec = getattr(judge, "recognizer_file", None)
    if rec is None:
        dim = getattr(judge, "embedding_dim", "?")
        raise WrongFaceModelError(f"the face analysis is {getattr(judge, 'name', type(judge).__name__)} ({dim}-d embeddings). {need}")
    fp = recognizer_fingerprint(rec)
    if not _matches(fp):
        raise WrongFaceModelError(f"the face analysis {getattr(judge, 'name', '?')} runs {fp.describe()} (in {Path(rec).parent}). {need}")
    return fp
