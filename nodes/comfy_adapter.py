"""The one module of the pack that touches ComfyUI internals.

Everything ComfyUI-specific the nodes need goes through here, so a ComfyUI update that moves an
internal breaks one file, and the pure packages (pulid/, eva_clip/, face/) never see ComfyUI.
"""

from __future__ import annotations

import os

import comfy.model_management as mm
import comfy.utils
import folder_paths

# Model file types the loaders accept. .pkl/.ckpt are not here on purpose: they are pickles.
WEIGHT_EXTENSIONS = {".safetensors", ".sft", ".pt", ".pth", ".bin"}

# folder name -> sub-folders of ComfyUI's models dir it covers (the first is the default).
MODEL_FOLDERS: dict[str, tuple[str, ...]] = {
    "pulid": ("pulid",),
    "insightface": ("insightface",),
    "facexlib": ("facexlib",),
    # EVA02_CLIP_L_336_psz14_s6B.pt: its own folder, and clip_vision where many users put it.
    "eva_clip": ("eva_clip", "clip_vision"),
    "LLM": ("LLM",),
    # alexnet-owt-7be5be79.pth + LPIPS v0.1 alex.pth, for the optional LPIPS score of the report.
    "lpips": ("lpips",),
}


def register_model_folders() -> None:
    """Register the pack's model folders with ComfyUI (they also honour extra_model_paths.yaml)."""
    for name, subdirs in MODEL_FOLDERS.items():
        for sub in subdirs:
            folder_paths.add_model_folder_path(name, os.path.join(folder_paths.models_dir, sub))
        paths, exts = folder_paths.folder_names_and_paths[name]
        if not exts and name not in ("insightface", "facexlib", "LLM", "lpips"):
            folder_paths.folder_names_and_paths[name] = (paths, set(WEIGHT_EXTENSIONS))


def model_folder_paths(name: str) -> list[str]:
    return folder_paths.get_folder_paths(name)


def list_model_files(name: str) -> list[str]:
    return folder_paths.get_filename_list(name)


def list_model_dirs(name: str, marker: str = "config.json") -> list[str]:
    """Sub-folders of a registered model folder that hold ``marker`` (e.g. models/LLM/Florence-2-large)."""
    found = set()
    for root in model_folder_paths(name):
        if os.path.isdir(root):
            for entry in os.listdir(root):
                if os.path.isfile(os.path.join(root, entry, marker)):
                    found.add(entry)
    return sorted(found)


def model_dir_path(name: str, folder: str) -> str:
    """Full path of a model sub-folder, refusing names that escape it; the first root when it is absent."""
    if os.path.isabs(folder) or any(part in ("..", "") for part in folder.replace("\\", "/").split("/")):
        raise ValueError(f"model folder {folder!r} must be a folder name inside models/{name}, not a path")
    roots = model_folder_paths(name)
    for root in roots:
        if os.path.isdir(os.path.join(root, folder)):
            return os.path.join(root, folder)
    return os.path.join(roots[0], folder)


def model_file_path(folder: str, filename: str) -> str:
    """Full path of a model file, refusing names that escape the folder (``..``, absolute paths)."""
    if os.path.isabs(filename) or ".." in filename.replace("\\", "/").split("/"):
        raise ValueError(f"model name {filename!r} must be a file inside the '{folder}' models folder, not a path")
    return folder_paths.get_full_path_or_raise(folder, filename)


def torch_device():
    return mm.get_torch_device()


def offload_device():
    return mm.unet_offload_device()


def intermediate_device():
    return mm.intermediate_device()


def throw_if_interrupted() -> None:
    mm.throw_exception_if_processing_interrupted()


def progress_bar(total: int):
    return comfy.utils.ProgressBar(total)


def union_mode_rows(control_net) -> int:
    """Rows of a Flux ControlNet's mode embedding (0 when it has none)."""
    control_model = getattr(control_net, "control_model", None)
    embedder = getattr(control_model, "controlnet_mode_embedder", None)
    if embedder is None:
        return 0
    return int(embedder.weight.shape[0])


def set_control_type(control_net, index: int | None):
    """A copy of the ControlNet with the union control type set, as core's SetUnionControlNetType does."""
    out = control_net.copy()
    out.set_extra_arg("control_type", [] if index is None else [index])
    return out


def save_preview(images, prefix: str = "likeness") -> list[dict]:
    """Save an IMAGE batch to ComfyUI's temp folder and return the UI records the frontend shows."""
    import numpy as np
    from PIL import Image

    out_dir = folder_paths.get_temp_directory()
    full, name, counter, subfolder, _ = folder_paths.get_save_image_path(
        prefix, out_dir, images.shape[2], images.shape[1]
    )
    records = []
    for i, img in enumerate(images):
        arr = np.clip(img.cpu().numpy() * 255.0, 0, 255).astype(np.uint8)
        file = f"{name}_{counter + i:05}_.png"
        Image.fromarray(arr).save(os.path.join(full, file), compress_level=1)
        records.append({"filename": file, "subfolder": subfolder, "type": "temp"})
    return records


def insightface_model_dirs() -> dict[str, str]:
    """Model pack folders under every registered insightface path: {name: folder}."""
    found = {}
    for root in model_folder_paths("insightface"):
        models = os.path.join(root, "models")
        if os.path.isdir(models):
            for name in sorted(os.listdir(models)):
                if os.path.isdir(os.path.join(models, name)):
                    found.setdefault(name, os.path.join(models, name))
    return found


def insightface_model_dir(name: str) -> str:
    """The folder of an insightface model pack; the default location when it is absent (checked later)."""
    if os.path.isabs(name) or ".." in name.replace("\\", "/").split("/"):
        raise ValueError(f"insightface model name {name!r} must be a folder name under models/insightface/models")
    return insightface_model_dirs().get(name) or os.path.join(model_folder_paths("insightface")[0], "models", name)


def upscale_with_model(upscale_model, image):
    """Run a spandrel upscale model exactly as core's ImageUpscaleWithModel does (tiling, OOM retry)."""
    from comfy_extras.nodes_upscale_model import ImageUpscaleWithModel

    out = ImageUpscaleWithModel.execute(upscale_model, image)
    return out.args[0] if hasattr(out, "args") else out[0]


def managed(module):
    """Hand a torch module to ComfyUI's memory manager (loaded on demand, offloaded when VRAM is needed)."""
    import comfy.model_patcher

    return comfy.model_patcher.ModelPatcher(module, load_device=mm.get_torch_device(), offload_device=mm.unet_offload_device())


def load_on_device(patchers) -> None:
    mm.load_models_gpu(list(patchers))


def weight_dtype(choice: str):
    """The dtype PuLID/EVA weights are kept in: bf16 where the device supports it, else float32."""
    import torch

    if choice != "auto":
        return getattr(torch, choice)
    device = mm.get_torch_device()
    return torch.bfloat16 if mm.should_use_bf16(device) and device.type != "cpu" else torch.float32


def flux_block_counts(model) -> tuple[int, int]:
    """(double blocks, single blocks) of a Flux MODEL, or a clear error for any other model."""
    dm = getattr(model.model, "diffusion_model", None)
    double, single = getattr(dm, "double_blocks", None), getattr(dm, "single_blocks", None)
    if double is None or single is None:
        raise ValueError(
            f"Apply PuLID-Flux needs a Flux model, got {type(dm).__name__}; load flux1-dev with Load Diffusion Model"
        )
    return len(double), len(single)


def model_family(model) -> tuple[str, int | None, bool]:
    """(ComfyUI model-config class, e.g. "Flux" / "Flux2" / "Chroma" / "SDXL"; hidden width; has Flux blocks).

    The class is the one comfy/supported_models.py detected for the checkpoint; the width is the transformer's
    hidden size (a UNet's model_channels when it has none), None when neither is known.
    """
    base = getattr(model, "model", None)
    family = type(getattr(base, "model_config", None)).__name__
    dm = getattr(base, "diffusion_model", None)
    unet = getattr(getattr(base, "model_config", None), "unet_config", {}) or {}
    width = None
    for value in (getattr(dm, "hidden_size", None), getattr(dm, "inner_dim", None), unet.get("hidden_size"), unet.get("model_channels")):
        if isinstance(value, int):
            width = value
            break
    has_blocks = getattr(dm, "double_blocks", None) is not None and getattr(dm, "single_blocks", None) is not None
    return family, width, has_blocks


def add_diffusion_model_wrapper(model, key: str, wrapper) -> None:
    """Wrap the diffusion model's forward (core WrappersMP.DIFFUSION_MODEL; the wrapper forwards *args, **kwargs)."""
    import comfy.patcher_extension

    model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, key, wrapper)


def dit_replace_patches(model) -> dict:
    """The Flux block replace patches already on a MODEL (from another Apply node), keyed like ours."""
    to = model.model_options.get("transformer_options", {})
    return dict(to.get("patches_replace", {}).get("dit", {}))


def percent_to_sigma(model, percent: float) -> float:
    return float(model.get_model_object("model_sampling").percent_to_sigma(percent))


def vae_encode(vae, image):
    """Latent samples of an IMAGE batch, as core VAE Encode gives them (RGB only)."""
    return vae.encode(image[:, :, :, :3])


def append_reference_latents(conditioning, latents: list):
    """Conditioning with ``latents`` appended to reference_latents, as core Reference Latent does (node_helpers)."""
    import node_helpers

    return node_helpers.conditioning_set_values(conditioning, {"reference_latents": list(latents)}, append=True)
