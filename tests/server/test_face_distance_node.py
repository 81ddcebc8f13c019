"""Face Embed Distance through the live server on real photos with the real dlib judge."""

import math

import numpy as np
import photos
import pytest
from likeness.client.api import ExecutionFailed
from PIL import Image


def _photos():
    return photos.astronaut(), photos.grace_hopper()



def _graph(ref_name, img_names, metric="cosine", judge="dlib (hog)"):
    g = {
        "1": {"class_type": "LikenessFaceJudgeLoader", "inputs": {"model": judge, "provider": "CPU", "det_size": 640}},
        "2": {"class_type": "LoadImage", "inputs": {"image": ref_name}},
    }
    prev = None
    for i, name in enumerate(img_names):
        g[f"1{i}"] = {"class_type": "LoadImage", "inputs": {"image": name}}
        if prev is None:
            prev = [f"1{i}", 0]
        else:
            g[f"2{i}"] = {"class_type": "ImageBatch", "inputs": {"image1": prev, "image2": [f"1{i}", 0]}}
            prev = [f"2{i}", 0]
    g["3"] = {
        "class_type": "LikenessFaceEmbedDistance",
        "inputs": {
            "judge": ["1", 0], "reference": ["2", 0], "images": prev, "metric": metric, "threshold": 0.0,
            "face_order": "largest", "face_index": 0, "reference_without_face": "error",
        },
    }
    return g


@pytest.mark.slow
def test_node_equals_pure_function_on_real_faces(comfy):
    from likeness.face.judge import DlibJudge
    from likeness.face.metrics import face_embed_distance

    astronaut, hopper = _photos()
    mirrored = np.ascontiguousarray(astronaut[:, ::-1])
    blank = np.full((256, 256, 3), 127, np.uint8)
    # ImageBatch resizes to the first image's size; give all images the same size so pixels match.
    hopper_512 = np.asarray(Image.fromarray(hopper).resize((512, 512), Image.BICUBIC))
    blank_512 = np.asarray(Image.fromarray(blank).resize((512, 512)))
    names = [comfy.upload(a, n) for a, n in ((mirrored, "astro_mirror.png"), (hopper_512, "hopper.png"), (blank_512, "blank.png"))]
    ref = comfy.upload(astronaut, "astro.png")
    out = comfy.run(_graph(ref, names)).outputs["3"]
    rows = out["likeness_face_distance"]
    assert [r["judge"] for r in rows] == ["dlib-resnet-v1 (hog)"] * 3
    assert out["images"], "the overlay preview is shown in the UI"

    judge = DlibJudge()
    pure = face_embed_distance(
        [judge.embed_one(astronaut)],
        [judge.embed_one(mirrored), judge.embed_one(hopper_512), judge.embed_one(blank_512)],
        "cosine",
        judge.thresholds["cosine"],
    )
    for row, res in zip(rows[:2], pure[:2]):
        assert row["distance"] == pytest.approx(res.distance, abs=1e-6)
        assert row["normalized"] == pytest.approx(res.normalized, abs=1e-6)
        assert row["cosine_similarity"] == pytest.approx(res.cosine_similarity, abs=1e-6)
    same, other, noface = rows
    assert same["normalized"] < 1.0 and not same["no_face"]  # mirror of the same person
    assert other["normalized"] == 1.0  # a different person is beyond the threshold
    assert noface["no_face"] is True and noface["distance"] is None and math.isnan(pure[2].distance)


def test_reference_without_face_names_the_index(comfy):
    blank = np.full((128, 128, 3), 90, np.uint8)
    name = comfy.upload(blank, "blank_ref.png")
    with pytest.raises(ExecutionFailed, match="reference image 0"):
        comfy.run(_graph(name, [name]))


def test_missing_insightface_pack_names_the_expected_folder(comfy):
    astronaut, _ = _photos()
    name = comfy.upload(astronaut, "astro2.png")
    pack = comfy.server.models / "insightface" / "models" / "buffalo_l"  # the stand-in pack, moved away for this test
    aside = pack.with_name("buffalo_l.aside")
    pack.rename(aside)
    try:
        with pytest.raises(ExecutionFailed, match=r"models/insightface/models/buffalo_l"):
            comfy.run(_graph(name, [name], judge="insightface: buffalo_l"))
    finally:
        aside.rename(pack)
