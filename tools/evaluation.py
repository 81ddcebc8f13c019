"""Offline evaluation of identity runs: find (reference set, before, after) or (reference set, generated) items,
score them with the same pure code as the nodes, summarise, and measure the person's own real-vs-real spread.

Numbers agree with the nodes because they are computed by the same functions on the same pixels:
``face_embed_distance`` (Face Embed Distance node: raw distance, normalised distance, cosine, no-face flag) and
``enhancement_report`` (Enhancement Report node: delta ID, SSIM/PSNR outside the face boxes x1.3). Images are
read like ComfyUI's LoadImage (EXIF orientation applied, RGB, 8 bit), and faces are chosen like the nodes
(``select_faces`` with the same order and index).

Input layouts (``discover``):
* a folder with ``reference/`` (photos of the person) and ``before/`` + ``after/`` (pairs matched by file
  stem) and/or ``generated/`` (images directly inside form the group "generated"; each sub-folder is a group
  of its own, e.g. one per configuration);
* a CSV with a header: ``reference`` (one or more files or folders separated by ``;``), ``after`` (or
  ``generated`` / ``image``), optional ``before``, ``group`` and ``name``; relative paths are read from the
  CSV's folder.
"""

from __future__ import annotations

import csv
import logging
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..common.images import IMAGE_SUFFIXES as IMAGE_EXTENSIONS
from ..common.images import list_images, load_image
from ..common.numbers import format_cell
from ..face.errors import FaceError, NoFaceError
from ..face.judge import FaceJudge, FaceRecord, select_faces
from ..face.metrics import METRICS, delta_id, face_embed_distance, identity_similarity, reference_embedding
from ..face.regions import AlignedFace, align_and_parse, compare_regions, region_columns
from ..face.report import enhancement_report
from .eval_inputs import BASELINE_GROUP, REFERENCE_DIRS, EvalItem, build_items, discover, read_items_csv
from .eval_summary import summarize

logger = logging.getLogger(__name__)

__all__ = [
    "IMAGE_EXTENSIONS",
    "REFERENCE_DIRS",
    "EvalItem",
    "FaceCache",
    "base_columns",
    "baseline_rows",
    "build_items",
    "columns",
    "discover",
    "format_cell",
    "list_images",
    "load_image",
    "read_items_csv",
    "same_person_cosine",
    "score_items",
    "summarize",
    "write_rows_csv",
]


# ---------------------------------------------------------------------------------------------- scoring


@dataclass
class FaceCache:
    """Loads images and runs the judge once per file (a reference set is shared by every row), choosing the
    face like the nodes do. ``parser`` (a BiSeNet) turns on region scores."""

    judge: FaceJudge
    face_order: str = "largest"
    face_index: int = 0
    parser: Any = None
    max_images: int = 8
    _records: dict[Path, FaceRecord | None] = field(default_factory=dict)
    _images: OrderedDict = field(default_factory=OrderedDict)
    _aligned: dict[Path, AlignedFace | None] = field(default_factory=dict)

    @property
    def n_images(self) -> int:
        """How many distinct files went through the judge."""
        return len(self._records)

    def image(self, path: Path) -> np.ndarray:
        path = Path(path)
        img = self._images.get(path)
        if img is None:
            img = load_image(path)
            self._images[path] = img
            while len(self._images) > self.max_images:
                self._images.popitem(last=False)
        else:
            self._images.move_to_end(path)
        return img

    def record(self, path: Path) -> FaceRecord | None:
        path = Path(path)
        if path not in self._records:
            try:
                faces = select_faces(self.judge.detect_embed(self.image(path)), self.face_order, self.face_index)
            except FaceError as exc:
                raise FaceError(f"{path}: {exc}") from exc
            self._records[path] = faces[0] if faces else None
        return self._records[path]

    def embedding(self, path: Path) -> np.ndarray | None:
        rec = self.record(path)
        return None if rec is None else rec.embedding

    def aligned(self, path: Path) -> AlignedFace | None:
        """The aligned, parsed face (None without a face or without a parser)."""
        path = Path(path)
        if self.parser is None:
            return None
        if path not in self._aligned:
            rec = self.record(path)
            self._aligned[path] = (
                None if rec is None else align_and_parse(self.image(path), rec.landmarks5, self.parser)
            )
        return self._aligned[path]


def same_person_cosine(metric: str, threshold: float, normalized_inputs: bool) -> float | None:
    """The cosine similarity at which a distance equals ``threshold``, for drawing one line on a cosine plot.

    cosine: 1 - t; L2_norm: 1 - t^2 / 2 (unit vectors: ||a - b||^2 = 2 - 2 cos); euclidean: the same only
    when the embeddings are unit-normalised, otherwise None. None also when the value is outside [-1, 1].
    """
    if metric == "cosine":
        c = 1.0 - threshold
    elif metric == "L2_norm" or (metric == "euclidean" and normalized_inputs):
        c = 1.0 - threshold * threshold / 2.0
    else:
        return None
    return c if -1.0 <= c <= 1.0 else None


def base_columns() -> list[str]:
    return [
        "kind", "group", "name", "image", "before", "reference", "judge", "metric", "threshold",
        "no_face", "distance", "normalized", "cosine", "same_person",
        "no_face_before", "distance_before", "normalized_before", "cosine_before",
        "delta_id", "ssim_outside", "psnr_outside", "mask_source",
    ]  # fmt: skip


def columns(regions: bool) -> list[str]:
    """CSV column order; region columns only when region scores were computed."""
    cols = base_columns()
    if regions:
        cols += list(region_columns(None)) + list(region_columns(None, "_before"))
    return cols + ["note"]


def _reference_list(cache: FaceCache, refs: Sequence[Path], without_face: str) -> list[np.ndarray | None]:
    embs = [cache.embedding(p) for p in refs]
    if without_face == "error":
        for i, (p, e) in enumerate(zip(refs, embs)):
            if e is None:
                raise NoFaceError(
                    i,
                    "reference",
                    hint=f"{p}: remove it or pass --reference-without-face skip (judge {cache.judge.name})",
                )
    if all(e is None for e in embs):
        raise NoFaceError(None, "reference", hint=f"none of {len(refs)} reference photo(s), judge {cache.judge.name}")
    return embs


def _as_float(img: np.ndarray) -> Any:
    import torch

    return torch.from_numpy(img).to(torch.float32) / 255.0  # ComfyUI's IMAGE convention


def _empty_row(item_kind: str, group: str, name: str, regions: bool) -> dict[str, Any]:
    row: dict[str, Any] = {c: math.nan for c in columns(regions)}
    row.update(kind=item_kind, group=group, name=name, before="", mask_source="", note="")
    row.update(no_face_before="", same_person=False)
    return row


def _fed_fields(res: Any, threshold: float, suffix: str = "") -> dict[str, Any]:
    out = {
        f"no_face{suffix}": res.no_face,
        f"distance{suffix}": res.distance,
        f"normalized{suffix}": res.normalized,
        f"cosine{suffix}": res.cosine_similarity,
    }
    if not suffix:
        out["same_person"] = (not res.no_face) and res.distance < threshold
    return out


def score_items(
    items: Sequence[EvalItem],
    cache: FaceCache,
    *,
    metric: str = "cosine",
    threshold: float | None = None,
    reference_without_face: str = "error",
    display: Callable[[Path], str] = str,
    progress: Callable[[int, int, EvalItem], None] | None = None,
) -> list[dict[str, Any]]:
    """One row per item (see ``columns``); ``threshold`` None means the judge's own for ``metric``.

    Identity: ``face_embed_distance`` of the image (and of ``before`` for pairs) against the reference set,
    exactly as the Face Embed Distance node. Pairs also get ``enhancement_report``: ``delta_id`` = cos_after -
    cos_before against the mean of the unit reference embeddings, and SSIM/PSNR outside the face boxes x1.3;
    pairs of different sizes get NaN there and a note, since pixels cannot be compared.
    """
    if metric not in METRICS:
        raise FaceError(f"unknown metric {metric!r}: expected one of {', '.join(METRICS)}")
    judge = cache.judge
    thr = float(threshold) if threshold else float(judge.thresholds[metric])
    regions = cache.parser is not None
    rows = []
    for k, item in enumerate(items):
        if progress is not None:
            progress(k, len(items), item)
        refs = _reference_list(cache, item.reference, reference_without_face)
        row = _empty_row(item.kind, item.group, item.name, regions)
        row.update(
            image=display(item.image),
            reference=";".join(display(p) for p in item.reference),
            judge=judge.name,
            metric=metric,
            threshold=thr,
        )
        img_emb = cache.embedding(item.image)
        targets = [img_emb] if item.before is None else [img_emb, cache.embedding(item.before)]
        fed = face_embed_distance(
            refs, targets, metric, thr, normalize_inputs=judge.normalize_embeddings, no_face=reference_without_face
        )
        row.update(_fed_fields(fed[0], thr))
        if item.before is not None:
            row["before"] = display(item.before)
            row.update(_fed_fields(fed[1], thr, "_before"))
            row.update(_pair_fields(cache, refs, item, reference_without_face))
        if regions:
            ref_faces = [f for f in (cache.aligned(p) for p in item.reference) if f is not None]
            face = cache.aligned(item.image)
            row.update(region_columns(compare_regions(ref_faces, face) if face is not None and ref_faces else None))
            if item.before is not None:
                bface = cache.aligned(item.before)
                scores = compare_regions(ref_faces, bface) if bface is not None and ref_faces else None
                row.update(region_columns(scores, "_before"))
        rows.append(row)
    return rows


def _pair_fields(cache: FaceCache, refs: list, item: EvalItem, without_face: str) -> dict[str, Any]:
    b_rec, a_rec = cache.record(item.before), cache.record(item.image)
    b_img, a_img = cache.image(item.before), cache.image(item.image)
    if b_img.shape != a_img.shape:
        # enhancement_report refuses different sizes (the node asks the user to resize); score identity only.
        note = (
            f"before is {b_img.shape[1]}x{b_img.shape[0]} but after is {a_img.shape[1]}x{a_img.shape[0]}: "
            "no outside-mask SSIM/PSNR"
        )
        ref = reference_embedding(refs, "cosine", no_face=without_face)  # what enhancement_report uses
        cos_b = identity_similarity(ref, None if b_rec is None else b_rec.embedding)
        cos_a = identity_similarity(ref, None if a_rec is None else a_rec.embedding)
        return {"delta_id": delta_id(cos_b, cos_a), "mask_source": "", "note": note}
    rep = enhancement_report(
        refs,
        None if b_rec is None else b_rec.embedding,
        None if a_rec is None else a_rec.embedding,
        _as_float(b_img),
        _as_float(a_img),
        before_box=None if b_rec is None else b_rec.box,
        after_box=None if a_rec is None else a_rec.box,
        reference_without_face=without_face,
    )
    return {
        "delta_id": rep["delta_id"],
        "ssim_outside": rep["ssim_outside"],
        "psnr_outside": rep["psnr_outside"],
        "mask_source": rep["mask_source"],
    }


def baseline_rows(
    reference: Sequence[Path],
    cache: FaceCache,
    *,
    metric: str = "cosine",
    threshold: float | None = None,
    display: Callable[[Path], str] = str,
) -> list[dict[str, Any]]:
    """Real-vs-real spread: each reference photo scored against the others (leave one out).

    Row i is ``face_embed_distance(references without i, [reference i])``, so its numbers read on the same
    scale as a generated image's. Photos without a face are left out; fewer than two faces gives no rows.
    """
    judge = cache.judge
    thr = float(threshold) if threshold else float(judge.thresholds[metric])
    with_face = [p for p in reference if cache.embedding(p) is not None]
    if len(with_face) < 2:
        logger.warning("real-vs-real baseline needs at least 2 reference photos with a face, got %d", len(with_face))
        return []
    regions = cache.parser is not None
    rows = []
    for p in with_face:
        rest = [q for q in with_face if q != p]
        res = face_embed_distance(
            [cache.embedding(q) for q in rest],
            [cache.embedding(p)],
            metric,
            thr,
            normalize_inputs=judge.normalize_embeddings,
        )[0]
        row = _empty_row("baseline", BASELINE_GROUP, Path(p).stem, regions)
        row.update(
            image=display(p),
            reference=";".join(display(q) for q in rest),
            judge=judge.name,
            metric=metric,
            threshold=thr,
        )
        row.update(_fed_fields(res, thr))
        if regions:
            rest_faces = [cache.aligned(q) for q in rest]
            row.update(region_columns(compare_regions([f for f in rest_faces if f is not None], cache.aligned(p))))
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------- output


def write_rows_csv(rows: Sequence[dict[str, Any]], path: Path, cols: Sequence[str]) -> None:
    """CSV with full float precision (repr), NaN as an empty cell, booleans as true/false."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow([format_cell(r.get(c)) for c in cols])
