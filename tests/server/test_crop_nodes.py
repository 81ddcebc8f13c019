"""Auto-crop, Upscale If Small and Paste Face Back through the live server, on real photos with dlib."""

from pathlib import Path

import numpy as np
import pytest
from likeness.client.api import ExecutionFailed
from PIL import Image

ASTRONAUT_FACE = (172, 70, 270, 180)  # hand-measured box of Eileen Collins' face in skimage's astronaut



def _crop_node(image_ref, index=0, no_face="error", working=512):
    return {
        "class_type": "LikenessAutoCropFace",
        "inputs": {
            "detector": ["j", 0], "image": image_ref, "face_order": "largest", "face_index": index, "context": 1.6,
            "aspect": 1.0, "working_size": working, "align_eyes": False, "pad_mode": "edge", "no_face": no_face, "feather": 16,
        },
    }


def _base(name):
    return {
        "j": {"class_type": "LikenessFaceJudgeLoader", "inputs": {"model": "dlib (hog)", "provider": "CPU", "det_size": 640}},
        "in": {"class_type": "LoadImage", "inputs": {"image": name}},
    }


def test_crop_then_paste_changes_only_the_face_region(comfy):
    import skimage.data

    astronaut = skimage.data.astronaut()
    g = _base(comfy.upload(astronaut, "astro_crop.png"))
    g["crop"] = _crop_node(["in", 0])
    g["inv"] = {"class_type": "ImageInvert", "inputs": {"image": ["crop", 0]}}
    g["paste"] = {
        "class_type": "LikenessPasteFaceBack",
        "inputs": {"image": ["in", 0], "crops": ["inv", 0], "crop_data": ["crop", 2], "feather": 16, "color_match": "none"},
    }
    g["save"] = {"class_type": "SaveImage", "inputs": {"images": ["paste", 0], "filename_prefix": "paste"}}
    g["savecrop"] = {"class_type": "SaveImage", "inputs": {"images": ["crop", 0], "filename_prefix": "crop"}}
    res = comfy.run(g)
    crop = comfy.image(res.images("savecrop")[0])
    assert crop.size == (512, 512)
    out = np.asarray(comfy.image(res.images("save")[0]).convert("RGB"))
    changed = np.any(out != astronaut, axis=-1)
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 5000, "the face region was replaced"
    fx0, fy0, fx1, fy1 = ASTRONAUT_FACE
    # every changed pixel lies in the context box around the face (1.6x the detector box, plus rounding)
    cx, cy, half = (fx0 + fx1) / 2, (fy0 + fy1) / 2, 1.6 * max(fx1 - fx0, fy1 - fy0) / 2 + 4
    assert xs.min() >= cx - half and xs.max() <= cx + half and ys.min() >= cy - half and ys.max() <= cy + half
    # the face itself was covered
    assert changed[fy0 + 20 : fy1 - 20, fx0 + 20 : fx1 - 20].mean() > 0.95


@pytest.mark.slow
def test_every_face_of_a_group_photo_is_cropped(comfy):
    import insightface

    t1 = Path(insightface.__file__).parent / "data" / "images" / "t1.jpg"
    arr = np.asarray(Image.open(t1).convert("RGB"))
    g = _base(comfy.upload(arr, "t1.png"))
    g["crop"] = _crop_node(["in", 0], index=-1, working=128)
    g["save"] = {"class_type": "SaveImage", "inputs": {"images": ["crop", 0], "filename_prefix": "t1crops"}}
    images = comfy.run(g).images("save")
    assert len(images) == 6


def test_no_face_policy_error_and_pass_through(comfy):
    blank = np.full((96, 160, 3), 128, np.uint8)
    name = comfy.upload(blank, "blank_crop.png")
    g = _base(name)
    g["crop"] = _crop_node(["in", 0])
    g["save"] = {"class_type": "SaveImage", "inputs": {"images": ["crop", 0], "filename_prefix": "nf"}}
    with pytest.raises(ExecutionFailed, match="target image 0 has no detectable face"):
        comfy.run(g)
    g["crop"] = _crop_node(["in", 0], no_face="pass through (full frame)")
    g["paste"] = {
        "class_type": "LikenessPasteFaceBack",
        "inputs": {"image": ["in", 0], "crops": ["crop", 0], "crop_data": ["crop", 2], "feather": 0, "color_match": "none"},
    }
    g["save2"] = {"class_type": "SaveImage", "inputs": {"images": ["paste", 0], "filename_prefix": "nf2"}}
    res = comfy.run(g)
    assert comfy.image(res.images("save")[0]).size == (512, 512)
    back = np.asarray(comfy.image(res.images("save2")[0]).convert("RGB")).astype(int)
    assert back.shape == blank.shape and np.abs(back - blank).max() <= 1


def test_upscale_if_small_runs_esrgan_on_a_small_face(comfy):
    import skimage.data

    astronaut = skimage.data.astronaut()
    g = _base(comfy.upload(astronaut, "astro_up.png"))
    g["crop"] = _crop_node(["in", 0])
    g["um"] = {"class_type": "UpscaleModelLoader", "inputs": {"model_name": comfy.files["esrgan"]}}
    g["up"] = {"class_type": "LikenessUpscaleIfSmall", "inputs": {"image": ["in", 0], "crop_data": ["crop", 2], "upscale_model": ["um", 0]}}
    g["save"] = {"class_type": "SaveImage", "inputs": {"images": ["up", 0], "filename_prefix": "up"}}
    before = comfy.server.log_text().count("Upscale If Small: face")
    img = comfy.image(comfy.run(g).images("save")[0])
    assert img.size == (512, 512)
    assert comfy.server.log_text().count("Upscale If Small: face") == before + 1


def test_auto_working_size_covers_the_face_box_within_the_bounds(comfy):
    """A 1536x1024 photo with a realistic 300 px face: auto crops at the smallest multiple of 64 >= 1.6 x the box
    (clamped to the bounds), read back from the log and the crop; absent size_mode keeps the fixed size."""
    import re

    import cv2
    import skimage.data

    astro = skimage.data.astronaut()
    big = cv2.resize(astro, (1536, 1536), interpolation=cv2.INTER_CUBIC)[256:1280]  # 1536x1024, face ~300 px
    g = _base(comfy.upload(big, "astro_auto.png"))
    g["crop"] = _crop_node(["in", 0], working=1024)
    g["save"] = {"class_type": "SaveImage", "inputs": {"images": ["crop", 0], "filename_prefix": "autocrop"}}
    sizes = {}
    for mode, low, high in (("auto", 256, 1024), ("auto", 768, 1024), ("auto", 256, 384), (None, 768, 1024)):
        if mode:
            g["crop"]["inputs"].update(size_mode=mode, auto_min=low, auto_max=high)
        else:
            for k in ("size_mode", "auto_min", "auto_max"):
                g["crop"]["inputs"].pop(k, None)
        before = len(comfy.server.log_text())
        sizes[(mode, low, high)] = comfy.image(comfy.run(g).images("save")[0]).size[0]
        boxes = re.findall(r"working size auto -> \d+ \(crop boxes \[\(([-\d, ]+)\)\]", comfy.server.log_text()[before:])
        if mode:
            x0, y0, x1, y1 = (int(v) for v in boxes[0].split(","))
            longest = max(x1 - x0, y1 - y0)
            assert 400 <= longest <= 600  # 1.6 x a ~300 px face
    cover = -(-longest // 64) * 64
    assert sizes[("auto", 256, 1024)] == cover
    assert sizes[("auto", 768, 1024)] == 768 and sizes[("auto", 256, 384)] == 384
    assert sizes[(None, 768, 1024)] == 1024  # an API graph without size_mode keeps working_size
