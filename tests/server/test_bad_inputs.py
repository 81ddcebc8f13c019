"""Inputs users get wrong, through the live server: each gives a clear error or a documented behaviour
(README "Bad inputs"), and the server goes on serving the next prompt correctly (bit-identical to a run
before any bad input). Real photos, real dlib detector.

The matrix (issue 9) also has cases tested next to their node: Union ControlNet without modes asked for
"tile" (test_union_mode_node.py), start_at > end_at (test_pulid_nodes.py), a reference without a face
(test_face_distance_node.py, test_pulid_nodes.py), a remote-code Florence-2 folder (test_caption_nodes.py).
"""

import numpy as np
import photos
import pytest
from graphs import t2i_flux
from likeness.client.api import ExecutionFailed
from PIL import Image


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


@pytest.fixture(scope="module")
def baseline(comfy):
    return np.asarray(comfy.image(comfy.run(t2i_flux(prompt="baseline", seed=11)).images("10")[0]))


def _served_next(comfy, baseline=None):
    out = comfy.run(t2i_flux(prompt="baseline", seed=11)).images("10")
    assert out, "the server must serve the next prompt"
    if baseline is not None:
        assert np.array_equal(np.asarray(comfy.image(out[0])), baseline), "and serve it correctly"


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


def test_a_face_cut_by_the_border_is_padded_not_shifted(comfy):
    img = np.ascontiguousarray(photos.astronaut()[60:, 140:])  # face box ~(35, 16, 126, 107): its context box leaves the top
    g = {"j": _judge(), "in": {"class_type": "LoadImage", "inputs": {"image": comfy.upload(img, "border_face.png")}}}
    g["crop"] = _crop(["in", 0], index=0)
    g["inv"] = {"class_type": "ImageInvert", "inputs": {"image": ["crop", 0]}}
    g["paste"] = _paste(["in", 0], ["inv", 0], ["crop", 2])
    g["s"] = _save(["paste", 0], "border_paste")
    out = np.asarray(comfy.image(comfy.run(g).images("s")[0]).convert("RGB"))
    assert out.shape == img.shape
    changed = np.any(out != img, axis=-1)
    ys, xs = np.nonzero(changed)
    # the face centre stays where it was (a shifted box would move the pasted face down)
    assert changed[20:100, 40:120].mean() > 0.95 and ys.min() == 0, "the pasted region reaches the top border"
    assert xs.max() < 200 and ys.max() < 170, "nothing changes far from the face"


@pytest.mark.slow
def test_an_8000px_image_is_detected_on_a_bounded_copy(comfy, baseline):
    from PIL import Image as PILImage

    big = np.full((8000, 8000, 3), 90, np.uint8)
    big[3000:5048, 3000:5048] = np.asarray(PILImage.fromarray(photos.astronaut()).resize((2048, 2048)))
    g = {"j": _judge(), "in": {"class_type": "LoadImage", "inputs": {"image": comfy.upload(big, "huge.png")}}}
    g["crop"] = _crop(["in", 0], index=0, working=512)
    g["s"] = _save(["crop", 0], "huge_crop")
    rss_before = comfy.server.rss_bytes()
    crop = np.asarray(comfy.image(comfy.run(g).images("s")[0]).convert("RGB"))
    assert crop.shape == (512, 512, 3)
    # the astronaut's face (4x, at 3000 + 4 * (175..266, 76..167)) is centred in the crop: skin, not background
    assert np.abs(crop[200:312, 200:312].astype(int) - 90).mean() > 20
    growth = (comfy.server.rss_bytes() - rss_before) / 2**30
    assert growth < 4.0, f"server RSS grew {growth:.1f} GiB on one 8000x8000 image"
    _served_next(comfy, baseline)


def test_a_corrupt_upload_fails_in_load_image_and_the_server_goes_on(comfy, baseline):
    name = comfy.client.upload_image(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 50, "corrupt.png")["name"]
    g = {"j": _judge(), "in": {"class_type": "LoadImage", "inputs": {"image": name}}, "crop": _crop(["in", 0], index=0)}
    g["s"] = _save(["crop", 0], "corrupt")
    with pytest.raises(ExecutionFailed, match="LoadImage"):
        comfy.run(g)
    _served_next(comfy, baseline)


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_nan_or_inf_pixels_are_named_not_detected(comfy, baseline, value):
    g = {"j": _judge(), "in": {"class_type": "LoadImage", "inputs": {"image": comfy.upload(photos.astronaut(), "finite.png")}}}
    g["bad"] = {"class_type": "LikenessTestBadPixels", "inputs": {"image": ["in", 0], "value": value, "pixels": 12}}
    g["crop"] = _crop(["bad", 0], index=0)
    g["s"] = _save(["crop", 0], "nan_crop")
    with pytest.raises(ExecutionFailed, match="has 12 NaN/inf values.*--fp32-vae"):
        comfy.run(g)
    _served_next(comfy, baseline)


def test_nan_crops_are_not_pasted(comfy, baseline):
    g = {"j": _judge(), "in": {"class_type": "LoadImage", "inputs": {"image": comfy.upload(photos.astronaut(), "finite2.png")}}}
    g["crop"] = _crop(["in", 0], index=0)
    g["bad"] = {"class_type": "LikenessTestBadPixels", "inputs": {"image": ["crop", 0], "value": "nan", "pixels": 3}}
    g["paste"] = _paste(["in", 0], ["bad", 0], ["crop", 2])
    g["s"] = _save(["paste", 0], "nan_paste")
    with pytest.raises(ExecutionFailed, match="crop 0 has 3 NaN/inf values"):
        comfy.run(g)
    _served_next(comfy, baseline)


def test_out_of_range_weight_is_rejected_naming_node_and_input(comfy):
    from likeness.client.api import PromptRejected

    g = _pulid_loader_graph(comfy, comfy.files["pulid"])
    g["pa"]["inputs"]["weight"] = 99.0
    with pytest.raises(PromptRejected) as err:
        comfy.run(g)
    text = str(err.value)
    assert "node pa (LikenessApplyPulidFlux) input 'weight'" in text and "99" in text, text
    g["pa"]["inputs"].update(weight=1.0, end_at=1.5)
    with pytest.raises(PromptRejected, match=r"end_at \(1.5\) must be between 0.0 and 1.0"):
        comfy.run(g)


def _pulid_loader_graph(comfy, pulid_file):
    g = t2i_flux()
    g["pl"] = {"class_type": "LikenessPulidFluxLoader", "inputs": {"pulid_file": pulid_file, "dtype": "auto"}}
    g["pe"] = {"class_type": "LikenessEvaClipLoader", "inputs": {"eva_file": comfy.files["eva"], "dtype": "auto"}}
    g["pf"] = {"class_type": "LikenessFaceAnalysisLoader", "inputs": {"model": "insightface: antelopev2", "provider": "CPU", "det_size": 640}}
    g["pi"] = {"class_type": "LoadImage", "inputs": {"image": comfy.upload(photos.astronaut(), "pulid_ref.png")}}
    g["pa"] = {
        "class_type": "LikenessApplyPulidFlux",
        "inputs": {
            "model": ["1", 0], "pulid": ["pl", 0], "eva_clip": ["pe", 0], "face_analysis": ["pf", 0], "image": ["pi", 0],
            "weight": 1.0, "start_at": 0.0, "end_at": 1.0, "fusion": "mean", "face_order": "largest", "face_index": 0,
            "parsing_model": comfy.files["parsing"],
        },
    }
    g["8"]["inputs"]["model"] = ["pa", 0]
    return g


class _Payload:
    """Unpickling this would create the marker file: the tests prove it never happens."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _wrong_pulid_files(folder, marker):
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({"id_adapter.id_embedding_mapping.0.weight": torch.zeros(4, 4), "ip_adapter.1.to_k_ip.weight": torch.zeros(4, 4)}, str(folder / "bad_sdxl_pulid.safetensors"))
    save_file({"model.conv1.weight": torch.zeros(2, 2)}, str(folder / "bad_random.safetensors"))
    torch.save({"pulid_encoder.latents": torch.zeros(1), "evil": _Payload(marker)}, folder / "bad_pickle.pt")


@pytest.mark.parametrize(
    "name, message",
    [
        ("bad_sdxl_pulid.safetensors", "SDXL"),
        ("bad_random.safetensors", "model.conv1.weight"),
        ("bad_truncated.safetensors", "bad_truncated.safetensors"),
        ("bad_pickle.pt", "pickle"),
    ],
)
def test_wrong_pulid_files_are_named_and_pickles_never_run(comfy, baseline, tmp_path_factory, name, message):
    folder = comfy.server.models / "pulid"
    marker = tmp_path_factory.getbasetemp() / "pulid_pickle_ran"
    if not (folder / "bad_pickle.pt").exists():
        _wrong_pulid_files(folder, marker)
        data = (folder / comfy.files["pulid"]).read_bytes()
        (folder / "bad_truncated.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ExecutionFailed, match=message):
        comfy.run(_pulid_loader_graph(comfy, name))
    assert not marker.exists(), "the pickle's code ran"
    _served_next(comfy, baseline)


def test_pickled_eva_and_parsing_files_are_refused_without_running(comfy, baseline, tmp_path):
    import torch

    marker = tmp_path / "eva_pickle_ran"
    torch.save({"visual.cls_token": torch.zeros(1), "evil": _Payload(marker)}, comfy.server.models / "eva_clip" / "bad_eva.pt")
    torch.save({"cp.resnet.conv1.weight": torch.zeros(1), "evil": _Payload(marker)}, comfy.server.models / "facexlib" / "bad_parsing.pth")
    g = _pulid_loader_graph(comfy, comfy.files["pulid"])
    g["pe"]["inputs"]["eva_file"] = "bad_eva.pt"
    with pytest.raises(ExecutionFailed, match="bad_eva.pt"):
        comfy.run(g)
    g = _pulid_loader_graph(comfy, comfy.files["pulid"])
    g["pa"]["inputs"]["parsing_model"] = "bad_parsing.pth"
    with pytest.raises(ExecutionFailed, match="bad_parsing.pth"):
        comfy.run(g)
    assert not marker.exists(), "a pickle's code ran"
    _served_next(comfy, baseline)


def test_a_pack_unzipped_one_folder_too_deep_names_the_fix(comfy, baseline):
    from likeness.standins.insightface_onnx import layout_insightface_models

    layout_insightface_models(comfy.server.models, names=("nestedpack",), nested=True)
    g = _pulid_loader_graph(comfy, comfy.files["pulid"])
    g["pf"]["inputs"]["model"] = "insightface: nestedpack"
    with pytest.raises(ExecutionFailed, match="nestedpack.*nestedpack"):
        comfy.run(g)
    _served_next(comfy, baseline)
