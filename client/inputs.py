"""The user's input images and batch tables, checked before any server is started or contacted.

A batch CSV may come from a spreadsheet: a UTF-8 BOM, ``;`` or tab delimiters, blank lines and stray spaces are
accepted. A bad row (missing image, bad seed, short row, unsafe name) is reported with its 1-based data row
number and skipped; the other rows still run. Duplicate names get distinct outputs (``a``, ``a-2``…).
"""

from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from ..common.image_intake import ImageRejected, open_image, png_bytes
from .problems import InputError
from .safe_names import check_name, suggest_name, unique_names

log = logging.getLogger("likeness")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
MAX_SEED = 2**64 - 1


@dataclass
class ImageFile:
    path: Path
    sha: str

    @classmethod
    def check(cls, path: str | Path, role: str) -> ImageFile:
        p = Path(path).expanduser()
        try:
            intake = open_image(p, role)
        except ImageRejected as err:
            raise InputError(str(err)) from None
        for note in intake.notes:
            log.warning("likeness: %s", note)
        return cls(p.resolve(), hashlib.sha256(p.read_bytes()).hexdigest())


def upload_bytes(path: Path) -> bytes:
    """What is uploaded for an image: the file itself, or its 8-bit RGB working copy when it needed changes."""
    intake = open_image(path)
    return png_bytes(intake.image) if intake.changed else Path(path).read_bytes()


def make_pair(name: str, refs: list[str], target: str, params: dict, refs_2: list[str] | None = None) -> dict:
    if not refs:
        raise InputError(f"{name}: give at least one reference image (--ref)")
    ref_files = [ImageFile.check(r, "reference") for r in refs]
    ref2_files = [ImageFile.check(r, "reference (face 2)") for r in refs_2 or []]
    tgt = ImageFile.check(target, "target")
    return {
        "name": name,
        "reference": [str(f.path) for f in ref_files],
        "reference_2": [str(f.path) for f in ref2_files] or None,
        "target": str(tgt.path),
        "sha": [f.sha for f in ref_files + ref2_files + [tgt]],
        "params": params,
    }


def _seed(text: str, row: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise InputError(f"seed {text!r} is not a whole number: write e.g. 42", row) from None
    if not 0 <= value <= MAX_SEED:
        raise InputError(f"seed {value} is outside 0..{MAX_SEED}", row)
    return value


def _csv_rows(path: Path) -> tuple[list[str], list[tuple[int, dict]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"--pairs {str(path)!r} is not UTF-8 text ({err.reason} at byte {err.start}): save it as CSV UTF-8") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise InputError(f"--pairs {str(path)!r} is empty: it needs a header row with 'reference' and 'target'")
    try:
        dialect = csv.Sniffer().sniff(lines[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(lines, dialect)
    header = [h.strip().lower() for h in next(reader)]
    if not {"reference", "target"} <= set(header):
        raise InputError(f"--pairs {str(path)!r}: the header needs 'reference' and 'target' columns, found {header}")
    rows = []
    for i, cells in enumerate(reader, start=1):
        if len(cells) < len(header):
            cells = cells + [""] * (len(header) - len(cells))
        rows.append((i, {h: (c or "").strip() for h, c in zip(header, cells)}))
    return header, rows


def _csv_pair(path: Path, i: int, row: dict, params: dict, make) -> dict:
    if not row.get("target"):
        raise InputError("the 'target' cell is empty", i)
    base = path.parent
    refs = [str(base / r.strip()) for r in row.get("reference", "").split(";") if r.strip()]
    refs_2 = [str(base / r.strip()) for r in row.get("reference_2", "").split(";") if r.strip()]
    if not refs:
        raise InputError("the 'reference' cell is empty (';' separates several)", i)
    p = dict(params)
    if row.get("seed"):
        p["seed"] = _seed(row["seed"], i)
    if row.get("prompt"):
        p["prompt"] = row["prompt"]
    name = row.get("name") or suggest_name(f"{i:04d}_{Path(row['target']).stem}")
    try:
        check_name(name, "name")
        return make(name, refs, str(base / row["target"]), p, refs_2, i)
    except InputError as err:
        raise InputError(str(err), i) from None


def _dict_pair(name, refs, target, params, refs_2, row) -> dict:
    return {**make_pair(name, refs, target, params, refs_2), "row": row}


def read_pairs(pairs_csv: str | None, folder: str | None, params: dict, make=_dict_pair) -> tuple[list, list[dict]]:
    """(pairs to run, rejected rows as {'row', 'name', 'error'}); InputError when nothing at all can run.
    ``make(name, refs, target, params, refs_2, row)`` checks the images and builds one pair (InputError if bad);
    duplicate names are made distinct first (``a``, ``a-2``…)."""
    pairs, rejected = [], []
    if pairs_csv:
        path = Path(pairs_csv).expanduser()
        if not path.is_file():
            raise InputError(f"--pairs file {str(path)!r} does not exist")
        _, rows = _csv_rows(path)
        names = unique_names([r.get("name") or "" for _, r in rows])
        for (i, row), name in zip(rows, names):
            if row.get("name") and name != row["name"]:
                log.warning("likeness: row %d: name %r appears again; its outputs are named %r", i, row["name"], name)
                row["name"] = name
            try:
                pairs.append(_csv_pair(path, i, row, params, make))
            except InputError as err:
                rejected.append({"row": i, "name": row.get("name") or "", "error": str(err)})
    else:
        root = Path(folder).expanduser()
        if not root.is_dir():
            raise InputError(f"--folder {str(root)!r} is not a folder")
        subs = sorted(d for d in root.iterdir() if d.is_dir())
        names = unique_names([suggest_name(d.name) for d in subs])  # 'a b' and 'a_b' must not share outputs
        for i, (sub, name) in enumerate(zip(subs, names), start=1):
            imgs = sorted(f for f in sub.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            refs = [str(f) for f in imgs if f.stem.lower().startswith("ref") and not f.stem.lower().startswith("ref2")]
            refs_2 = [str(f) for f in imgs if f.stem.lower().startswith("ref2")]  # crop mode: the second face
            targets = [str(f) for f in imgs if f.stem.lower().startswith("target")]
            try:
                if len(targets) != 1:
                    raise InputError(f"expected one target* image and ref* images, found {len(targets)} target(s)")  # named by the caller, repr-quoted
                pairs.append(make(name, refs, targets[0], dict(params), refs_2, i))
            except InputError as err:
                rejected.append({"row": i, "name": sub.name, "error": f"folder {sub.name!r}: {err}"})
    for bad in rejected:
        log.error("likeness: %s (skipped; the other rows still run)", bad["error"])
    if not pairs:
        first = rejected[0]["error"] if rejected else "no pairs found"
        raise InputError(first if len(rejected) <= 1 else f"{first} (and {len(rejected) - 1} more bad rows; nothing to run)")
    return pairs, rejected
