"""Real face photos that ship inside PyPI packages (see shared/notes/face_models.md for licences)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def astronaut() -> np.ndarray:
    """Eileen Collins, 512x512 RGB (NASA, public domain), from scikit-image."""
    import skimage.data

    return skimage.data.astronaut()


def grace_hopper() -> np.ndarray:
    """Grace Hopper, 600x512 RGB (US Navy, public domain), from matplotlib."""
    import matplotlib.cbook

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(Image.open(f).convert("RGB"))


def group_t1() -> np.ndarray:
    """insightface's bundled t1.jpg: six people."""
    import insightface

    return np.asarray(Image.open(Path(insightface.__file__).parent / "data" / "images" / "t1.jpg").convert("RGB"))


def astronaut_head(size: int = 128) -> np.ndarray:
    """The astronaut's head and shoulders (256 px cut) resized to ``size``: dlib still finds the face at 128 px
    (box ~45 px, score 1.42), and small images keep the stand-in workflows fast."""
    cut = astronaut()[20:276, 100:356]
    return np.asarray(Image.fromarray(cut).resize((size, size), Image.BICUBIC))


def degraded(arr: np.ndarray) -> np.ndarray:
    """A soft, blocky copy (half size and back, JPEG q30) in which dlib still finds the face."""
    import io

    img = Image.fromarray(arr)
    small = img.resize((img.width // 2, img.height // 2), Image.BICUBIC).resize(img.size, Image.BICUBIC)
    buf = io.BytesIO()
    small.save(buf, format="JPEG", quality=30)
    return np.asarray(Image.open(buf).convert("RGB"))
