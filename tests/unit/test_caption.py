"""Florence-2 captioning (caption/florence2.py) on a tiny random Florence-2 built from a config in code."""

import json

import numpy as np
import pytest
from likeness.caption.florence2 import TASKS, CaptionerError, check_florence2_folder, compose_prompt, load_florence2
from likeness.face.errors import FaceModelMissingError
from likeness.standins.florence2 import write_remote_code_layout, write_tiny_florence2


@pytest.fixture(scope="module")
def captioner(tmp_path_factory):
    return load_florence2(write_tiny_florence2(tmp_path_factory.mktemp("llm") / "tiny-florence2"))


def _images():
    rng = np.random.default_rng(0)
    return [np.zeros((50, 70, 3), np.uint8), (rng.random((60, 60, 3)) * 255).astype(np.uint8)]


def test_captions_are_deterministic_and_depend_on_the_image(captioner):
    first = captioner.caption(_images(), max_new_tokens=16)
    again = captioner.caption(_images(), max_new_tokens=16)
    assert first == again
    assert len(first) == 2 and first[0] != first[1], first
    assert all(isinstance(c, str) and c for c in first)


def test_a_float_batch_gives_the_same_captions_as_uint8_images(captioner):
    imgs = _images()[1:]
    batch = np.stack([imgs[0].astype(np.float32) / 255.0])
    assert captioner.caption(batch, max_new_tokens=16) == captioner.caption(imgs, max_new_tokens=16)


def test_tasks_reach_the_model(captioner):
    img = _images()[:1]
    outs = {task: captioner.caption(img, task=task, max_new_tokens=16)[0] for task in TASKS}
    assert len(set(outs.values())) > 1, outs


def test_max_new_tokens_bounds_the_caption(captioner):
    ids = captioner.processor.tokenizer(captioner.caption(_images()[1:], max_new_tokens=5)[0])["input_ids"]
    assert len(ids) <= 5 + 2  # bos/eos added by the tokenizer


def test_bad_requests_name_the_value(captioner):
    with pytest.raises(CaptionerError, match="unknown caption task 'ocr'"):
        captioner.caption(_images(), task="ocr")
    with pytest.raises(CaptionerError, match="num_beams \\(0\\)"):
        captioner.caption(_images(), num_beams=0)
    with pytest.raises(CaptionerError, match="empty"):
        captioner.caption([])


def test_folder_checks(tmp_path):
    with pytest.raises(FaceModelMissingError, match="does not exist"):
        check_florence2_folder(tmp_path / "nope")
    nested = tmp_path / "outer"
    (nested / "Florence-2-large").mkdir(parents=True)
    (nested / "Florence-2-large" / "config.json").write_text("{}")
    with pytest.raises(FaceModelMissingError, match="one level deeper in 'Florence-2-large'"):
        check_florence2_folder(nested)
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CaptionerError, match="'bert' model, not Florence-2"):
        check_florence2_folder(other)
    with pytest.raises(CaptionerError, match="trust_remote_code"):
        check_florence2_folder(write_remote_code_layout(tmp_path / "remote"))
    nobin = tmp_path / "pickled"
    nobin.mkdir()
    (nobin / "config.json").write_text(json.dumps({"model_type": "florence2", "vision_config": {"model_type": "florence_vision"}}))
    (nobin / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(CaptionerError, match="no .safetensors"):
        check_florence2_folder(nobin)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    with pytest.raises(CaptionerError, match="not valid JSON"):
        check_florence2_folder(tmp_path / "broken")


def test_compose_prompt():
    assert compose_prompt("a woman smiling", "ohwx person,") == "ohwx person, a woman smiling"
    assert compose_prompt("  a cat ", "", "") == "a cat"
    assert compose_prompt("x", "pre", "post") == "pre x post"
