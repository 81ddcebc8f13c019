"""Apply PuLID-Flux through the live server on the tiny stand-ins: behaviour, isolation, cache, errors."""

import re

import numpy as np
import pytest
from graphs import face_noise as _face
from graphs import t2i_flux
from graphs import with_pulid as _with_pulid
from likeness.client.api import ExecutionFailed, PromptRejected
from PIL import Image


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
    from likeness.face.judge import InsightFaceJudge, select_faces

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
