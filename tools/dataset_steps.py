"""The steps of ``likeness dataset`` one by one: buckets, sharpness, identity centre, crop plan, shot type and
caption templates (tools/dataset.py runs them over a folder)."""

from __future__ import annotations

import hashlib
import math
import re
import string
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from PIL import Image

from ..common.images import IMAGE_SUFFIXES as IMAGE_EXTENSIONS
from ..face.errors import FaceError

TRAIN_DIR = "train"
DECISIONS_CSV = "decisions.csv"
CONTACT_SHEET = "contact_sheet.png"
SHARPNESS_SIZE = 128
TEMPLATE_FIELDS = ("trigger", "shot", "caption")


# ----------------------------------------------------------------------------------------------- pieces


def parse_buckets(text: str) -> tuple[tuple[int, int], ...]:
    """ "1024x1024,896x1216" -> ((1024, 1024), (896, 1216)); width x height, multiples of 8."""
    out = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", part)
        if not m:
            raise FaceError(f"bucket {part!r} is not WIDTHxHEIGHT: write e.g. 1024x1024,896x1216")
        w, h = int(m.group(1)), int(m.group(2))
        if w < 64 or h < 64 or w % 8 or h % 8:
            raise FaceError(f"bucket {w}x{h} must be at least 64 px and a multiple of 8 on each side (latent grid)")
        out.append((w, h))
    return tuple(out)


def sharpness(image: np.ndarray, box: Sequence[float], size: int = SHARPNESS_SIZE) -> float:
    """Variance of the Laplacian of the gray face box, resampled to ``size`` x ``size`` (see module docstring)."""
    h, w = image.shape[:2]
    x0, y0 = max(0, int(math.floor(box[0]))), max(0, int(math.floor(box[1])))
    x1, y1 = min(w, int(math.ceil(box[2]))), min(h, int(math.ceil(box[3])))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return 0.0
    gray = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    shrink = gray.shape[0] > size or gray.shape[1] > size
    gray = cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return float(cv2.Laplacian(gray.astype(np.float64), cv2.CV_64F).var())


def identity_centre(embeddings: Sequence[np.ndarray], min_similarity: float) -> tuple[np.ndarray, np.ndarray]:
    """(centre, cosine of each embedding to it); see the module docstring for the medoid-then-mean rule."""
    if not embeddings:
        raise FaceError("no face embeddings to build an identity centre from")
    u = np.stack([np.asarray(e, np.float64) / np.linalg.norm(e) for e in embeddings])
    sims = u @ u.T
    medoid = int(np.argmax(sims.sum(axis=1)))
    inliers = sims[medoid] >= min_similarity  # includes the medoid itself (cos 1)
    mean = u[inliers].mean(axis=0)
    centre = mean / np.linalg.norm(mean)
    return centre, u @ centre


def choose_bucket(width: int, height: int, buckets: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The bucket whose aspect ratio is closest to the image's, in log space (2:1 and 1:2 are equally far)."""
    a = math.log(width / height)
    return min(buckets, key=lambda b: (abs(math.log(b[0] / b[1]) - a), -b[0] * b[1]))


def plan_crop(
    image_wh: tuple[int, int],
    face_box: Sequence[float],
    bucket: tuple[int, int],
    *,
    face_x: float = 0.5,
    face_y: float = 0.4,
    face_fraction: float | None = None,
) -> tuple[tuple[float, float, float, float], bool]:
    """Crop box (x0, y0, x1, y1) with the bucket's aspect, inside the image, face centre at (face_x, face_y).

    Size: the face box height / ``face_fraction``, or the largest crop that fits when None; shrunk to fit the
    image. Position: the face centre goes to the requested relative point, then the box is moved back inside
    the image when needed (no padding: padded borders would be learned by the LoRA). Returns the box and
    whether it had to be moved (``clamped``), in which case the face sits off the requested point.
    """
    W, H = image_wh
    bw, bh = bucket
    aspect = bw / bh
    if face_fraction is None:
        cw = min(float(W), H * aspect)
    else:
        cw = (face_box[3] - face_box[1]) / face_fraction * aspect
        cw = min(cw, float(W), H * aspect)
    ch = cw / aspect
    fcx, fcy = (face_box[0] + face_box[2]) / 2.0, (face_box[1] + face_box[3]) / 2.0
    x0, y0 = fcx - face_x * cw, fcy - face_y * ch
    cx0, cy0 = min(max(x0, 0.0), W - cw), min(max(y0, 0.0), H - ch)
    clamped = abs(cx0 - x0) > 0.5 or abs(cy0 - y0) > 0.5
    return (cx0, cy0, cx0 + cw, cy0 + ch), clamped


def shot_type(face_height_fraction: float) -> str:
    """Caption word for how much of the crop the face fills (our own cut-offs, by eye on portrait framing)."""
    if face_height_fraction >= 0.4:
        return "close-up"
    if face_height_fraction >= 0.2:
        return "portrait"
    if face_height_fraction >= 0.1:
        return "upper body"
    return "full body"


def check_template(template: str, has_caption: bool) -> None:
    """Refuse unknown placeholders, and {caption} without a captioner, before any work is done."""
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise FaceError(
            f"caption template {template!r} is malformed ({exc}): use {{trigger}}, {{shot}}, {{caption}}"
        ) from exc
    unknown = sorted(n for n in names if n not in TEMPLATE_FIELDS)
    if unknown:
        raise FaceError(
            f"caption template uses unknown fields {unknown}: only {{trigger}}, {{shot}}, {{caption}} exist"
        )
    if "caption" in names and not has_caption:
        raise FaceError(
            "caption template uses {caption} but no captioner was chosen: add --caption florence2 --florence2 DIR"
        )


def default_template(has_caption: bool) -> str:
    return "{trigger}, {caption}" if has_caption else "a {shot} photo of {trigger}"


def render_caption(template: str, trigger: str, shot: str, caption: str = "") -> str:
    """The caption text: the template filled in, whitespace collapsed to single spaces."""
    text = template.format(trigger=trigger, shot=shot, caption=caption.strip())
    return " ".join(text.split())


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _thumb(img: np.ndarray, size: int = 192) -> np.ndarray:
    im = Image.fromarray(img)
    im.thumbnail((size, size), Image.BICUBIC)
    return np.asarray(im)


def _fmt_box(box: Sequence[float]) -> str:
    return " ".join(f"{v:.1f}" for v in box)


def input_images(folder: Path) -> tuple[list[Path], list[Path]]:
    """(image files, other files) directly inside ``folder``, sorted."""
    files = sorted(p for p in Path(folder).iterdir() if p.is_file())
    return [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS], [
        p for p in files if p.suffix.lower() not in IMAGE_EXTENSIONS
    ]


def check_output(input_dir: Path, output_dir: Path, overwrite: bool) -> None:
    """The output must not be the input or inside it, and must be empty unless it is our own earlier output."""
    src, dst = Path(input_dir).resolve(), Path(output_dir).resolve()
    if dst == src or src in dst.parents:
        raise FaceError(
            f"output {dst} is inside the input folder {src}: choose a folder outside it (inputs are never written)"
        )
    if (dst / TRAIN_DIR).resolve() == src:
        raise FaceError(f"the input folder {src} is {dst / TRAIN_DIR}, where outputs go: choose another output")
    if dst.exists() and any(dst.iterdir()):
        if not overwrite:
            raise FaceError(f"output folder {dst} is not empty: choose a new folder or pass --overwrite")
        if not (dst / DECISIONS_CSV).is_file():
            raise FaceError(
                f"output folder {dst} is not empty and holds no {DECISIONS_CSV}: --overwrite only replaces an "
                "earlier likeness dataset output; choose a new folder"
            )
