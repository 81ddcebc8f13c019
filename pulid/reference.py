"""Reference photos -> PuLID-Flux ID tokens, prepared as the official PuLID-Flux app does (no ComfyUI here).

Steps per photo (official ``app_flux.py`` + ``pulid/pipeline_flux.py::get_id_embedding``, ToTheBeginning/PuLID):
a photo whose long edge exceeds 1024 px is resized to 1024 with Lanczos (``resize_numpy_image_long``: the new sides
are ``int(side * 1024 / long)``, cv2 INTER_LANCZOS4) before detection and alignment; the largest face gives the ArcFace
embedding and the 5 landmarks; the face is aligned to 512, parsed, whitened and grayed; EVA-CLIP encodes it; the
IDFormer turns (ArcFace, EVA class token, EVA hidden states) into ID tokens. When the detector finds no face,
detection is retried at smaller detector sizes (640 down to 320, step 64), as both ComfyUI ports do, which finds the
face in tight face crops. For true CFG the official pipeline encodes zero inputs for the negative pass
(``zero_id_tokens``).
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch

from ..eva_clip import preprocess as eva_preprocess
from ..face.align import align_face
from ..face.errors import NoFaceError
from ..face.judge import FaceRecord, select_faces, to_rgb_uint8
from ..face.pulid_features import prepare_pulid_face, to_gray
from .fusion import fuse_id_tokens
from .model import id_cond_from

__all__ = [
    "DETECT_SIZES",
    "MAX_REFERENCE_SIDE",
    "IdCache",
    "ReferenceEncoder",
    "detect_reference_face",
    "encode_face",
    "resize_long_edge",
    "zero_id_tokens",
]

log = logging.getLogger(__name__)

MAX_REFERENCE_SIDE = 1024
DETECT_SIZES = tuple(range(640, 319, -64))  # 640, 576, ..., 320


def resize_long_edge(rgb_uint8: np.ndarray, max_side: int = MAX_REFERENCE_SIDE) -> np.ndarray:
    """The photo itself when its long edge is <= max_side, else resized so it is, exactly as the official app."""
    import cv2

    h, w = rgb_uint8.shape[:2]
    if max(h, w) <= max_side:
        return rgb_uint8
    k = max_side / max(h, w)
    return cv2.resize(rgb_uint8, (int(w * k), int(h * k)), interpolation=cv2.INTER_LANCZOS4)


def detect_reference_face(judge, rgb_uint8: np.ndarray, order: str = "largest", index: int = 0,
                          sizes: Sequence[int] = DETECT_SIZES) -> tuple[FaceRecord | None, object]:
    """(the chosen face or None, the detector size that found it): retries at smaller detector sizes."""
    tried = judge.retry_sizes(sizes) if hasattr(judge, "retry_sizes") else (None,)
    for size in tried:
        records = judge.detect_embed_at(rgb_uint8, size) if size is not None else judge.detect_embed(rgb_uint8)
        faces = select_faces(records, order=order, index=index)
        if faces:
            return faces[0], size
    return None, tried[-1] if tried else None


def _eva_input(image01: np.ndarray, face: FaceRecord, parser, gray: bool) -> torch.Tensor:
    if parser is not None:
        face_input, _ = prepare_pulid_face(image01, face.landmarks5, parser, method="lmeds", gray=gray)
        return face_input
    aligned, _ = align_face(image01, face.landmarks5, size=512, method="lmeds")
    aligned = torch.as_tensor(aligned).permute(2, 0, 1)[None].float()
    return to_gray(aligned) if gray else aligned


def _encode(pulid, eva, arcface: torch.Tensor | None, face_input: torch.Tensor | None) -> torch.Tensor:
    """Run EVA-CLIP + IDFormer; ``face_input`` None means the official uncond path (all inputs zero)."""
    device = next(eva.parameters()).device
    enc = pulid.encoder
    p = next(enc.parameters())
    with torch.no_grad():
        pixels = eva_preprocess(
            (face_input if face_input is not None else torch.zeros(1, 3, 512, 512)).to(device), eva.config.image_size
        )
        cls_emb, hidden = eva(pixels.to(next(eva.parameters()).dtype))
        hidden = [h.to(p.device, p.dtype) for h in hidden]
        if face_input is None:  # official: id_cond and every hidden state replaced by zeros of the same shape
            id_cond, hidden = torch.zeros(1, pulid.config.id_cond_dim), [torch.zeros_like(h) for h in hidden]
        else:
            id_cond = id_cond_from(arcface.to(cls_emb.device), cls_emb.float())
        tokens = enc(id_cond.to(p.device, p.dtype), hidden)
    return tokens.float().cpu()


def encode_face(pulid, eva, image01: np.ndarray, face: FaceRecord, parser=None, gray: bool = True) -> torch.Tensor:
    """ID tokens (1, K, D) of one detected face in ``image01`` (H, W, 3 floats in [0, 1])."""
    arc = torch.as_tensor(np.asarray(face.embedding, dtype=np.float32))[None]
    return _encode(pulid, eva, arc, _eva_input(image01, face, parser, gray))


def zero_id_tokens(pulid, eva) -> torch.Tensor:
    """The encoder's tokens for zero id_cond and zero hidden states: the official negative-pass ID (true CFG)."""
    return _encode(pulid, eva, None, None)


def prepare_reference(image: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 RGB for the detector, float [0, 1] RGB for alignment), both at the official reference size."""
    rgb = to_rgb_uint8(image)
    small = resize_long_edge(rgb)
    if small is rgb:  # no resize: align on the original floats, as before
        arr = image.detach().to("cpu", torch.float32).numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
        if arr.dtype == np.uint8:
            arr = arr.astype(np.float32) / 255.0
        return rgb, np.ascontiguousarray(arr[..., :3], dtype=np.float32)
    return small, small.astype(np.float32) / 255.0


class IdCache:
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


def image_key(img: torch.Tensor) -> str:
    arr = img.detach().to("cpu", torch.float32).contiguous().numpy()
    return hashlib.sha256(arr.tobytes() + str(arr.shape).encode()).hexdigest()


class ReferenceEncoder:
    """Encodes a batch of reference photos with a cache; ``uid``s name the weights so reloads keep hitting it."""

    def __init__(self, cache: IdCache | None = None):
        self.cache = cache or IdCache()

    def encode(self, pulid, pulid_uid: str, eva, eva_uid: str, judge, judge_key: str, parser, images: torch.Tensor,
               order: str = "largest", face_index: int = 0, gray: bool = True, interrupt=None) -> tuple[list[torch.Tensor], int]:
        """([tokens (1, K, D) per image], how many were encoded rather than cached)."""
        tokens, encoded = [], 0
        for i in range(images.shape[0]):
            if interrupt is not None:
                interrupt()
            key = "|".join((image_key(images[i]), pulid_uid, eva_uid, judge_key, str(parser is not None), order, str(face_index), str(gray)))
            hit = self.cache.get(key)
            if hit is None:
                hit = self._encode_one(pulid, eva, judge, parser, images[i], i, order, face_index, gray)
                self.cache.put(key, hit)
                encoded += 1
            tokens.append(hit)
        return tokens, encoded

    def _encode_one(self, pulid, eva, judge, parser, image, index: int, order: str, face_index: int, gray: bool) -> torch.Tensor:
        rgb, image01 = prepare_reference(image)
        face, size = detect_reference_face(judge, rgb, order, face_index)
        if face is None:
            raise NoFaceError(index, "reference", hint="give Apply PuLID-Flux a photo where the face is clearly visible")
        scale = rgb.shape[1] / (image.shape[1] if isinstance(image, torch.Tensor) else np.asarray(image).shape[1])
        log.info("PuLID-Flux: reference %d uses face box %s (order=%s, index=%d, detector size %s, reference scale %.3f)",
                 index, [round(v / scale) for v in face.box], order, face_index, size or "default", scale)
        return encode_face(pulid, eva, image01, face, parser, gray)

    def zero_tokens(self, pulid, pulid_uid: str, eva, eva_uid: str, n: int, method: str, weight_min: float, weight_max: float) -> torch.Tensor:
        """Uncond tokens fused like the cond ones (same K'), from one cached zero-input encoding."""
        key = f"zero|{pulid_uid}|{eva_uid}"
        zero = self.cache.get(key)
        if zero is None:
            zero = zero_id_tokens(pulid, eva)
            self.cache.put(key, zero)
        return fuse_id_tokens(zero.expand(n, -1, -1), method, weight_min, weight_max)
