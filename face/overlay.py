"""Score overlays drawn on images, so a user sees which face was measured and its number."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def format_score(distance: float, normalized: float, cosine: float, no_face: bool, metric: str) -> str:
    if no_face or math.isnan(distance):
        return "no face"
    return f"FED {normalized:.2f} ({metric} {distance:.3f}, cos {cosine:.2f})"


def annotate(image_rgb_uint8: np.ndarray, text: str, box: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """A copy of the image with the face box outlined and a caption bar at the bottom."""
    img = Image.fromarray(np.ascontiguousarray(image_rgb_uint8))
    draw = ImageDraw.Draw(img)
    w, h = img.size
    size = max(10, min(w, h) // 24)
    if box is not None:
        x0, y0, x1, y1 = (float(v) for v in box)
        draw.rectangle([x0, y0, x1, y1], outline=(255, 214, 0), width=max(1, size // 6))
    font = _font(size)
    pad = max(2, size // 4)
    bar = size + 2 * pad
    draw.rectangle([0, h - bar, w, h], fill=(0, 0, 0))
    draw.text((pad, h - bar + pad // 2), text, fill=(255, 255, 255), font=font)
    return np.asarray(img)
