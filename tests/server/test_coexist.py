"""PuLID beside other model patches through the live server: caches, torch.compile, LoRA, ControlNet, another
pack's block patch and fp8 weights. Each case checks that it runs, that PuLID still changes the image, and that
PuLID's weight 0 / a window outside the schedule gives exactly what the same graph gives without PuLID.
"""

import re

import numpy as np
import pytest
from graphs import face_noise, t2i_flux, with_pulid, with_union_control

CACHE_STEPS = 8  # enough steps for the caches to skip some; the other cases keep the default 4


def _img(comfy, graph):
    return np.asarray(comfy.image(comfy.run(graph).images("10")[0])).astype(np.int16)


def _graph(comfy, ref, pulid, weight=1.0, start=0.0, end=1.0, steps=4):
    """t2i; with PuLID ("pa") on node "1" when ``pulid``. The sampler model is "8".model."""
    g = with_pulid(comfy, [ref], weight=weight, start=start, end=end) if pulid else t2i_flux(prompt="portrait", seed=7)
    g["8"]["inputs"]["steps"] = steps
    return g


def _after_model(g, node_id, node):
    """Insert ``node`` (its "model" input) between the sampler and the model it had."""
    node["inputs"]["model"] = g["8"]["inputs"]["model"]
    g[node_id] = node
    g["8"]["inputs"]["model"] = [node_id, 0]
    return g


def _before_model(g, node_id, node):
    """Insert ``node`` between the base model "1" and its consumer (PuLID or the sampler)."""
    node["inputs"]["model"] = ["1", 0]
    g[node_id] = node
    consumer = g["pa"] if "pa" in g else g["8"]
    consumer["inputs"]["model"] = [node_id, 0]
    return g


@pytest.fixture(scope="module")
def ref(comfy):
    return comfy.upload(face_noise(41), "coexist_ref.png")


@pytest.mark.parametrize("cache", ["EasyCache", "LazyCache"])
def test_caches(comfy, ref, cache):
    def run(pulid, **kw):
        node = {"class_type": cache, "inputs": {"reuse_threshold": 3.0, "start_percent": 0.15, "end_percent": 0.95, "verbose": False}}
        before = len(comfy.server.log_text())
        out = _img(comfy, _after_model(_graph(comfy, ref, pulid, steps=CACHE_STEPS, **kw), "c", node))
        skipped = re.findall(rf"{cache} - skipped (\d+)/(\d+) steps", comfy.server.log_text()[before:])
        assert skipped and int(skipped[-1][0]) > 0, f"{cache} skipped no step: the test would prove nothing"
        return out

    plain = run(False)
    full = run(True)
    assert not np.array_equal(full, plain)
    assert np.array_equal(run(True, weight=0.0), plain)
    assert np.array_equal(run(True, start=1.0, end=1.0), plain)  # patches installed, window outside: no effect
    assert not np.array_equal(run(True, weight=0.5), full)
    assert not np.array_equal(run(True, start=0.5, end=1.0), full)


@pytest.mark.slow
def test_torch_compile_inductor_on_cpu(comfy, ref):
    """Core TorchCompileModel (inductor, CPU backend) compiles the whole diffusion model; PuLID's patches and
    wrapper run inside it. One compiled run (~2 min of inductor codegen on 2 cores) against eager runs."""
    eager = _img(comfy, _graph(comfy, ref, True))
    plain = _img(comfy, _graph(comfy, ref, False))
    node = {"class_type": "TorchCompileModel", "inputs": {"backend": "inductor"}}
    before = len(comfy.server.log_text())
    compiled = _img(comfy, _after_model(_graph(comfy, ref, True), "tc", node))
    assert np.abs(compiled - eager).max() <= 2, "compiled PuLID must match eager PuLID up to rounding"
    assert np.abs(compiled - plain).max() > 2
    assert "recompile_limit" not in comfy.server.log_text()[before:]  # not silently falling back to eager


def test_lora(comfy, ref):
    def lora():
        return {"class_type": "LoraLoaderModelOnly", "inputs": {"lora_name": comfy.files["lora"], "strength_model": 1.0}}

    plain = _img(comfy, _graph(comfy, ref, False))
    lora_only = _img(comfy, _before_model(_graph(comfy, ref, False), "lo", lora()))
    assert not np.array_equal(lora_only, plain)
    lora_then_pulid = _img(comfy, _before_model(_graph(comfy, ref, True), "lo", lora()))
    assert not np.array_equal(lora_then_pulid, lora_only)
    pulid_then_lora = _img(comfy, _after_model(_graph(comfy, ref, True), "lo", lora()))
    assert np.array_equal(pulid_then_lora, lora_then_pulid)  # weights vs block outputs: order does not matter


def test_controlnet(comfy, ref):
    mode = {"class_type": "LikenessFluxUnionMode", "inputs": {"mode": "tile"}}
    cn_only = _img(comfy, with_union_control(_graph(comfy, ref, False), mode))
    assert not np.array_equal(_img(comfy, with_union_control(_graph(comfy, ref, True), mode)), cn_only)
    assert np.array_equal(_img(comfy, with_union_control(_graph(comfy, ref, True, start=1.0, end=1.0), mode)), cn_only)


def test_another_packs_patch_on_the_same_block(comfy, ref):
    def other():
        return {"class_type": "LikenessTestOtherPackPatch", "inputs": {"strength": 0.3}}

    other_only = _img(comfy, _before_model(_graph(comfy, ref, False), "op", other()))
    pulid_only = _img(comfy, _graph(comfy, ref, True))
    both = _img(comfy, _before_model(_graph(comfy, ref, True), "op", other()))  # other pack first, then PuLID
    assert not np.array_equal(both, other_only) and not np.array_equal(both, pulid_only)
    assert np.array_equal(_img(comfy, _before_model(_graph(comfy, ref, True, start=1.0, end=1.0), "op", other())), other_only)
    # The other order, documented in the README: a pack that does not chain, applied after PuLID, replaces PuLID's
    # function at its blocks (ComfyUI keeps one per block). Here those are all of the tiny PuLID's blocks.
    reverse = _img(comfy, _after_model(_graph(comfy, ref, True), "op", other()))
    assert np.array_equal(reverse, other_only)


def test_fp8_weights(comfy, ref):
    def fp8(g):
        g["1"]["inputs"]["weight_dtype"] = "fp8_e4m3fn"
        return g

    plain = _img(comfy, _graph(comfy, ref, False))
    plain8 = _img(comfy, fp8(_graph(comfy, ref, False)))
    assert not np.array_equal(plain8, plain)  # the weights really are fp8
    assert not np.array_equal(_img(comfy, fp8(_graph(comfy, ref, True))), plain8)
    assert np.array_equal(_img(comfy, fp8(_graph(comfy, ref, True, start=1.0, end=1.0))), plain8)
