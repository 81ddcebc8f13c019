"""What ``likeness dataset --overwrite`` may delete: only files it wrote itself and nobody changed since.

Each run records the SHA-256 of every file it writes into ``train/`` in ``<output>/.likeness_manifest.json``
(outside ``train/``, which holds only image/caption pairs for the trainer). On
``--overwrite`` a file listed there with the same bytes is removed; anything else in ``train/`` (a caption edited
by hand, a file the user added, a file from an older version without a manifest) is moved aside to
``<output>/set_aside-<time>/`` and listed in the log, never deleted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

logger = logging.getLogger("likeness.dataset")
MANIFEST = ".likeness_manifest.json"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def clear_previous(output_dir: Path, train: Path) -> list[Path]:
    """Remove our unchanged files from ``train``; move every other file aside. Returns the paths moved aside."""
    manifest_path = output_dir / MANIFEST
    try:
        ours = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    except ValueError:
        ours = {}
    moved: list[Path] = []
    aside = output_dir / f"set_aside-{time.strftime('%Y%m%d-%H%M%S')}"
    for old in sorted(train.iterdir()):
        if not (old.is_file() or old.is_symlink()):
            continue
        if not old.is_symlink() and ours.get(old.name) == _sha(old):
            old.unlink()
            continue
        aside.mkdir(exist_ok=True)
        os.replace(old, aside / old.name)
        moved.append(aside / old.name)
        logger.warning("--overwrite: %s was not written by likeness dataset (or was edited since); moved it to %s", old.name, aside)
    manifest_path.unlink(missing_ok=True)
    return moved


def record(output_dir: Path, files: list[Path]) -> None:
    """Write the manifest of the files this run wrote into ``train``."""
    data = {p.name: _sha(p) for p in files if p.is_file()}
    (output_dir / MANIFEST).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
