"""Prepare a LoRA training set from a folder of photos of one person.

Each photo goes through the same checks, in order, and the first that fails is recorded as the reason:
``unreadable`` -> ``no face`` -> ``multiple faces`` -> ``tiny face`` -> ``blurred face`` -> ``identity outlier``
-> ``too small for bucket``. Kept photos are cropped around the face to a training bucket, resized, and written
as ``<stem>.png`` + ``<stem>.txt`` (the layout kohya-ss sd-scripts, ai-toolkit and OneTrainer read). The input
folder is only read: outputs go to a separate folder, which may not be the input or lie inside it.

Why each check (after the filtering step of the seed pipeline, which rejected distant, multi-face and other-person
shots before training):
* faces are counted only above a detector score (``min_score``): dlib's HOG finds weak false faces in
  textures (0.06-0.13 on the astronaut's suit patch, real faces here score 0.37-2.8);
* sharpness is the variance of the Laplacian (Pech-Pacheco et al., "Diatom autofocusing in brightfield
  microscopy: a comparative study", ICPR 2000) of the gray face box resampled to 128x128, so big and small faces
  are judged on one scale (a face smaller than 128 px is judged as it would look at 128 px, which is what the
  LoRA will see after upscaling). Measured: sharp real faces 54-1220, the astronaut blurred with a Gaussian of
  sigma 1 / 2 px: 26 / 7; default threshold 15;
* identity: unit embeddings u_i; the medoid m (the photo with the largest summed cosine to all others, robust to
  a minority of other people where a plain mean is not); the identity centre c = the normalised mean of the u_i
  with u_i . m >= s; a photo is an outlier when u_i . c < s. ``s`` defaults to the judge's same-person cosine
  threshold as a similarity (1 - judge.thresholds["cosine"]: dlib 0.93, ArcFace 0.32).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image

from ..common.errors import LikenessError
from ..common.images import IMAGE_SUFFIXES as IMAGE_EXTENSIONS
from ..common.images import load_image
from ..common.numbers import format_cell
from ..face.errors import FaceError
from ..face.judge import FaceJudge, sort_faces
from .dataset_steps import (  # noqa: F401  (re-exported: the steps are part of this module's interface)
    CONTACT_SHEET,
    DECISIONS_CSV,
    SHARPNESS_SIZE,
    TEMPLATE_FIELDS,
    TRAIN_DIR,
    _fmt_box,
    _sha256,
    _thumb,
    check_output,
    check_template,
    choose_bucket,
    default_template,
    identity_centre,
    input_images,
    parse_buckets,
    plan_crop,
    render_caption,
    sharpness,
    shot_type,
)
from .reporting import contact_sheet

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_BUCKETS",
    "REASONS",
    "DatasetOptions",
    "Decision",
    "choose_bucket",
    "identity_centre",
    "parse_buckets",
    "plan_crop",
    "prepare_dataset",
    "render_caption",
    "sharpness",
    "shot_type",
]

DEFAULT_BUCKETS = ((1024, 1024), (896, 1216), (1216, 896))  # (width, height)
REASONS = (
    "unreadable",
    "no face",
    "multiple faces",
    "tiny face",
    "blurred face",
    "identity outlier",
    "too small for bucket",
)


@dataclass
class DatasetOptions:
    """Thresholds and output choices; None means "the judge's default" where noted."""

    min_face: int = 64  # shorter side of the face box, in original pixels
    min_score: float | None = None  # None: 0.3 for dlib, 0 (the detector's own) otherwise
    min_sharpness: float = 15.0
    min_similarity: float | None = None  # None: 1 - judge.thresholds["cosine"]
    multi_face: str = "drop"  # or "largest": keep the largest confident face
    max_side: int = 1024  # detection runs on a copy with at most this long side; 0 = full size
    buckets: tuple[tuple[int, int], ...] = DEFAULT_BUCKETS
    face_x: float = 0.5
    face_y: float = 0.4
    face_fraction: float | None = None  # face box height / crop height; None = the largest crop that fits
    max_upscale: float = 2.0
    trigger: str = "ohwx person"
    template: str | None = None
    image_format: str = "png"

    def check(self) -> None:
        if self.multi_face not in ("drop", "largest"):
            raise FaceError(f"multi_face must be 'drop' or 'largest', got {self.multi_face!r}")
        if self.image_format not in ("png", "jpg"):
            raise FaceError(f"image format must be png or jpg, got {self.image_format!r}")
        if not (0.0 <= self.face_x <= 1.0 and 0.0 <= self.face_y <= 1.0):
            raise FaceError(f"face position ({self.face_x}, {self.face_y}) must lie within the crop: use 0..1")
        if self.face_fraction is not None and not 0.0 < self.face_fraction <= 1.0:
            raise FaceError(
                f"face fraction {self.face_fraction} must be in (0, 1]: e.g. 0.3 for a head-and-shoulders crop"
            )
        if self.max_upscale < 1.0 or self.min_face < 1 or self.max_side < 0:
            raise FaceError("max upscale must be >= 1, min face >= 1 px and max side >= 0")
        if not self.buckets:
            raise FaceError("give at least one bucket, e.g. 1024x1024")
        if self.min_similarity is not None and not -1.0 <= self.min_similarity <= 1.0:
            raise FaceError(f"min similarity {self.min_similarity} is a cosine: use a value in [-1, 1]")


@dataclass
class Decision:
    """What happened to one input file and why; one CSV row."""

    file: str
    sha256: str = ""
    status: str = "dropped"
    reason: str = ""
    detail: str = ""
    width: int = 0
    height: int = 0
    faces: int = 0
    face_score: float = math.nan
    face_box: str = ""
    face_px: float = math.nan
    sharpness: float = math.nan
    cosine_to_centre: float = math.nan
    bucket: str = ""
    crop_box: str = ""
    scale: float = math.nan
    face_pos: str = ""
    clamped: bool = False
    shot: str = ""
    output: str = ""
    caption: str = ""
    judge: str = ""
    _box: tuple[float, float, float, float] | None = field(default=None, repr=False)
    _emb: np.ndarray | None = field(default=None, repr=False)
    _thumb: np.ndarray | None = field(default=None, repr=False)

    def row(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


# ------------------------------------------------------------------------------------------------- run


@dataclass
class DatasetResult:
    decisions: list[Decision]
    output: Path
    train_dir: Path
    min_score: float
    min_similarity: float
    judge: str

    @property
    def kept(self) -> list[Decision]:
        return [d for d in self.decisions if d.status == "kept"]

    def summary(self) -> dict[str, Any]:
        reasons: dict[str, int] = {}
        for d in self.decisions:
            if d.status != "kept":
                reasons[d.reason] = reasons.get(d.reason, 0) + 1
        return {
            "judge": self.judge,
            "inputs": len(self.decisions),
            "kept": len(self.kept),
            "dropped": reasons,
            "min_score": self.min_score,
            "min_similarity": self.min_similarity,
            "output": str(self.output),
            "train_dir": str(self.train_dir),
        }


def _analyse(path: Path, judge: FaceJudge, opts: DatasetOptions, min_score: float) -> Decision:
    d = Decision(file=path.name, judge=judge.name)
    d.sha256 = _sha256(path)
    try:
        img = load_image(path)
    except LikenessError as exc:  # common.images.ImageReadError
        d.reason, d.detail = "unreadable", str(exc)
        return d
    H, W = img.shape[:2]
    d.width, d.height = W, H
    d._thumb = _thumb(img)
    s = 1.0
    work = img
    if opts.max_side and max(H, W) > opts.max_side:
        s = opts.max_side / max(H, W)
        work = np.asarray(Image.fromarray(img).resize((max(1, round(W * s)), max(1, round(H * s))), Image.BICUBIC))
    faces = judge.detect_embed(work)
    confident = [f for f in faces if f.score >= min_score]
    d.faces = len(confident)
    if not confident:
        d.reason = "no face"
        if faces:
            best = max(f.score for f in faces)
            d.detail = f"only weak detections (best score {best:.2f} < {min_score:g})"
        else:
            d.detail = "the detector found no face"
        return d
    if len(confident) > 1 and opts.multi_face == "drop":
        d.reason = "multiple faces"
        d.detail = f"{len(confident)} faces with score >= {min_score:g}: training photos should show only the person"
        return d
    face = sort_faces(confident, "largest")[0]
    box = tuple(v / s for v in face.box)
    d._box = box
    d.face_box = _fmt_box(box)
    d.face_score = face.score
    d.face_px = float(min(box[2] - box[0], box[3] - box[1]))
    if d.face_px < opts.min_face:
        d.reason = "tiny face"
        d.detail = f"face is {d.face_px:.0f} px < min {opts.min_face} px"
        return d
    d.sharpness = sharpness(img, box)
    if d.sharpness < opts.min_sharpness:
        d.reason = "blurred face"
        d.detail = f"sharpness (variance of Laplacian) {d.sharpness:.1f} < min {opts.min_sharpness:g}"
        return d
    d._emb = face.embedding
    d.status = "candidate"
    return d


def prepare_dataset(
    input_dir: Path,
    output_dir: Path,
    judge: FaceJudge,
    opts: DatasetOptions | None = None,
    *,
    captioner: Any = None,
    overwrite: bool = False,
    progress: Callable[[int, int, Decision], None] | None = None,
) -> DatasetResult:
    """Filter, crop and caption the photos of ``input_dir`` into ``output_dir`` (see the module docstring).

    ``captioner`` is an object with ``caption(list_of_images, task="caption") -> list[str]`` (Florence-2 from
    ``face.caption``); its text fills the template's ``{caption}``. Writes ``train/<stem>.<ext>`` and ``.txt``,
    ``decisions.csv`` and ``contact_sheet.png``; returns every decision.
    """
    opts = opts or DatasetOptions()
    opts.check()
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not input_dir.is_dir():
        raise FaceError(f"input {input_dir} is not a folder: give the folder of photos of the person")
    template = opts.template or default_template(captioner is not None)
    check_template(template, captioner is not None)
    check_output(input_dir, output_dir, overwrite)
    images, others = input_images(input_dir)
    for p in others:
        logger.info("skipping %s: not an image (%s)", p.name, ", ".join(IMAGE_EXTENSIONS))
    if not images:
        raise FaceError(f"{input_dir} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    is_dlib = judge.name.startswith("dlib")
    min_score = opts.min_score if opts.min_score is not None else (0.3 if is_dlib else 0.0)
    min_sim = opts.min_similarity if opts.min_similarity is not None else 1.0 - judge.thresholds["cosine"]

    decisions = []
    for i, path in enumerate(images):
        d = _analyse(path, judge, opts, min_score)
        decisions.append(d)
        if progress is not None:
            progress(i, len(images), d)

    candidates = [d for d in decisions if d.status == "candidate"]
    _drop_identity_outliers(candidates, min_sim, judge.name)
    train = _write_training_set(candidates, input_dir, output_dir, opts, template, captioner, overwrite)
    result = DatasetResult(decisions, output_dir, train, min_score, min_sim, judge.name)
    _write_decisions(decisions, output_dir / DECISIONS_CSV)
    contact_sheet(decisions, output_dir / CONTACT_SHEET)
    return result


def _drop_identity_outliers(candidates: list[Decision], min_sim: float, judge_name: str) -> None:
    """Drop the faces whose identity is far from the centre of the others (another person in the folder)."""
    if not candidates:
        return
    _, cos = identity_centre([d._emb for d in candidates], min_sim)
    for d, c in zip(candidates, cos):
        d.cosine_to_centre = float(c)
        if c < min_sim:
            d.status, d.reason = "dropped", "identity outlier"
            d.detail = f"cosine to the identity centre {c:.3f} < {min_sim:.3f} (judge {judge_name})"
    outliers = sum(d.reason == "identity outlier" for d in candidates)
    if outliers * 2 > len(candidates):
        logger.warning(
            "%d of %d photos with a usable face are identity outliers: check that the folder shows one person",
            outliers,
            len(candidates),
        )


def _write_training_set(
    candidates: list[Decision], input_dir: Path, output_dir: Path, opts: DatasetOptions, template: str,
    captioner: Any, overwrite: bool,
) -> Path:
    """Crop, save and caption every remaining candidate into ``output_dir/train``; returns that folder."""
    train = output_dir / TRAIN_DIR
    train.mkdir(parents=True, exist_ok=True)
    if overwrite:
        for old in train.iterdir():
            if old.is_file() and old.suffix.lower() in (*IMAGE_EXTENSIONS, ".txt"):
                old.unlink()
    used: set[str] = set()
    for d in candidates:
        if d.status != "candidate":
            continue
        crop = _crop(input_dir / d.file, d, opts)
        if crop is None:
            continue
        stem = Path(d.file).stem
        name, k = stem, 2
        while name.lower() in used:
            name, k = f"{stem}_{k}", k + 1
        used.add(name.lower())
        out = train / f"{name}.{opts.image_format}"
        im = Image.fromarray(crop)
        if opts.image_format == "jpg":
            im.save(out, quality=95, subsampling=0)
        else:
            im.save(out)
        d.output = f"{TRAIN_DIR}/{out.name}"
        d.status, d.reason = "kept", ""
        # caption the crop the trainer will see (one at a time: a folder of 1024 px crops need not sit in memory)
        text = captioner.caption([crop], task="caption")[0] if captioner is not None else ""
        d.caption = render_caption(template, opts.trigger, d.shot, text)
        (train / f"{name}.txt").write_text(d.caption + "\n", encoding="utf-8")

    return train


def _crop(path: Path, d: Decision, opts: DatasetOptions) -> np.ndarray | None:
    """Cut and resize the kept photo to its bucket; None (and a drop reason) when it would need too much upscale."""
    assert d._box is not None
    bucket = choose_bucket(d.width, d.height, opts.buckets)
    box, clamped = plan_crop(
        (d.width, d.height), d._box, bucket, face_x=opts.face_x, face_y=opts.face_y, face_fraction=opts.face_fraction
    )
    scale = bucket[0] / (box[2] - box[0])
    d.bucket, d.crop_box, d.scale, d.clamped = f"{bucket[0]}x{bucket[1]}", _fmt_box(box), scale, clamped
    fx = ((d._box[0] + d._box[2]) / 2 - box[0]) / (box[2] - box[0])
    fy = ((d._box[1] + d._box[3]) / 2 - box[1]) / (box[3] - box[1])
    d.face_pos = f"{fx:.3f} {fy:.3f}"
    d.shot = shot_type((d._box[3] - d._box[1]) / (box[3] - box[1]))
    if scale > opts.max_upscale:
        d.status, d.reason = "dropped", "too small for bucket"
        d.detail = f"the crop needs x{scale:.2f} upscaling to {d.bucket} > max x{opts.max_upscale:g}"
        return None
    img = load_image(path)
    # PIL resamples a float box directly, so the face lands where plan_crop put it (no integer rounding).
    out = Image.fromarray(img).resize(bucket, Image.LANCZOS, box=box)
    return np.asarray(out)


def _write_decisions(decisions: Sequence[Decision], path: Path) -> None:
    import csv

    rows = [d.row() for d in decisions]
    cols = list(rows[0]) if rows else list(Decision(file="").row())
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow([format_cell(r[c]) for c in cols])
