"""Switch a shipped workflow to the test stand-ins (tiny random models) when real weights are absent.

Stand-ins (``to_standins``): core loaders become the test pack's tiny models (``standins/comfy_pack``,
loaded as ``custom_nodes/likeness_standins``) and our loaders read the tiny files that
``standins/models.py::write_model_files`` writes, so every other node runs exactly as a user's would.
``ui_to_standins`` does the same to a UI workflow, for a browser that opens and queues the file as a user does.
"""

from __future__ import annotations

import copy
from typing import Any

from ..client.workflow_format import SEED_NAMES, WorkflowFormatError

# Core loader -> (stand-in node, its inputs). The stand-in pack builds tiny random models with ComfyUI's classes.
STANDIN_CLASSES: dict[str, tuple[str, dict[str, Any]]] = {
    "UNETLoader": ("LikenessTestTinyFlux", {"seed": 0}),
    "DualCLIPLoader": ("LikenessTestTinyTextEncoder", {"seed": 0}),
    "VAELoader": ("LikenessTestTinyVAE", {"seed": 0}),
    "ControlNetLoader": ("LikenessTestTinyUnionControlNet", {"seed": 0, "num_modes": 7}),
}

# (node class, input) -> the tiny file tests/conftest.py writes (key in its files dict, default name).
STANDIN_FILES: dict[tuple[str, str], tuple[str | None, str]] = {
    ("UpscaleModelLoader", "model_name"): ("esrgan", "tiny_esrgan_x4.safetensors"),
    ("LikenessPulidFluxLoader", "pulid_file"): ("pulid", "tiny_pulid_flux.safetensors"),
    ("LikenessEvaClipLoader", "eva_file"): ("eva", "tiny_eva02_clip.safetensors"),
    ("LikenessApplyPulidFlux", "parsing_model"): ("parsing", "parsing_bisenet.pth"),
    ("LikenessFlorence2Loader", "model"): ("florence2", "tiny-florence2"),
    ("LikenessFaceAnalysisLoader", "model"): (None, "insightface: antelopev2"),  # tiny ONNX pack
    ("LikenessFaceJudgeLoader", "model"): (None, "dlib (hog)"),  # a real judge on the real test photos
}

# Inputs that name a user file (model file or folder, input image): valid values depend on the user's folders.
USER_FILE_INPUTS: frozenset[tuple[str, str]] = frozenset(
    {
        ("UNETLoader", "unet_name"),
        ("DualCLIPLoader", "clip_name1"),
        ("DualCLIPLoader", "clip_name2"),
        ("VAELoader", "vae_name"),
        ("ControlNetLoader", "control_net_name"),
        ("LoraLoaderModelOnly", "lora_name"),
        ("LoadImage", "image"),
        *STANDIN_FILES,
    }
)


def _bypass(api: dict, node_id: str, input_name: str) -> None:
    """Remove a node, wiring its consumers to what fed ``input_name`` (how a bypassed node behaves)."""
    source = api[node_id]["inputs"][input_name]
    del api[node_id]
    for node in api.values():
        for key, value in node["inputs"].items():
            if isinstance(value, list) and value and value[0] == node_id:
                node["inputs"][key] = source


def to_standins(
    api: dict,
    files: dict[str, str] | None = None,
    steps: int | None = None,
    size: int | None = None,
    max_new_tokens: int | None = 8,
) -> dict:
    """A copy of an API workflow that runs on the tiny stand-ins instead of real weights.

    ``files``: names written by tests/conftest.py (its ``comfy.files``); ``steps``: sampler steps;
    ``size``: working size of face crops and the side of an empty latent (multiple of 16), for speed;
    ``max_new_tokens``: caption length on the tiny Florence-2.
    """
    files = files or {}
    out = copy.deepcopy(api)
    for nid in [n for n, node in out.items() if node["class_type"] == "LoraLoaderModelOnly"]:
        _bypass(out, nid, "model")  # no stand-in LoRA file
    for node in out.values():
        cls, inputs = node["class_type"], node["inputs"]
        if cls in STANDIN_CLASSES:
            node["class_type"], stand_inputs = STANDIN_CLASSES[cls]
            node["inputs"] = dict(stand_inputs)
            continue
        for (file_cls, name), (key, default) in STANDIN_FILES.items():
            if cls == file_cls and name in inputs and not isinstance(inputs[name], list):
                inputs[name] = files.get(key, default) if key else default
        if steps is not None and cls == "KSampler":
            inputs["steps"] = steps
        if size is not None and cls == "LikenessAutoCropFace":
            inputs["working_size"] = size
        if size is not None and cls == "EmptySD3LatentImage":
            ratio = inputs["height"] / inputs["width"]
            inputs["width"], inputs["height"] = size, max(16, round(size * ratio / 16) * 16)
        if max_new_tokens is not None and cls == "LikenessCaption":
            inputs["max_new_tokens"] = max_new_tokens
    return out


# (node class, input) -> index of its value in a UI node's ``widgets_values``: the frontend's order (widgets in
# input order, with the frontend-only value after a seed or an upload combo). Only the inputs ui_to_standins
# edits; tests/server/test_browser.py checks every index against the live /object_info.
UI_WIDGET_INDEX: dict[tuple[str, str], int] = {
    ("UpscaleModelLoader", "model_name"): 0,
    ("LikenessPulidFluxLoader", "pulid_file"): 0,
    ("LikenessEvaClipLoader", "eva_file"): 0,
    ("LikenessApplyPulidFlux", "parsing_model"): 6,
    ("LikenessFlorence2Loader", "model"): 0,
    ("LikenessFaceAnalysisLoader", "model"): 0,
    ("LikenessFaceJudgeLoader", "model"): 0,
    ("KSampler", "steps"): 2,
    ("LikenessAutoCropFace", "working_size"): 4,
    ("EmptySD3LatentImage", "width"): 0,
    ("EmptySD3LatentImage", "height"): 1,
    ("LikenessCaption", "max_new_tokens"): 3,
}


def _standin_widgets(inputs: dict[str, Any]) -> list[Any]:
    """widgets_values for a stand-in node: its inputs in order, "fixed" after a seed (the frontend adds a
    control_after_generate widget to every INT named seed)."""
    out: list[Any] = []
    for name, value in inputs.items():
        out.append(value)
        if name in SEED_NAMES:
            out.append("fixed")
    return out


def _set_widget(node: dict, name: str, value: Any) -> None:
    index = UI_WIDGET_INDEX[(node["type"], name)]
    values = node.get("widgets_values")
    if not isinstance(values, list) or index >= len(values):
        raise WorkflowFormatError(
            f"node {node.get('id')} ({node['type']}) has no widget value at index {index} for '{name}'; "
            "save the workflow again in the editor"
        )
    values[index] = value


def ui_to_standins(
    ui: dict,
    files: dict[str, str] | None = None,
    steps: int | None = None,
    size: int | None = None,
    max_new_tokens: int | None = 8,
) -> dict:
    """A copy of a UI workflow with the substitutions of ``to_standins``, so that the browser can queue a file
    a user opens and it runs on the tiny stand-ins (converted with ui_to_api it gives what to_standins gives).

    Core loaders change type and widgets; our loaders' file widgets name the test files; a LoRA is bypassed.
    """
    files = files or {}
    out = copy.deepcopy(ui)
    for node in out.get("nodes") or []:
        cls = node.get("type")
        if cls == "LoraLoaderModelOnly":
            node["mode"] = 4  # no stand-in LoRA file
            continue
        if cls in STANDIN_CLASSES:
            node["type"], stand_inputs = STANDIN_CLASSES[cls]
            node["widgets_values"] = _standin_widgets(stand_inputs)
            if "Node name for S&R" in (node.get("properties") or {}):
                node["properties"]["Node name for S&R"] = node["type"]
            continue
        for (file_cls, name), (key, default) in STANDIN_FILES.items():
            if cls == file_cls:
                _set_widget(node, name, files.get(key, default) if key else default)
        if steps is not None and cls == "KSampler":
            _set_widget(node, "steps", steps)
        if size is not None and cls == "LikenessAutoCropFace":
            _set_widget(node, "working_size", size)
        if size is not None and cls == "EmptySD3LatentImage":
            width, height = node["widgets_values"][0], node["widgets_values"][1]
            _set_widget(node, "width", size)
            _set_widget(node, "height", max(16, round(size * (height / width) / 16) * 16))
        if max_new_tokens is not None and cls == "LikenessCaption":
            _set_widget(node, "max_new_tokens", max_new_tokens)
    return out
