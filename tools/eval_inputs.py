"""The inputs of ``likeness eval``: (reference set, before, after) or (reference set, generated) items from a
folder layout or a CSV (see tools/evaluation.py for the layouts)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..common.images import list_images
from ..face.errors import FaceError

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


