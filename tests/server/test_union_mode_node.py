"""Flux Union ControlNet mode through the live server with a tiny Union ControlNet stand-in."""

import numpy as np
import pytest
from graphs import t2i_flux, with_union_control
from likeness.client.api import ExecutionFailed


def _img(comfy, graph):
    return np.asarray(comfy.image(comfy.run(graph).images("10")[0])).astype(np.int16)


def test_tile_reaches_mode_embedding_row_1(comfy):
    base = t2i_flux(prompt="portrait", seed=5)
    ours_tile = _img(comfy, with_union_control(base, {"class_type": "LikenessFluxUnionMode", "inputs": {"mode": "tile"}}))
    # Core's SDXL table: "depth" is index 1 and "tile" is index 6.
    core_row1 = _img(comfy, with_union_control(base, {"class_type": "SetUnionControlNetType", "inputs": {"type": "depth"}}))
    core_tile = _img(comfy, with_union_control(base, {"class_type": "SetUnionControlNetType", "inputs": {"type": "tile"}}))
    ours_lq = _img(comfy, with_union_control(base, {"class_type": "LikenessFluxUnionMode", "inputs": {"mode": "low quality"}}))
    assert np.array_equal(ours_tile, core_row1), "our 'tile' must send row 1"
    assert not np.array_equal(ours_tile, core_tile), "core 'tile' sends row 6 (Flux 'low quality')"
    assert np.array_equal(ours_lq, core_tile)


def test_mode_on_a_controlnet_without_modes_fails_with_a_clear_error(comfy):
    graph = with_union_control(t2i_flux(), {"class_type": "LikenessFluxUnionMode", "inputs": {"mode": "tile"}}, num_modes=0)
    with pytest.raises(ExecutionFailed, match="no mode embedding.*Union-Pro 2.0"):
        comfy.run(graph)
    # The server stays up and serves the next prompt.
    assert comfy.run(t2i_flux()).images("10")


def test_mode_none_runs_a_controlnet_without_modes(comfy):
    graph = with_union_control(t2i_flux(), {"class_type": "LikenessFluxUnionMode", "inputs": {"mode": "none"}}, num_modes=0)
    assert comfy.run(graph).images("10")
