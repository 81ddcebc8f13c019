"""Write the demo's two example images from scikit-image's astronaut photo (NASA, public domain).

reference.png: the photo as published. target_drifted.png: the same photo with the face drifted the way an
image model drifts it (the features swirled and softened, the colours warmed), so the demo has a target whose
identity moved away from the reference. Deterministic; run from the repository root.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from skimage import data
from skimage.transform import swirl

FACE_CENTRE = (221, 121)  # (x, y) of Eileen Collins' face in the 512x512 photo


def drifted(img: np.ndarray) -> np.ndarray:
    warped = swirl(img, center=FACE_CENTRE, strength=3.0, radius=60, preserve_range=True).astype(np.uint8)
    soft = np.asarray(Image.fromarray(warped).filter(ImageFilter.GaussianBlur(1.2)))
    warm = soft.astype(np.float32) * np.array([1.06, 1.0, 0.92])
    return np.clip(warm, 0, 255).astype(np.uint8)


def main(out_dir: str = "demo") -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    img = data.astronaut()
    Image.fromarray(img).save(out / "reference.png")
    Image.fromarray(drifted(img)).save(out / "target_drifted.png")


if __name__ == "__main__":
    main(*sys.argv[1:])
