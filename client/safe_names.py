"""Output names and paths that can never leave the output folder nor replace a file the user made.

Scheme (README "Outputs are never overwritten"): a named output ``<name>_enhanced.png`` is written only when no
file of that name exists, or the existing file already holds the same bytes (a resumed run); otherwise the
next free ``<name>_enhanced-2.png``, ``-3``… is used. New files appear atomically (written to a temporary file,
then hard-linked into place, which fails instead of replacing), and nothing is ever written through a
symbolic link.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from .problems import InputError

MAX_NAME = 100
_ALLOWED = re.compile(r"[A-Za-z0-9._ -]+")
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def suggest_name(raw: str) -> str:
    """A plain file name made from ``raw`` (what the error message proposes); never empty, never a path."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(raw)).strip("._ -")
    stem = re.sub(r"\.{2,}", ".", stem)[:MAX_NAME].strip("._ -")
    if not stem or stem.lower() in _RESERVED:
        stem = f"image_{stem}" if stem else "image"
    return stem


def check_name(raw: str, what: str = "--name") -> str:
    """``raw`` itself when it is a plain file name (no folder, no '..', no control characters); else InputError."""
    text = str(raw)
    ok = (
        bool(text)
        and len(text) <= MAX_NAME
        and _ALLOWED.fullmatch(text) is not None
        and text.strip(". ") == text
        and ".." not in text
        and text.lower() not in _RESERVED
    )
    if not ok:
        raise InputError(
            f"{what} {text!r} must be a plain file name (letters, digits, '.', '_', '-', space; no folder, no '..', "
            f"at most {MAX_NAME} characters): try {suggest_name(text)!r}"
        )
    return text


def unique_names(names: list[str]) -> list[str]:
    """Duplicate names made distinct in order: a, a-2, a-3 (a name already taken by a suffix is skipped)."""
    seen: set[str] = set()
    out = []
    for name in names:
        cand, i = name, 1
        while cand.lower() in seen:
            i += 1
            cand = f"{name}-{i}"
        seen.add(cand.lower())
        out.append(cand)
    return out


def inside(root: Path, rel: str | os.PathLike) -> Path:
    """``root / rel`` after checking that no folder on the way is a symbolic link and it stays inside ``root``.
    (The last part may be a link: ``write_new`` treats it as taken, ``replace_own`` replaces the link itself.)"""
    root = Path(root)
    path = root / rel
    cur = root
    for part in Path(rel).parts[:-1]:
        cur = cur / part
        if cur.is_symlink():
            raise InputError(f"{cur} is a symbolic link inside the output folder; remove it (nothing is written through links)")
    real = path.parent.resolve() / path.name
    if path.name in ("", ".", "..") or os.path.commonpath([root.resolve(), real]) != str(root.resolve()):
        raise InputError(f"{rel!s} would be written outside the output folder {root}")
    return path


def _publish(tmp: Path, dest: Path) -> bool:
    """Hard-link ``tmp`` to ``dest``; False when ``dest`` exists (it is never replaced)."""
    try:
        os.link(tmp, dest)
        return True
    except FileExistsError:
        return False


def write_new(root: Path, stem: str, suffix: str, data: bytes) -> Path:
    """Write ``data`` as ``root/<stem><suffix>`` or the next free ``<stem>-N<suffix>``; a file that already holds
    exactly these bytes is reused. Returns the path written (or reused)."""
    root = Path(root)
    fd, tmp_name = tempfile.mkstemp(prefix=".likeness-", suffix=suffix, dir=root)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        for i in range(1, 10000):
            dest = inside(root, f"{stem}{suffix}" if i == 1 else f"{stem}-{i}{suffix}")
            if _publish(tmp, dest):
                return dest
            if not dest.is_symlink() and dest.is_file() and dest.stat().st_size == len(data) and dest.read_bytes() == data:
                return dest
        raise InputError(f"{root}: 10000 files named {stem}*{suffix} already; use a new --output folder")
    finally:
        tmp.unlink(missing_ok=True)


def replace_own(root: Path, rel: str, data: bytes) -> Path:
    """Atomically (re)write a file the client owns (results, job images) inside ``root``, never through a link."""
    dest = inside(Path(root), rel)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".likeness-", dir=dest.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp_name, dest)
    return dest
