"""Apply PuLID-Flux's controls through the live server on the stand-ins: the antelopev2 guard, the region mask
(two identities in one image), true-CFG uncond tokens, every fusion and the gray/colour switch."""

import re

import numpy as np
import pytest
from graphs import face_noise as _face
from graphs import t2i_flux
from graphs import with_half_mask as _mask
from graphs import with_pulid as _with_pulid
from likeness.client.api import ExecutionFailed


def _run_img(comfy, graph):
    return np.asarray(comfy.image(comfy.run(graph).images("10")[0])).astype(np.float64)


@pytest.fixture(scope="module")
def refs(comfy):
    return [comfy.upload(_face(s), f"ctl_ref{s}.png") for s in (21, 22)]


def _two(comfy, refs, masks=("left", "right")):
    """Two Apply nodes in a chain, identity A then identity B, each with its own mask (or none)."""
    g = _with_pulid(comfy, refs[:1])
    g2 = _with_pulid(comfy, refs[1:2], model_in=("pa", 0), key="q")
    g.update({k: v for k, v in g2.items() if k.startswith("q")})
    g["8"]["inputs"]["model"] = ["qa", 0]
    if masks[0]:
        _mask(g, "pa", masks[0], key="ma")
    if masks[1]:
        _mask(g, "qa", masks[1], key="mb")
    return g


def test_a_recogniser_other_than_antelopev2s_is_refused_before_encoding(comfy, refs):
    before = len(comfy.server.log_text())
    with pytest.raises(ExecutionFailed) as err:
        comfy.run(_with_pulid(comfy, refs[:1], analysis="antelopev2_buffalo"))
    msg = str(err.value)
    assert "w600k_r50.onnx: IResNet-50" in msg and "antelopev2's recogniser (glintr100.onnx: IResNet-100" in msg
    assert "models/insightface/models/antelopev2/" in msg
    assert "encoded" not in comfy.server.log_text()[before:]


def test_the_pulid_face_loader_lists_antelopev2_packs_only_and_judges_stay_free(comfy):
    info = comfy.client.object_info()
    pulid = info["LikenessFaceAnalysisLoader"]["input"]["required"]["model"][0]
    judge = info["LikenessFaceJudgeLoader"]["input"]["required"]["model"][0]
    assert pulid[0] == "insightface: antelopev2" and all("antelopev2" in c for c in pulid)
    assert "insightface: buffalo_l" in judge and "dlib (hog)" in judge and "insightface: buffalo_l" not in pulid


def test_a_zero_mask_is_bit_identical_to_no_pulid_and_a_full_mask_to_no_mask(comfy, refs):
    plain = _run_img(comfy, t2i_flux(prompt="portrait", seed=7, steps=4))
    g = _with_pulid(comfy, refs[:1])
    g["z"] = {"class_type": "SolidMask", "inputs": {"value": 0.0, "width": 128, "height": 128}}
    g["pa"]["inputs"]["mask"] = ["z", 0]
    assert np.array_equal(_run_img(comfy, g), plain)
    g["z"]["inputs"]["value"] = 1.0
    assert np.array_equal(_run_img(comfy, g), _run_img(comfy, _with_pulid(comfy, refs[:1])))


def test_two_masked_apply_nodes_put_two_identities_in_one_image(comfy, refs):
    a = _run_img(comfy, _with_pulid(comfy, refs[:1]))
    b = _run_img(comfy, _with_pulid(comfy, refs[1:2]))
    both = _run_img(comfy, _two(comfy, refs))
    unmasked = _run_img(comfy, _two(comfy, refs, masks=(None, None)))
    assert not np.array_equal(both, unmasked)
    half = both.shape[1] // 2

    def dist(x, y, cols):
        return float(np.abs(x[:, cols] - y[:, cols]).mean())

    left, right = slice(0, half), slice(half, None)
    assert dist(both, a, left) < dist(both, b, left)  # A's identity on the left
    assert dist(both, b, right) < dist(both, a, right)  # B's on the right


def test_uncond_zero_id_changes_only_the_negative_pass(comfy, refs):
    def run(cfg, uncond):
        g = _with_pulid(comfy, refs[:1])
        g["8"]["inputs"]["cfg"] = cfg
        g["pa"]["inputs"]["uncond_zero_id"] = uncond
        return _run_img(comfy, g)

    assert not np.array_equal(run(2.0, True), run(2.0, False))  # cfg > 1: uncond rows get other tokens
    assert np.array_equal(run(1.0, True), run(1.0, False))  # cfg 1: ComfyUI runs no uncond rows


@pytest.mark.parametrize("gray", [True, False])
def test_every_fusion_gives_its_own_image(comfy, refs, gray):
    before = len(comfy.server.log_text())
    images = {}
    for fusion in ("mean", "max", "concat", "norm_id", "max_token", "auto_weight"):
        g = _with_pulid(comfy, refs)
        g["pa"]["inputs"].update(fusion=fusion, use_gray=gray, fusion_weight_min=0.2, fusion_weight_max=1.5)
        images[fusion] = _run_img(comfy, g)
    names = list(images)
    for i, x in enumerate(names):
        for y in names[i + 1 :]:
            assert not np.array_equal(images[x], images[y]), (x, y)
    encoded = re.findall(r"PuLID-Flux: 2 reference\(s\): (\d) encoded", comfy.server.log_text()[before:])
    assert len(encoded) == 6 and set(encoded[1:]) == {"0"}  # fusion runs on cached tokens
