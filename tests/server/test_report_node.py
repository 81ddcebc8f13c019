"""Enhancement Report through the live server on real photos with the real dlib judge."""

import math

import numpy as np
import photos
import pytest
from likeness.client.api import ExecutionFailed
from PIL import Image


def _photos():
    return photos.astronaut(), photos.grace_hopper()



def _face_swapped(astronaut, hopper):
    """The astronaut with Grace Hopper's face resized into the astronaut's dlib face box (pixels outside the
    box untouched): dlib still finds a face there, but the identity drifts away from the astronaut."""
    from likeness.face.judge import DlibJudge, select_faces

    judge = DlibJudge()
    x0, y0, x1, y1 = (int(round(v)) for v in select_faces(judge.detect_embed(astronaut))[0].box)  # (175, 76, 266, 167)
    hx0, hy0, hx1, hy1 = (int(round(v)) for v in select_faces(judge.detect_embed(hopper))[0].box)
    out = astronaut.copy()
    face = Image.fromarray(hopper[hy0:hy1, hx0:hx1]).resize((x1 - x0, y1 - y0), Image.BICUBIC)
    out[y0:y1, x0:x1] = np.asarray(face)
    return out


def _graph(ref, before, after, mask_value=None):
    g = {
        "1": {"class_type": "LikenessFaceJudgeLoader", "inputs": {"model": "dlib (hog)", "provider": "CPU", "det_size": 640}},
        "2": {"class_type": "LoadImage", "inputs": {"image": ref}},
        "3": {"class_type": "LoadImage", "inputs": {"image": before}},
        "4": {"class_type": "LoadImage", "inputs": {"image": after}},
        "5": {
            "class_type": "LikenessEnhancementReport",
            "inputs": {"judge": ["1", 0], "reference": ["2", 0], "before": ["3", 0], "after": ["4", 0]},
        },
    }
    if mask_value is not None:
        g["6"] = {"class_type": "SolidMask", "inputs": {"value": mask_value, "width": 512, "height": 512}}
        g["5"]["inputs"]["face_mask"] = ["6", 0]
    return g


@pytest.mark.slow
def test_restoring_the_face_scores_a_positive_delta(comfy):
    astronaut, hopper = _photos()
    before = _face_swapped(astronaut, hopper)
    ref = comfy.upload(astronaut, "rep_astro.png")
    before_name = comfy.upload(before, "rep_before.png")
    after = comfy.upload(astronaut, "rep_after.png")
    out = comfy.run(_graph(ref, before_name, after)).outputs["5"]
    (row,) = out["likeness_report"]
    assert out["images"], "the side-by-side preview is shown in the UI"
    assert row["judge"] == "dlib-resnet-v1 (hog)"
    assert row["no_face_before"] is False and row["no_face_after"] is False
    # Measured (dlib hog, 2026-11): cos_before 0.8831, cos_after 1.0000 (after == reference), delta_id +0.1169.
    assert row["cos_after"] == pytest.approx(1.0, abs=1e-6)
    assert row["cos_before"] < 0.95
    assert row["delta_id"] > 0.05
    assert row["delta_id"] == pytest.approx(row["cos_after"] - row["cos_before"], abs=1e-9)
    # Only the face box differs: outside the boxes scaled 1.3x (5.4 % of the frame) the pair is identical,
    # so SSIM 1.0 and PSNR inf, reported as null + psnr_identical.
    assert row["mask_source"] == "face boxes x1.3"
    assert row["ssim_outside"] == pytest.approx(1.0, abs=1e-9)
    assert row["psnr_outside"] is None and row["psnr_identical"] is True


@pytest.mark.slow
def test_a_zero_mask_scores_the_whole_frame(comfy):
    astronaut, hopper = _photos()
    ref = comfy.upload(astronaut, "rep_astro2.png")
    before = comfy.upload(_face_swapped(astronaut, hopper), "rep_before2.png")
    out = comfy.run(_graph(ref, before, ref, mask_value=0.0)).outputs["5"]
    (row,) = out["likeness_report"]
    # An all-zero face_mask leaves the whole frame "outside": the swapped face now counts.
    # Measured: SSIM 0.9692, PSNR 26.58 dB (only the 91x91 face box, 3.2 % of the pixels, differs).
    assert row["mask_source"] == "input" and row["mask_coverage"] == 0.0
    assert 0.9 < row["ssim_outside"] < 1.0
    assert math.isfinite(row["psnr_outside"]) and row["psnr_identical"] is False
    # LPIPS (random stand-in weights in models/lpips) over the whole frame equals the pure function's.
    from likeness.face.lpips import load_lpips, lpips_outside

    lp_dir = comfy.server.models / "lpips"
    model = load_lpips(lp_dir / "alexnet-owt-7be5be79.pth", lp_dir / "alex.pth")
    before_img = _face_swapped(astronaut, hopper).astype(np.float32) / 255.0
    expected = lpips_outside(model, before_img, astronaut.astype(np.float32) / 255.0)
    assert row["lpips"].startswith("LPIPS-Alex v0.1")
    assert row["lpips_outside"] == pytest.approx(expected, rel=1e-4) and expected > 0


def test_size_mismatch_names_both_sizes(comfy):
    astronaut, hopper = _photos()
    a = comfy.upload(astronaut, "rep_astro3.png")
    h = comfy.upload(hopper, "rep_hopper.png")
    with pytest.raises(ExecutionFailed, match=r"before is 512x512 but after is 512x600"):
        comfy.run(_graph(a, a, h))
