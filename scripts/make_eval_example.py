"""Build the README's evaluation example from public-domain photos (skimage astronaut, matplotlib grace_hopper).

    python scripts/make_eval_example.py /tmp/evx && python -m likeness.client eval /tmp/evx -o /tmp/evx_out

reference/: three photos of one person (original, mirror, softened). Pairs (before -> after): the drifted
example -> the original sharpened (identity restored); the face pixelated -> the original (no face before);
the original -> Grace Hopper's face pasted in (identity moved away).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from matplotlib import cbook
from PIL import Image, ImageFilter
from skimage import data

FACE = (175, 76, 266, 167)  # dlib's box of the astronaut's face (x0, y0, x1, y1)


def main(root: str) -> None:
    out = Path(root)
    for sub in ("reference", "before", "after"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    a = data.astronaut()
    x0, y0, x1, y1 = FACE
    Image.fromarray(a).save(out / "reference/astronaut.png")
    Image.fromarray(a[:, ::-1].copy()).save(out / "reference/astronaut_mirror.png")
    Image.fromarray(a).resize((384, 384)).resize((512, 512)).save(out / "reference/astronaut_soft.png")
    Image.open(Path(__file__).resolve().parents[1] / "demo/target_drifted.png").save(out / "before/drifted.png")
    Image.fromarray(a).filter(ImageFilter.UnsharpMask(1, 40)).save(out / "after/drifted.png")
    pix = a.copy()
    pix[y0:y1, x0:x1] = np.asarray(Image.fromarray(a[y0:y1, x0:x1]).resize((12, 12)).resize((x1 - x0, y1 - y0), Image.NEAREST))
    Image.fromarray(pix).save(out / "before/pixelated.png")
    Image.fromarray(a).save(out / "after/pixelated.png")
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = np.asarray(Image.open(f).convert("RGB"))
    swap = a.copy()
    swap[y0:y1, x0:x1] = np.asarray(Image.fromarray(hopper[139:326, 180:367]).resize((x1 - x0, y1 - y0)))
    Image.fromarray(a).save(out / "before/swapped.png")
    Image.fromarray(swap).save(out / "after/swapped.png")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "eval_example")
