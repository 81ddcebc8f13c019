"""Which model files a run uses, found before anything is queued: never a silent stand-in.

Stand-in random weights run only when asked (``--standins``) or in ``likeness demo`` with no models folder
given; the banner says so. An explicit ``--models``/``--comfyui`` folder, or a real server, that lacks a file
the workflow loads fails with exit 4 naming each file, its folder and the accepted alternatives. The ESRGAN
upscaler may be any file in ``upscale_models`` (README model table): ``--upscaler NAME`` picks one; without it
the standard name, then the README's alternatives, then the only file there are used.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..contract import ESRGAN, MODEL_FILES
from .problems import ModelFilesMissing

log = logging.getLogger("likeness")

ESRGAN_ALTERNATIVES = ("4x-UltraSharp.pth",)  # README model table
UPSCALE_SUFFIXES = (".pth", ".safetensors", ".pt", ".bin", ".ckpt")
# loader class -> (input, the folder under models/ it lists), for the object_info check of a real server.
LOADERS = {
    "UNETLoader": [("unet_name", "diffusion_models")],
    "DualCLIPLoader": [("clip_name1", "text_encoders"), ("clip_name2", "text_encoders")],
    "VAELoader": [("vae_name", "vae")],
    "ControlNetLoader": [("control_net_name", "controlnet")],
    "LikenessPulidFluxLoader": [("pulid_file", "pulid")],
    "LikenessEvaClipLoader": [("eva_file", "eva_clip")],
    "LikenessFaceAnalysisLoader": [("model", "insightface/models")],
    "UpscaleModelLoader": [("model_name", "upscale_models")],
    "LikenessFlorence2Loader": [("model", "LLM")],
    "LikenessFaceJudgeLoader": [("model", "insightface/models")],
    "LikenessApplyPulidFlux": [("parsing_model", "facexlib")],
}


def upscalers_in(folder: Path) -> list[str]:
    d = folder / "upscale_models"
    return sorted(f.name for f in d.iterdir() if f.suffix.lower() in UPSCALE_SUFFIXES) if d.is_dir() else []


def pick_upscaler(available: list[str], wanted: str | None, where: str) -> str:
    """The ESRGAN file to load (see the module docstring); ModelFilesMissing lists what there is."""
    if wanted:
        if wanted in available:
            return wanted
        raise ModelFilesMissing(f"--upscaler {wanted!r} is not in {where}/upscale_models; it has {available or 'no files'}")
    for name in (ESRGAN, *ESRGAN_ALTERNATIVES):
        if name in available:
            return name
    if len(available) == 1:
        log.info("likeness: using the only upscaler in %s/upscale_models: %s", where, available[0])
        return available[0]
    if available:
        raise ModelFilesMissing(f"{where}/upscale_models has several upscalers {available} and none named {ESRGAN}: pick one with --upscaler NAME")
    raise ModelFilesMissing(
        f"no ESRGAN upscaler in {where}/upscale_models: put {ESRGAN} or {' or '.join(ESRGAN_ALTERNATIVES)} there "
        "(any ESRGAN .pth works with --upscaler NAME)"
    )


def check_models_folder(models: Path, flag: str, upscaler: str | None) -> str:
    """Every file a real run needs under ``models``; returns the upscaler to use. Exit 4 names what is missing."""
    if not models.is_dir():
        raise ModelFilesMissing(f"{flag} {str(models)!r} is not a folder: give your ComfyUI models folder (the one with diffusion_models/, vae/…), or --standins to try random weights")
    missing = []
    for path, alts in MODEL_FILES.items():
        if path.startswith("upscale_models/"):
            continue
        if not any((models / q).exists() for q in (path, *alts)):
            missing.append(f"{Path(path).name} (in {' or '.join(str(Path(q).parent) + '/' for q in (path, *alts))})")
    if missing:
        raise ModelFilesMissing(
            f"{flag} {str(models)!r} lacks {len(missing)} model file(s): {'; '.join(missing)}. See the README model table, "
            "or pass --standins to run on random stand-in weights"
        )
    return pick_upscaler(upscalers_in(models), upscaler, str(models))


def _options(info: dict, cls: str, name: str) -> list[str] | None:
    spec = (info.get(cls, {}).get("input", {}).get("required", {}) or {}).get(name)
    return list(spec[0]) if spec and isinstance(spec[0], list) else None


def check_graph_models(graph: dict, info: dict, server: str) -> None:
    """Each loader's file is one the server lists (its /object_info choices); exit 4 naming file, folder and choices."""
    problems = []
    for node in graph.values():
        for name, folder in LOADERS.get(node.get("class_type"), []):
            value = node.get("inputs", {}).get(name)
            options = _options(info, node["class_type"], name)
            if isinstance(value, str) and options is not None and value not in options:
                title = (node.get("_meta") or {}).get("title", node["class_type"])
                shown = ", ".join(map(str, options[:6])) + (" …" if len(options) > 6 else "")
                problems.append(f"{value!r} for '{title}' (models/{folder}; the server has: {shown or 'nothing'})")
    if problems:
        raise ModelFilesMissing(f"{server} lacks model file(s) before anything was queued: {'; '.join(problems)}")


def server_upscaler(info: dict, wanted: str | None, server: str) -> str | None:
    options = _options(info, "UpscaleModelLoader", "model_name")
    return None if options is None else pick_upscaler(options, wanted, f"{server} models")


def set_upscaler(graph: dict, name: str | None) -> dict:
    if name:
        for node in graph.values():
            if node.get("class_type") == "UpscaleModelLoader":
                node["inputs"]["model_name"] = name
    return graph
