"""Load Florence-2 and Caption through the live server with a tiny random Florence-2 in models/LLM."""

import numpy as np
import photos
import pytest
from graphs import t2i_flux
from likeness.client.api import ExecutionFailed


def _caption_graph(image_name, florence, manual="", prefix="", task="more detailed caption", connect=True):
    g = {
        "30": {"class_type": "LoadImage", "inputs": {"image": image_name}},
        "31": {"class_type": "LikenessFlorence2Loader", "inputs": {"model": florence, "precision": "float32"}},
        "32": {
            "class_type": "LikenessCaption",
            "inputs": {
                "image": ["30", 0],
                "task": task,
                "manual_prompt": manual,
                "prefix": prefix,
                "max_new_tokens": 24,
                "num_beams": 3,
            },
        },
    }
    g["33"] = {"class_type": "PreviewAny", "inputs": {"source": ["32", 0]}}
    if connect:
        g["32"]["inputs"]["captioner"] = ["31", 0]
    else:
        del g["31"]
    return g


def _text(result):
    return result.outputs["32"]["text"][0]


@pytest.fixture(scope="module")
def astronaut(comfy):
    return comfy.upload(photos.astronaut(), "caption_astronaut.png")


def test_loader_lists_only_model_folders(comfy):
    names = comfy.client.object_info()["LikenessFlorence2Loader"]["input"]["required"]["model"][0]
    assert comfy.files["florence2"] in names


def test_node_caption_equals_the_pure_function(comfy, astronaut, tmp_path):
    from likeness.caption.florence2 import load_florence2

    result = comfy.run(_caption_graph(astronaut, comfy.files["florence2"], prefix="photo of"))
    pure = load_florence2(comfy.server.models / "LLM" / comfy.files["florence2"])
    expected = pure.caption([photos.astronaut()], task="more detailed caption", max_new_tokens=24, num_beams=3)[0]
    assert _text(result) == f"photo of {expected}"


def test_the_caption_is_the_sampler_prompt(comfy, astronaut):
    g = t2i_flux(prompt="placeholder", seed=3)
    g.update(_caption_graph(astronaut, comfy.files["florence2"]))
    g["4"]["inputs"]["text"] = ["32", 0]
    result = comfy.run(g)
    caption = _text(result)
    via_caption = np.asarray(comfy.image(result.images("10")[0]))
    typed = np.asarray(comfy.image(comfy.run(t2i_flux(prompt=caption, seed=3)).images("10")[0]))
    other = np.asarray(comfy.image(comfy.run(t2i_flux(prompt=caption + " zz", seed=3)).images("10")[0]))
    assert np.array_equal(via_caption, typed)
    assert not np.array_equal(via_caption, other), "the stand-in text encoder must see the prompt"


def test_manual_prompt_overrides_without_a_captioner(comfy, astronaut):
    result = comfy.run(_caption_graph(astronaut, comfy.files["florence2"], manual="a woman in a space suit", prefix="ohwx,", connect=False))
    assert _text(result) == "ohwx, a woman in a space suit"


def test_empty_prompt_without_captioner_is_a_clear_error(comfy, astronaut):
    with pytest.raises(ExecutionFailed, match="connect Load Florence-2"):
        comfy.run(_caption_graph(astronaut, comfy.files["florence2"], connect=False))


def test_remote_code_layout_is_refused(comfy, astronaut):
    with pytest.raises(ExecutionFailed, match="trust_remote_code"):
        comfy.run(_caption_graph(astronaut, comfy.files["florence2_remote_code"]))
    assert comfy.run(t2i_flux()).images("10")
