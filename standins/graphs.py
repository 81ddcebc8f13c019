"""API-format graphs the client queues that are not user workflows (the stand-in harness graph)."""

from __future__ import annotations


def t2i_flux(prompt: str = "a portrait photo", size: int = 128, steps: int = 3, seed: int = 1, model_seed: int = 0, scheduler: str = "simple", prefix: str = "harness") -> dict:
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
                "scheduler": scheduler,
                "denoise": 1.0,
            },
        },
        "9": {"class_type": "VAEDecode", "inputs": {"samples": ["8", 0], "vae": ["3", 0]}},
        "10": {"class_type": "SaveImage", "inputs": {"images": ["9", 0], "filename_prefix": prefix}},
    }
