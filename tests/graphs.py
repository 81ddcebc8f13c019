"""Builders for API-format graphs used by the live-server tests."""

from __future__ import annotations


def t2i_flux(prompt: str = "a portrait photo", size: int = 128, steps: int = 3, seed: int = 1, model_seed: int = 0) -> dict:
    """Text-to-image on the stand-ins with core nodes only (the harness graph)."""
    return {
        "1": {"class_type": "LikenessTestTinyFlux", "inputs": {"seed": model_seed}},
        "2": {"class_type": "LikenessTestTinyTextEncoder", "inputs": {"seed": 0}},
        "3": {"class_type": "LikenessTestTinyVAE", "inputs": {"seed": 0}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["2", 0], "text": prompt}},
        "5": {"class_type": "FluxGuidance", "inputs": {"conditioning": ["4", 0], "guidance": 3.5}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["2", 0], "text": ""}},
        "7": {"class_type": "EmptySD3LatentImage", "inputs": {"width": size, "height": size, "batch_size": 1}},
        "8": {
            "class_type": "KSampler",
            "inputs": {
                "model": ["1", 0],
                "positive": ["5", 0],
                "negative": ["6", 0],
                "latent_image": ["7", 0],
                "seed": seed,
                "steps": steps,
                "cfg": 1.0,
                "sampler_name": "euler",
                "scheduler": "simple",
                "denoise": 1.0,
            },
        },
        "9": {"class_type": "VAEDecode", "inputs": {"samples": ["8", 0], "vae": ["3", 0]}},
        "10": {"class_type": "SaveImage", "inputs": {"images": ["9", 0], "filename_prefix": "harness"}},
    }


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
