"""Image files: the suffixes the pack reads, and reading one as ComfyUI's LoadImage does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import LikenessError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


class ImageReadError(LikenessError, ValueError):
    """An image path that does not exist or cannot be decoded; the message names it and the fix."""


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` (by extension, case-insensitive), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageReadError(f"{folder} is not a folder: give a folder of images")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_image(path: Path) -> Any:
    """(H, W, 3) uint8 RGB numpy array through the one image intake (image_intake.py: EXIF orientation applied as
    ComfyUI's LoadImage does, 16-bit scaled not clipped to white, the first frame of an animation with a warning,
    a bounded working copy of a huge photo, tiny or huge files refused); the file is only read."""
    import logging

    import numpy as np

    from .image_intake import ImageRejected, open_image

    try:
        intake = open_image(path)
    except ImageRejected as exc:
        raise ImageReadError(str(exc)) from None
    for note in intake.notes:
        logging.getLogger("likeness").warning("%s", note)
    return np.asarray(intake.image).copy()
