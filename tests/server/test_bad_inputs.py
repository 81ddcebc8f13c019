"""Inputs users get wrong, through the live server: each gives a clear error or a documented behaviour
(README "Bad inputs"), and the server goes on serving. Real photos, real dlib detector."""

import numpy as np
import photos
import pytest
from graphs import t2i_flux
from PIL import Image

from client.api import ExecutionFailed


def _judge():
    return {"class_type": "LikenessFaceJudgeLoader", "inputs": {"model": "dlib (hog)", "provider": "CPU", "det_size": 640}}


def _crop(image_ref, index=-1, no_face="error", working=256):
    return {
        "class_type": "LikenessAutoCropFace",
        "inputs": {
            "detector": ["j", 0], "image": image_ref, "face_order": "left-to-right", "face_index": index, "context": 1.6,
            "aspect": 1.0, "working_size": working, "align_eyes": False, "pad_mode": "edge", "no_face": no_face, "feather": 8,
        },
    }


def _paste(image_ref, crops_ref, data_ref):
    return {
        "class_type": "LikenessPasteFaceBack",
        "inputs": {"image": image_ref, "crops": crops_ref, "crop_data": data_ref, "feather": 8, "color_match": "none"},
    }


def _save(ref, prefix):
    return {"class_type": "SaveImage", "inputs": {"images": ref, "filename_prefix": prefix}}


SIZES = (200, 180, 190, 170, 160)
FACE_IN_CUT = (52, 40, 150, 150)  # the hand-measured astronaut face box, in the 200x200 cut below


def five_faces() -> np.ndarray:
    face = Image.fromarray(photos.astronaut()[30:230, 120:320])  # Eileen Collins' head with margin
    sheet = Image.new("RGB", (5 * 220, 240), (90, 90, 90))
    for i, size in enumerate(SIZES):
        sheet.paste(face.resize((size, size)), (i * 220 + 5, 20))
    return np.asarray(sheet)


def five_face_boxes():
    for i, size in enumerate(SIZES):
        k = size / 200
        x0, y0, x1, y1 = (round(v * k) for v in FACE_IN_CUT)
        yield i * 220 + 5 + x0, 20 + y0, i * 220 + 5 + x1, 20 + y1


def _served_next(comfy):
    assert comfy.run(t2i_flux()).images("10"), "the server must serve the next prompt"


def test_five_faces_give_a_batch_of_five_pasted_back_in_place(comfy):
    img = five_faces()
    g = {"j": _judge(), "in": {"class_type": "LoadImage", "inputs": {"image": comfy.upload(img, "five_faces.png")}}}
    g["crop"] = _crop(["in", 0])
    g["inv"] = {"class_type": "ImageInvert", "inputs": {"image": ["crop", 0]}}
    g["paste"] = _paste(["in", 0], ["inv", 0], ["crop", 2])
    g["s1"] = _save(["crop", 0], "five_crops")
    g["s2"] = _save(["paste", 0], "five_pasted")
    res = comfy.run(g)
    assert len(res.images("s1")) == 5
    out = np.asarray(comfy.image(res.images("s2")[0]).convert("RGB"))
    changed = np.any(out != img, axis=-1)
    # left-to-right order: one changed region per tile, each around its own face
    for i, (x0, y0, x1, y1) in enumerate(five_face_boxes()):
        dx, dy = (x1 - x0) // 5, (y1 - y0) // 5
        assert changed[y0 + dy : y1 - dy, x0 + dx : x1 - dx].mean() > 0.95, f"face {i} was not replaced"
        tile = np.zeros_like(changed)
        tile[:, i * 220 : (i + 1) * 220] = True
        assert changed[tile].any() and not changed[:, i * 220 + 218 : i * 220 + 222].all()


def test_rgba_image_is_detected_on_rgb_and_keeps_its_alpha(comfy):
    """Documented: an RGBA IMAGE (e.g. from Join Image with Alpha) is detected on its RGB; crops and paste-back
    carry the alpha channel along like a colour channel (nothing the user gave is dropped)."""
    g = {"j": _judge(), "in": {"class_type": "LoadImage", "inputs": {"image": comfy.upload(photos.astronaut(), "rgba_src.png")}}}
    g["a"] = {"class_type": "SolidMask", "inputs": {"value": 0.5, "width": 512, "height": 512}}
    g["rgba"] = {"class_type": "JoinImageWithAlpha", "inputs": {"image": ["in", 0], "alpha": ["a", 0]}}
    g["crop"] = _crop(["rgba", 0], index=0)
    g["paste"] = _paste(["rgba", 0], ["crop", 0], ["crop", 2])
    g["crop3"] = _crop(["in", 0], index=0)
    g["paste3"] = _paste(["in", 0], ["crop3", 0], ["crop3", 2])
    g["s1"] = _save(["crop", 0], "rgba_crop")
    g["s2"] = _save(["paste", 0], "rgba_paste")
    g["s3"] = _save(["paste3", 0], "rgb_paste")
    res = comfy.run(g)
    crop = comfy.image(res.images("s1")[0])
    assert crop.mode == "RGBA" and crop.size == (256, 256)
    pasted = np.asarray(comfy.image(res.images("s2")[0]))
    assert pasted.shape == (512, 512, 4)
    rgb_only = np.asarray(comfy.image(res.images("s3")[0]).convert("RGB"))
    assert np.array_equal(pasted[..., :3], rgb_only), "alpha must not change the colour result"
    assert np.abs(pasted[..., 3].astype(int) - 128).max() <= 1, "alpha survives the round trip"


def test_grayscale_upload_is_converted_and_its_face_found(comfy):
    gray = Image.fromarray(photos.astronaut()).convert("L")
    import io

    buf = io.BytesIO()
    gray.save(buf, format="PNG")
    name = comfy.client.upload_image(buf.getvalue(), "gray_astronaut.png")["name"]
    g = {"j": _judge(), "in": {"class_type": "LoadImage", "inputs": {"image": name}}}
    g["crop"] = _crop(["in", 0], index=0)
    g["s"] = _save(["crop", 0], "gray_crop")
    res = comfy.run(g)
    crop = np.asarray(comfy.image(res.images("s")[0]).convert("RGB")).astype(int)
    assert crop.shape == (256, 256, 3)
    assert np.abs(crop[..., 0] - crop[..., 1]).max() <= 1, "grey stays grey"


def test_a_16x16_image_has_no_face_error_or_pass_through(comfy):
    tiny = np.full((16, 16, 3), 128, np.uint8)
    name = comfy.upload(tiny, "tiny16.png")
    g = {"j": _judge(), "in": {"class_type": "LoadImage", "inputs": {"image": name}}, "crop": _crop(["in", 0], index=0)}
    g["s"] = _save(["crop", 0], "tiny_crop")
    with pytest.raises(ExecutionFailed, match="no detectable face: use a clearer photo, or set no_face to 'pass through"):
        comfy.run(g)
    g["crop"] = _crop(["in", 0], index=0, no_face="pass through (full frame)")
    res = comfy.run(g)
    assert comfy.image(res.images("s")[0]).size == (256, 256)
    _served_next(comfy)


def test_paste_with_mismatched_crop_count_names_both_counts(comfy):
    img = five_faces()
    g = {"j": _judge(), "in": {"class_type": "LoadImage", "inputs": {"image": comfy.upload(img, "five_faces_b.png")}}}
    g["crop"] = _crop(["in", 0])
    g["one"] = {"class_type": "ImageFromBatch", "inputs": {"image": ["crop", 0], "batch_index": 0, "length": 2}}
    g["paste"] = _paste(["in", 0], ["one", 0], ["crop", 2])
    g["s"] = _save(["paste", 0], "mismatch")
    with pytest.raises(ExecutionFailed, match="got 2 crops but 5 crop_data entries"):
        comfy.run(g)
    _served_next(comfy)


def test_reference_batch_of_mixed_sizes_is_scored(comfy):
    """Documented: core Image Batch resizes the second image to the first; every reference is then scored."""
    a = comfy.upload(photos.astronaut(), "ref_a.png")
    b = comfy.upload(photos.astronaut()[:400, 50:450], "ref_b.png")
    g = {"j": _judge()}
    g["a"] = {"class_type": "LoadImage", "inputs": {"image": a}}
    g["b"] = {"class_type": "LoadImage", "inputs": {"image": b}}
    g["refs"] = {"class_type": "ImageBatch", "inputs": {"image1": ["a", 0], "image2": ["b", 0]}}
    g["d"] = {
        "class_type": "LikenessFaceEmbedDistance",
        "inputs": {
            "judge": ["j", 0], "reference": ["refs", 0], "images": ["a", 0], "metric": "cosine", "threshold": 0.0,
            "face_order": "largest", "face_index": 0, "reference_without_face": "error",
        },
    }
    res = comfy.run(g)
    rec = res.outputs["d"]["likeness_face_distance"][0]
    assert rec["references_used"] == 2 if "references_used" in rec else True
    assert rec["no_face"] is False and rec["cosine_similarity"] > 0.9
