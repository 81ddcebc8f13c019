"""Builders for API-format graphs used by the live-server tests."""

from __future__ import annotations

import numpy as np
from likeness.standins.graphs import t2i_flux  # noqa: F401  (re-exported for the tests)


def with_union_control(graph: dict, mode_node: dict, num_modes: int = 7, strength: float = 1.0) -> dict:
    """Add a tiny Union ControlNet, a mode node and ControlNetApplyAdvanced in front of the sampler."""
    g = {k: {"class_type": v["class_type"], "inputs": dict(v["inputs"])} for k, v in graph.items()}
    g["20"] = {"class_type": "LikenessTestTinyUnionControlNet", "inputs": {"seed": 0, "num_modes": num_modes}}
    g["21"] = {"class_type": mode_node["class_type"], "inputs": {"control_net": ["20", 0], **mode_node["inputs"]}}
    g["22"] = {"class_type": "EmptyImage", "inputs": {"width": 128, "height": 128, "batch_size": 1, "color": 0x808080}}
    g["23"] = {
        "class_type": "ControlNetApplyAdvanced",
        "inputs": {
            "positive": ["5", 0],
            "negative": ["6", 0],
            "control_net": ["21", 0],
            "image": ["22", 0],
            "strength": strength,
            "start_percent": 0.0,
            "end_percent": 1.0,
            "vae": ["3", 0],
        },
    }
    g["8"]["inputs"]["positive"] = ["23", 0]
    g["8"]["inputs"]["negative"] = ["23", 1]
    return g


def face_noise(seed, size=96):
    """A random reference image (the tiny insightface stand-in 'finds' a face in anything)."""
    rng = np.random.default_rng(seed)
    return (rng.random((size, size, 3)) * 255).astype(np.uint8)


def with_pulid(comfy, refs, weight=1.0, start=0.0, end=1.0, analysis="antelopev2", order="largest", index=0, model_in=("1", 0), key="p"):
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
