"""One way to read a user's image file, so odd files are handled or refused the same way everywhere
(the ``likeness`` client before upload, ``likeness eval`` and ``likeness dataset``). Pillow only.

Handled: 16-bit and 32-bit integer images (scaled to 8 bit, not clipped to white), palette, CMYK, grey+alpha,
RGBA (alpha dropped), EXIF orientation (applied, as ComfyUI's LoadImage does), animated GIF/WebP/APNG (the first
frame, with a note). Refused with one line: not an image, smaller than MIN_SIDE px on a side, more than
MAX_PIXELS pixels (decoded before anything is allocated for it). Larger than MAX_SIDE on its long side: a
working copy downscaled to MAX_SIDE (JPEGs are decoded reduced, so memory stays bounded), with a note.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .errors import LikenessError

MIN_SIDE = 32
MAX_SIDE = 4096
MAX_PIXELS = 150_000_000
SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


class ImageRejected(LikenessError, ValueError):
    """The file is not an image this pack can use; the message names the file and the fix."""


@dataclass
class Intake:
    image: object  # PIL.Image.Image, 8-bit RGB
    size: tuple[int, int]  # the file's own (width, height)
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when the working copy differs from a plain decode of the file (re-encode before use)."""
        return bool(self.notes)


def _to_8bit_rgb(im, notes: list[str], label: str):
    from PIL import Image

    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        extrema = im.getextrema()
        top = 65535.0 if mode.startswith("I;16") else max(float(extrema[1]), 1.0)
        if mode == "I" and extrema[1] <= 255:
            top = 255.0
        im = im.convert("F").point(lambda v: v * (255.0 / top)).convert("L")
        notes.append(f"{label}: {mode} image scaled to 8 bit")
    elif mode == "CMYK":
        notes.append(f"{label}: CMYK converted to RGB")
    elif mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA"):
        bg = Image.new("RGB", im.size, (0, 0, 0))
        bg.paste(im.convert("RGBA"), mask=im.convert("RGBA").getchannel("A"))
        return bg
    return im.convert("RGB") if im.mode != "RGB" else im


def open_image(path: str | Path, role: str = "image") -> Intake:
    """The file as an 8-bit RGB working copy (see the module docstring); raises ImageRejected."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    label = f"{role} image {str(p)!r}"
    if not p.is_file():
        raise ImageRejected(f"{label} does not exist: check the path")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # MAX_PIXELS below is the limit
            return _read(p, label)
    except ImageRejected:
        raise
    except Image.DecompressionBombError as err:
        raise ImageRejected(f"{label} is over the {MAX_PIXELS / 1e6:.0f} MP limit ({err}): downscale it") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ImageRejected(f"{label} is not a readable image ({err}); re-export it as PNG or JPEG") from None


def _read(p: Path, label: str) -> Intake:
    from PIL import Image, ImageOps

    with Image.open(p) as im:
        w, h = im.size
        if w * h > MAX_PIXELS:
            raise ImageRejected(f"{label} is {w}x{h} ({w * h / 1e6:.0f} MP), over the {MAX_PIXELS / 1e6:.0f} MP limit: downscale it")
        if min(w, h) < MIN_SIDE:
            raise ImageRejected(f"{label} is {w}x{h}, smaller than {MIN_SIDE} px on a side: use a larger image")
        notes: list[str] = []
        if getattr(im, "n_frames", 1) > 1:
            notes.append(f"{label} has {im.n_frames} frames: only the first is used")
            im.seek(0)
        if max(w, h) > MAX_SIDE and im.format == "JPEG":
            im.draft("RGB", (MAX_SIDE, MAX_SIDE))  # decode at 1/2, 1/4… of the size: memory stays bounded
        orientation = im.getexif().get(0x0112, 1)
        work = ImageOps.exif_transpose(im) if orientation not in (None, 1) else im
        if work is not im:
            notes.append(f"{label}: EXIF orientation {orientation} applied")
        work = _to_8bit_rgb(work, notes, label)
        if max(work.size) > MAX_SIDE:
            work.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS, reducing_gap=2.0)
            notes.append(f"{label} is {w}x{h}: a working copy downscaled to {work.size[0]}x{work.size[1]} is used")
        work.load()
        return Intake(work, (w, h), notes)


def png_bytes(image) -> bytes:
    """The working copy as PNG bytes (what the client uploads when the file itself needed changes)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
