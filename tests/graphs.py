"""Builders for API-format graphs used by the live-server tests."""

from __future__ import annotations

from client.graphs import t2i_flux  # noqa: F401  (re-exported for the tests)


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
