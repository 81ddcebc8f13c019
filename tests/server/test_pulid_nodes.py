"""Apply PuLID-Flux through the live server on the tiny stand-ins: behaviour, isolation, cache, errors."""

import re

import numpy as np
import pytest
from graphs import t2i_flux
from PIL import Image

from client.api import ExecutionFailed, PromptRejected


def _face(seed, size=96):
    rng = np.random.default_rng(seed)
    return (rng.random((size, size, 3)) * 255).astype(np.uint8)


def _with_pulid(comfy, refs, weight=1.0, start=0.0, end=1.0, analysis="antelopev2", order="largest", index=0, model_in=("1", 0), key="p"):
    g = t2i_flux(prompt="portrait", seed=7, steps=4)
    g[f"{key}l"] = {"class_type": "LikenessPulidFluxLoader", "inputs": {"pulid_file": comfy.files["pulid"], "dtype": "auto"}}
    g[f"{key}e"] = {"class_type": "LikenessEvaClipLoader", "inputs": {"eva_file": comfy.files["eva"], "dtype": "auto"}}
    g[f"{key}f"] = {"class_type": "LikenessFaceAnalysisLoader", "inputs": {"model": f"insightface: {analysis}", "provider": "CPU", "det_size": 640}}
    g[f"{key}i"] = {"class_type": "LoadImage", "inputs": {"image": refs[0]}}
    img = [f"{key}i", 0]
    for j, r in enumerate(refs[1:]):
        g[f"{key}i{j}"] = {"class_type": "LoadImage", "inputs": {"image": r}}
        g[f"{key}b{j}"] = {"class_type": "ImageBatch", "inputs": {"image1": img, "image2": [f"{key}i{j}", 0]}}
        img = [f"{key}b{j}", 0]
    g[f"{key}a"] = {
        "class_type": "LikenessApplyPulidFlux",
        "inputs": {
            "model": list(model_in), "pulid": [f"{key}l", 0], "eva_clip": [f"{key}e", 0], "face_analysis": [f"{key}f", 0],
            "image": img, "weight": weight, "start_at": start, "end_at": end, "fusion": "mean",
            "face_order": order, "face_index": index, "parsing_model": comfy.files["parsing"],
        },
    }
    g["8"]["inputs"]["model"] = [f"{key}a", 0]
    return g


def _run_img(comfy, graph):
    return np.asarray(comfy.image(comfy.run(graph).images("10")[0]))


@pytest.fixture(scope="module")
def refs(comfy):
    return [comfy.upload(_face(s), f"ref{s}.png") for s in (1, 2)]


@pytest.fixture(scope="module")
def plain(comfy):
    g = t2i_flux(prompt="portrait", seed=7, steps=4)
    return _run_img(comfy, g)


def test_pulid_changes_the_image_and_weight_zero_is_identical(comfy, refs, plain):
    with_id = _run_img(comfy, _with_pulid(comfy, refs[:1], weight=1.0))
    assert not np.array_equal(with_id, plain)
    assert np.array_equal(_run_img(comfy, _with_pulid(comfy, refs[:1], weight=0.0)), plain)


def test_window_outside_the_schedule_is_identical(comfy, refs, plain):
    assert np.array_equal(_run_img(comfy, _with_pulid(comfy, refs[:1], start=1.0, end=1.0)), plain)


def test_different_references_give_different_images(comfy, refs):
    a = _run_img(comfy, _with_pulid(comfy, refs[:1]))
    b = _run_img(comfy, _with_pulid(comfy, refs[1:2]))
    assert not np.array_equal(a, b)


def test_two_apply_nodes_compose(comfy, refs):
    a = _run_img(comfy, _with_pulid(comfy, refs[:1]))
    g = _with_pulid(comfy, refs[:1])
    g2 = _with_pulid(comfy, refs[1:2], model_in=("pa", 0), key="q")
    g.update({k: v for k, v in g2.items() if k.startswith("q")})
    g["8"]["inputs"]["model"] = ["qa", 0]
    both = _run_img(comfy, g)
    assert not np.array_equal(both, a)


def test_no_pollution_of_a_plain_graph(comfy, refs, plain):
    _run_img(comfy, _with_pulid(comfy, refs))
    assert np.array_equal(_run_img(comfy, t2i_flux(prompt="portrait", seed=7, steps=4)), plain)


def test_encoders_run_once_then_come_from_the_cache(comfy, refs):
    ref = comfy.upload(_face(11), "ref_cache.png")
    before = len(comfy.server.log_text())
    _run_img(comfy, _with_pulid(comfy, [ref]))
    _run_img(comfy, _with_pulid(comfy, [ref], weight=0.9))
    log = comfy.server.log_text()[before:]
    assert re.findall(r"PuLID-Flux: 1 reference\(s\): (\d) encoded, (\d) from cache", log) == [("1", "0"), ("0", "1")]


def test_reference_without_face_names_its_index(comfy, refs):
    g = _with_pulid(comfy, refs, analysis="noface")
    with pytest.raises(ExecutionFailed, match="reference image 0 has no detectable face"):
        comfy.run(g)


def test_several_faces_use_the_largest_by_default(comfy, refs):
    from face.judge import InsightFaceJudge, select_faces

    judge = InsightFaceJudge(comfy.server.models / "insightface" / "models" / "three_faces")
    arr = np.asarray(Image.open(comfy.server.input_dir / refs[0]).convert("RGB"))
    largest = select_faces(judge.detect_embed(arr), order="largest", index=0)[0]
    before = len(comfy.server.log_text())
    default = _run_img(comfy, _with_pulid(comfy, refs[:1], analysis="three_faces"))
    used = re.findall(r"reference 0 uses face box \[([-\d, ]+)\]", comfy.server.log_text()[before:])
    assert used and [int(v) for v in used[0].split(",")] == [round(v) for v in largest.box]
    other = _run_img(comfy, _with_pulid(comfy, refs[:1], analysis="three_faces", index=2))
    assert not np.array_equal(default, other)


def test_start_after_end_is_rejected_at_validation(comfy, refs):
    with pytest.raises(PromptRejected, match="start_at"):
        comfy.run(_with_pulid(comfy, refs[:1], start=0.8, end=0.2))
