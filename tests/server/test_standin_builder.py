"""Tests and benchmarks share one stand-in builder (standins/comfy_pack/build.py).

Statically: inside the stand-in pack only build.py constructs ComfyUI models, ControlNets, VAEs and text
encoders. Live: the benchmark nodes, served by the same pack the suite links, sample through /prompt with the
Union ControlNet and a block patch timed, so a benchmark cannot drift from what the tests run.
"""

import ast
from pathlib import Path

import numpy as np
from graphs import t2i_flux, with_union_control

PACK = Path(__file__).resolve().parents[2] / "standins" / "comfy_pack"
BUILDERS = {"ModelPatcher", "ControlNet", "ControlNetFlux", "VAE", "AutoencoderKL", "get_model"}


def _calls(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            f = node.func
            names.add(f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", ""))
    return names


def _text_encoders(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    return [c.name for c in ast.walk(tree) if isinstance(c, ast.ClassDef)
            and any(isinstance(f, ast.FunctionDef) and f.name == "encode_from_tokens_scheduled" for f in c.body)]  # fmt: skip


def test_only_build_py_constructs_stand_in_models():
    modules = sorted(PACK.glob("*.py"))
    assert {"build.py", "nodes.py", "bench.py", "families.py"} <= {p.name for p in modules}
    for path in modules:
        if path.name != "build.py":
            assert not (_calls(path) & BUILDERS), f"{path.name} builds {sorted(_calls(path) & BUILDERS)}: use build.py"
            assert not _text_encoders(path), f"{path.name} defines a text encoder: use build.HashTextEncoder"
    assert _calls(PACK / "build.py") >= {"ModelPatcher", "ControlNetFlux", "VAE", "get_model"}
    assert _text_encoders(PACK / "build.py") == ["HashTextEncoder"]


def _bench(graph: dict, hidden: int = 128) -> dict:
    """Swap the tiny test loaders for the benchmark ones (Flux-dev head size and text widths)."""
    graph["1"] = {"class_type": "LikenessBenchFlux", "inputs": {"seed": 0, "hidden_size": hidden, "depth": 1,
                                                                "depth_single_blocks": 2, "weight_dtype": "default"}}  # fmt: skip
    graph["2"] = {"class_type": "LikenessBenchTextEncoder", "inputs": {"seed": 0, "tokens": 4}}
    if "20" in graph:
        graph["20"] = {"class_type": "LikenessBenchUnionControlNet", "inputs": {"seed": 0, "hidden_size": hidden, "depth": 1,
                                                                                "depth_single_blocks": 0, "num_modes": 10}}  # fmt: skip
    return graph


def test_benchmark_nodes_sample_with_controlnet_and_timed_pulid(comfy):
    tile = {"class_type": "SetUnionControlNetType", "inputs": {"type": "tile"}}
    plain = comfy.run(_bench(with_union_control(t2i_flux(size=64, steps=2), tile, num_modes=10)))
    img = np.asarray(comfy.image(plain.images("10")[0]), dtype=np.float32)
    assert img.shape == (64, 64, 3) and np.isfinite(img).all() and img.std() > 0

    graph = _bench(t2i_flux(size=64, steps=2))  # another pack's block patch stands in for PuLID's (same contract)
    graph["30"] = {"class_type": "LikenessTestOtherPackPatch", "inputs": {"model": ["1", 0], "strength": 0.3}}
    graph["31"] = {"class_type": "LikenessBenchPatchTimer", "inputs": {"model": ["30", 0], "token": "builder-test"}}
    graph["8"]["inputs"]["model"] = ["31", 0]
    graph["32"] = {"class_type": "LikenessBenchPatchTimerReport", "inputs": {"samples": ["8", 0], "token": "builder-test"}}
    timer = comfy.run(graph).outputs["32"]["bench_patch_timer"][0]
    assert timer["calls"] == 2 * 2 and 0 < timer["block_s"] <= timer["patch_s"], timer  # 2 patched blocks x 2 steps
