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
    """(H, W, 3) uint8 RGB numpy array, EXIF orientation applied (as ComfyUI's LoadImage does); only read."""
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            return np.asarray(im.convert("RGB")).copy()
    except FileNotFoundError as exc:
        raise ImageReadError(f"image {path} does not exist: check the path") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"image {path} cannot be read ({exc}): re-save it as PNG or JPEG") from exc
