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
