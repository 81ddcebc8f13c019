"""The tiny model files the tests and the stand-in demo put in a ComfyUI models folder.

``python -m standins <models dir>`` (run from tests/, with the repository root on PYTHONPATH) writes them
and prints the {role: file name} map as JSON; the client's demo calls it in a subprocess (no torch in client/).
"""

from __future__ import annotations

from pathlib import Path


def write_model_files(models: Path) -> dict[str, str]:
    """Tiny model files that loaders read from the models folder exactly as a user's would."""
    from .facexlib_weights import write_random_bisenet
    from .florence2 import write_remote_code_layout, write_tiny_florence2
    from .insightface_onnx import layout_insightface_models, write_tiny_insightface
    from .lpips_weights import write_random_lpips
    from .weights import write_tiny_esrgan, write_tiny_eva, write_tiny_pulid

    files = {}
    for sub in ("upscale_models", "pulid", "eva_clip", "facexlib"):
        (models / sub).mkdir(parents=True, exist_ok=True)
    files["esrgan"] = write_tiny_esrgan(models / "upscale_models" / "tiny_esrgan_x4.safetensors").name
    files["pulid"] = write_tiny_pulid(models / "pulid" / "tiny_pulid_flux.safetensors").name
    files["eva"] = write_tiny_eva(models / "eva_clip" / "tiny_eva02_clip.safetensors").name
    files["parsing"] = write_random_bisenet(models / "facexlib" / "parsing_bisenet.pth").name
    files["lpips"] = write_random_lpips(models / "lpips")[0].name
    files["florence2"] = write_tiny_florence2(models / "LLM" / "tiny-florence2").name
    files["florence2_remote_code"] = write_remote_code_layout(models / "LLM" / "Florence-2-remote-code").name
    layout_insightface_models(models, names=("antelopev2",), faces=1)
    insight = models / "insightface" / "models"
    write_tiny_insightface(insight / "noface", faces=0)
    write_tiny_insightface(insight / "three_faces", faces=3)
    return files
