"""Odd image files through the one image intake (common/image_intake.py) that the client, eval and dataset use:
16-bit, palette, CMYK, EXIF-rotated, animated, tiny and huge files give a usable 8-bit RGB working copy or one
clear refusal; a huge photo is read with bounded memory (RSS measured in a fresh process)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import photos
import pytest
from likeness.common.image_intake import MAX_SIDE, MIN_SIDE, ImageRejected, open_image
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def _face() -> np.ndarray:
    return photos.astronaut_head(128)


def test_16_bit_grey_png_keeps_its_tones_instead_of_turning_white(tmp_path):
    grey = np.asarray(Image.fromarray(_face()).convert("L"), dtype=np.uint16) * 257
    path = tmp_path / "g16.png"
    Image.fromarray(grey.astype(np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I")
    got = np.asarray(open_image(path).image)
    assert got.shape == (*grey.shape, 3)
    assert np.abs(got[..., 0].astype(int) - grey // 257).max() <= 1  # the naive convert("RGB") gives 255 everywhere


@pytest.mark.parametrize("mode", ["P", "CMYK", "LA", "RGBA", "L"])
def test_palette_cmyk_and_alpha_files_become_8_bit_rgb(tmp_path, mode):
    im = Image.fromarray(_face()).convert(mode)
    path = tmp_path / f"x.{'jpg' if mode == 'CMYK' else 'png'}"
    im.save(path)
    got = open_image(path).image
    assert got.mode == "RGB" and got.size == (128, 128)
    assert np.abs(np.asarray(got, dtype=int) - np.asarray(im.convert("RGB"), dtype=int)).mean() < 12


def test_exif_rotated_jpeg_is_turned_upright_with_a_note(tmp_path):
    im = Image.fromarray(_face()[:, :96])  # 96 wide, 128 high
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to view
    path = tmp_path / "rot.jpg"
    im.save(path, exif=exif)
    intake = open_image(path)
    assert intake.image.size == (128, 96) and any("EXIF orientation 6" in n for n in intake.notes)


def test_animated_gif_uses_the_first_frame_and_says_so(tmp_path):
    frames = [Image.fromarray(_face()), Image.new("RGB", (128, 128), (255, 0, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    intake = open_image(path)
    assert any("2 frames: only the first" in n for n in intake.notes)
    assert np.asarray(intake.image)[..., 0].mean() < 200  # not the red frame


def test_tiny_and_corrupt_files_are_refused_naming_the_file(tmp_path):
    Image.new("RGB", (MIN_SIDE - 1, 200)).save(tmp_path / "thin.png")
    with pytest.raises(ImageRejected, match=rf"thin\.png.* {MIN_SIDE - 1}x200, smaller than {MIN_SIDE} px"):
        open_image(tmp_path / "thin.png", "target")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\x00junk")
    with pytest.raises(ImageRejected, match=r"bad\.jpg.* not a readable image"):
        open_image(tmp_path / "bad.jpg")


_RSS_PROBE = """
import json, sys
from PIL import Image
from likeness.common.image_intake import open_image

def hwm():  # peak resident set of this process (Linux; reset at exec, unlike ru_maxrss)
    return int(next(ln for ln in open("/proc/self/status") if ln.startswith("VmHWM")).split()[1])

before = hwm()
im = open_image(sys.argv[1]).image
print(json.dumps({"size": im.size, "peak_kib": hwm(), "before_kib": before}))
"""


@pytest.mark.slow
def test_a_huge_photo_becomes_a_bounded_working_copy_with_bounded_memory(tmp_path):
    """A 12000x12000 JPEG (144 MP, near the 150 MP limit; 549 MiB in Pillow's 4-byte RGB at full size) is decoded
    reduced (draft) and downscaled to MAX_SIDE: the process's peak grows far less than a full decode."""
    w = 12000
    big = Image.fromarray(_face()).resize((w, w), Image.Resampling.BILINEAR)
    path = tmp_path / "huge.jpg"
    big.save(path, quality=80)
    del big
    env = {**os.environ, "PYTHONPATH": str(ROOT / ".importroot")}
    out = subprocess.run([sys.executable, "-c", _RSS_PROBE, str(path)], capture_output=True, text=True, env=env, check=True)
    got = json.loads(out.stdout)
    assert max(got["size"]) <= MAX_SIDE
    growth_mib = (got["peak_kib"] - got["before_kib"]) / 1024
    full_mib = w * w * 4 / 2**20
    logging.getLogger(__name__).warning(f"peak RSS growth reading a {w}x{w} JPEG: {growth_mib:.0f} MiB (a full decode alone: {full_mib:.0f} MiB)")
    assert growth_mib < 0.6 * full_mib
