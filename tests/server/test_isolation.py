"""Nothing leaks between prompts on one server: a plain graph gives bit-identical output before and after PuLID,
ControlNet-mode, caption and failed graphs; two identities queued alternately never bleed into each other."""

import numpy as np
import pytest
from graphs import face_noise, t2i_flux, with_pulid, with_union_control
from likeness.client.api import ExecutionFailed


def _img(comfy, graph, node="10"):
    return np.asarray(comfy.image(comfy.run(graph).images(node)[0]))


def _plain():
    return t2i_flux(prompt="isolation", seed=21, steps=4)


def test_plain_output_is_unchanged_by_everything_else(comfy):
    before = _img(comfy, _plain())
    refs = [comfy.upload(face_noise(31), "iso_a.png")]
    assert not np.array_equal(_img(comfy, with_pulid(comfy, refs)), before)
    _img(comfy, with_union_control(_plain(), {"class_type": "LikenessFluxUnionMode", "inputs": {"mode": "tile"}}))
    failing = with_pulid(comfy, refs)
    failing["bad"] = {"class_type": "LikenessTestBadPixels", "inputs": {"image": [failing["pa"]["inputs"]["image"][0], 0], "value": "nan", "pixels": 5}}
    failing["pa"]["inputs"]["image"] = ["bad", 0]
    with pytest.raises(ExecutionFailed, match="NaN"):
        comfy.run(failing)
    caption = _plain()
    caption["c"] = {
        "class_type": "LikenessCaption",
        "inputs": {"image": ["9", 0], "task": "caption", "manual_prompt": "", "prefix": "", "max_new_tokens": 8, "num_beams": 1},
    }
    caption["cl"] = {"class_type": "LikenessFlorence2Loader", "inputs": {"model": comfy.files["florence2"], "precision": "float32"}}
    caption["c"]["inputs"]["captioner"] = ["cl", 0]
    caption["pv"] = {"class_type": "PreviewAny", "inputs": {"source": ["c", 0]}}
    comfy.run(caption)
    assert np.array_equal(_img(comfy, _plain()), before)


def test_two_identities_queued_alternately_do_not_bleed(comfy):
    a = [comfy.upload(face_noise(41), "iso_id_a.png")]
    b = [comfy.upload(face_noise(42), "iso_id_b.png")]
    outs = [_img(comfy, with_pulid(comfy, refs)) for refs in (a, b, a, b, a)]
    assert np.array_equal(outs[0], outs[2]) and np.array_equal(outs[0], outs[4])
    assert np.array_equal(outs[1], outs[3])
    assert not np.array_equal(outs[0], outs[1])
