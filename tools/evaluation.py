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
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..face.errors import FaceError, NoFaceError
from ..face.judge import FaceJudge, FaceRecord, select_faces
from ..face.metrics import METRICS, delta_id, face_embed_distance, identity_similarity, reference_embedding
from ..face.regions import REGION_NAMES, AlignedFace, align_and_parse, compare_regions, region_columns
from ..face.report import enhancement_report

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

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
REFERENCE_DIRS = ("reference", "references", "ref")
PAIRS_GROUP = "pairs"
GENERATED_GROUP = "generated"
BASELINE_GROUP = "baseline"


@dataclass(frozen=True)
class EvalItem:
    """One thing to score: ``image`` (the after or generated image) against ``reference`` (one or more photos);
    ``before`` is set for a before/after pair."""

    name: str
    group: str
    reference: tuple[Path, ...]
    image: Path
    before: Path | None = None

    @property
    def kind(self) -> str:
        return "pair" if self.before is not None else "generated"


# ------------------------------------------------------------------------------------------------ input


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` (by extension, case-insensitive), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FaceError(f"{folder} is not a folder: give a folder of images")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def load_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB, EXIF orientation applied (as ComfyUI's LoadImage does); the file is only read."""
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            return np.asarray(im.convert("RGB")).copy()
    except FileNotFoundError as exc:
        raise FaceError(f"image {path} does not exist: check the path") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise FaceError(f"image {path} cannot be read ({exc}): re-save it as PNG or JPEG") from exc


def _by_stem(paths: Sequence[Path], folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in paths:
        if p.stem in out:
            raise FaceError(
                f"{folder} has two images named {p.stem!r} ({out[p.stem].name}, {p.name}): pairs are matched by "
                "file name without extension, so rename one"
            )
        out[p.stem] = p
    return out


def _reference_set(paths: Iterable[Path]) -> tuple[Path, ...]:
    refs: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            refs.extend(list_images(p))
        elif p.is_file():
            refs.append(p)
        else:
            raise FaceError(f"reference {p} does not exist: give photos of the person or a folder of them")
    if not refs:
        raise FaceError(f"no reference image found in {', '.join(str(p) for p in paths)}: add photos of the person")
    return tuple(dict.fromkeys(refs))


def build_items(
    reference: Sequence[Path],
    *,
    before: Path | None = None,
    after: Path | None = None,
    generated: Sequence[Path] = (),
) -> list[EvalItem]:
    """Items from explicit folders: pairs matched by stem between ``before`` and ``after``; each ``generated``
    folder gives its loose images as one group (named after the folder, "generated" when it is called that)
    and each image-holding sub-folder as another."""
    refs = _reference_set(reference)
    items: list[EvalItem] = []
    if (before is None) != (after is None):
        raise FaceError("give both a before and an after folder (pairs are matched by file name), or neither")
    if before is not None and after is not None:
        b = _by_stem(list_images(before), Path(before))
        a = _by_stem(list_images(after), Path(after))
        missing_a, missing_b = sorted(set(b) - set(a)), sorted(set(a) - set(b))
        if missing_a or missing_b:
            parts = []
            if missing_a:
                parts.append(f"in {before} but not in {after}: {', '.join(missing_a[:5])}")
            if missing_b:
                parts.append(f"in {after} but not in {before}: {', '.join(missing_b[:5])}")
            raise FaceError(f"before/after images must pair up by name; unmatched {'; '.join(parts)}")
        if not b:
            raise FaceError(f"no images in {before} and {after}: add before/after pairs with matching names")
        items += [EvalItem(stem, PAIRS_GROUP, refs, a[stem], b[stem]) for stem in sorted(b)]
    for folder in generated:
        folder = Path(folder)
        loose = list_images(folder)
        group = GENERATED_GROUP if folder.name == GENERATED_GROUP else folder.name
        items += [EvalItem(p.stem, group, refs, p) for p in loose]
        for sub in sorted(d for d in folder.iterdir() if d.is_dir()):
            items += [EvalItem(p.stem, sub.name, refs, p) for p in list_images(sub)]
    if not items:
        raise FaceError("nothing to score: give before/after folders or a generated folder with images")
    return items


def read_items_csv(path: Path) -> list[EvalItem]:
    """Items from a CSV (see the module docstring for its columns)."""
    path = Path(path)
    base = path.parent
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise FaceError(f"cannot read the CSV {path} ({exc}): give a UTF-8 CSV with a header row") from exc
    if not rows:
        raise FaceError(f"{path} has no data rows: add one row per image to score")
    header = {k.strip().lower(): k for k in rows[0] if k is not None}
    image_col = next((header[c] for c in ("after", "generated", "image") if c in header), None)
    if "reference" not in header or image_col is None:
        raise FaceError(
            f"{path} needs the columns 'reference' and 'after' (or 'generated'); found {', '.join(header) or 'none'}"
        )

    def resolve(cell: str) -> Path:
        p = Path(cell.strip()).expanduser()
        return p if p.is_absolute() else base / p

    items = []
    for i, row in enumerate(rows, start=2):  # line 1 is the header
        ref_cell = (row.get(header["reference"]) or "").strip()
        img_cell = (row.get(image_col) or "").strip()
        if not ref_cell or not img_cell:
            raise FaceError(f"{path} line {i}: 'reference' and '{image_col}' must not be empty")
        refs = _reference_set(resolve(c) for c in ref_cell.split(";") if c.strip())
        image = resolve(img_cell)
        before_cell = (row.get(header["before"]) or "").strip() if "before" in header else ""
        before = resolve(before_cell) if before_cell else None
        for p in (image, before):
            if p is not None and not p.is_file():
                raise FaceError(f"{path} line {i}: {p} does not exist")
        default_group = PAIRS_GROUP if before is not None else GENERATED_GROUP
        group = (row.get(header["group"]) or "").strip() if "group" in header else ""
        name = (row.get(header["name"]) or "").strip() if "name" in header else ""
        items.append(EvalItem(name or image.stem, group or default_group, refs, image, before))
    return items


def discover(root: Path) -> list[EvalItem]:
    """Items from a CSV file or a folder laid out as described in the module docstring."""
    root = Path(root)
    if root.is_file():
        if root.suffix.lower() != ".csv":
            raise FaceError(f"{root} is a file but not a .csv: give a CSV or a folder with reference/ inside")
        return read_items_csv(root)
    if not root.is_dir():
        raise FaceError(f"{root} does not exist: give a folder (with reference/ and after/ or generated/) or a CSV")
    ref_dir = next((root / d for d in REFERENCE_DIRS if (root / d).is_dir()), None)
    if ref_dir is None:
        raise FaceError(
            f"{root} has no reference folder: put photos of the person in {root / 'reference'} (or pass --reference)"
        )
    before, after, gen = root / "before", root / "after", root / GENERATED_GROUP
    has_pairs = before.is_dir() or after.is_dir()
    if not has_pairs and not gen.is_dir():
        raise FaceError(f"{root} has neither before/ + after/ nor generated/: add the images to score there")
    return build_items(
        [ref_dir],
        before=before if has_pairs else None,
        after=after if has_pairs else None,
        generated=[gen] if gen.is_dir() else [],
    )


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


# ---------------------------------------------------------------------------------------------- summary


def _stats(values: Sequence[float]) -> dict[str, float]:
    """mean, median, std (population, ddof=0: the spread of these scores, not an estimate), min, max."""
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=np.float64)
    if v.size == 0:
        return {k: math.nan for k in ("mean", "median", "std", "min", "max")}
    return {
        "mean": float(v.mean()),
        "median": float(np.median(v)),
        "std": float(v.std()),
        "min": float(v.min()),
        "max": float(v.max()),
    }


def _rate(flags: Sequence[bool], n: int) -> float:
    return float(sum(bool(f) for f in flags)) / n if n else math.nan


def _group_summary(
    rows: Sequence[dict[str, Any]], user_threshold: float | None, baseline_min: float | None
) -> dict[str, Any]:
    n = len(rows)
    faced = [r for r in rows if not r["no_face"]]
    cos = [r["cosine"] for r in faced]
    out: dict[str, Any] = {
        "n": n,
        "n_face": len(faced),
        "no_face_rate": _rate([r["no_face"] for r in rows], n),
        "cosine": _stats(cos),
        "normalized": _stats([r["normalized"] for r in faced]),
        # shares are over ALL rows: an image without a face does not count as a match
        "same_person_rate": _rate([r["same_person"] for r in rows], n),
        "above_user_threshold_rate": (
            math.nan if user_threshold is None else _rate([r["cosine"] >= user_threshold for r in faced], n)
        ),
        "within_baseline_rate": (
            math.nan if baseline_min is None else _rate([r["cosine"] >= baseline_min for r in faced], n)
        ),
    }
    pairs = [r for r in rows if r["kind"] == "pair"]
    if pairs:
        both = [r for r in pairs if not r["no_face"] and not r["no_face_before"]]
        out["pairs"] = {
            "n": len(pairs),
            "no_face_before_rate": _rate([r["no_face_before"] for r in pairs], len(pairs)),
            "cosine_before": _stats([r["cosine_before"] for r in pairs if not r["no_face_before"]]),
            "delta_id": _stats([r["delta_id"] for r in both]),
            # improved = delta_id > 0 among pairs with a face on both sides
            "improved_rate": _rate([r["delta_id"] > 0 for r in both], len(both)),
            "ssim_outside": _stats([r["ssim_outside"] for r in pairs]),
            "psnr_outside_median": float(
                np.median([r["psnr_outside"] for r in pairs if not math.isnan(r["psnr_outside"])])
            )
            if any(not math.isnan(r["psnr_outside"]) for r in pairs)
            else math.nan,
        }
    if rows and "region_face" in rows[0]:
        out["regions"] = {name: _stats([r[f"region_{name}"] for r in faced])["mean"] for name in REGION_NAMES}
    return out


def summarize(rows: Sequence[dict[str, Any]], *, user_threshold: float | None = None) -> dict[str, Any]:
    """Summary per group, over all scored rows ("all") and for the real-vs-real baseline.

    Per group: n, no-face rate, cosine mean/median/std/min/max and normalised distance over the images WITH a
    face; shares over ALL images (a missing face never counts as a pass): same-person (distance < threshold),
    cosine >= ``user_threshold``, and cosine >= the baseline's lowest real-vs-real cosine. Pairs add the before
    cosine, delta ID (mean/median/std, share improved) and outside-mask SSIM/PSNR.
    """
    scored = [r for r in rows if r["kind"] != "baseline"]
    base = [r for r in rows if r["kind"] == "baseline"]
    base_cos = [r["cosine"] for r in base if not r["no_face"]]
    baseline_min = min(base_cos) if base_cos else None
    groups: dict[str, list] = {}
    for r in scored:
        groups.setdefault(r["group"], []).append(r)
    first = rows[0] if rows else {}
    summary: dict[str, Any] = {
        "judge": first.get("judge"),
        "metric": first.get("metric"),
        "threshold": first.get("threshold"),
        "user_threshold": user_threshold,
        "groups": {g: _group_summary(rs, user_threshold, baseline_min) for g, rs in groups.items()},
        "all": _group_summary(scored, user_threshold, baseline_min) if scored else None,
        "baseline": _group_summary(base, user_threshold, None) if base else None,
    }
    return summary


# ----------------------------------------------------------------------------------------------- output


def format_cell(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    return "" if v is None else str(v)


def write_rows_csv(rows: Sequence[dict[str, Any]], path: Path, cols: Sequence[str]) -> None:
    """CSV with full float precision (repr), NaN as an empty cell, booleans as true/false."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow([format_cell(r.get(c)) for c in cols])
