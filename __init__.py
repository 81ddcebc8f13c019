"""Likeness: ComfyUI nodes that fix and keep a person's face identity in generated images.

Import does three things only: expose the node registry, register the model folders the pack reads, and
warn (one log line naming the packages) when insightface or ONNX Runtime is missing. No downloads, threads,
prints or sys.path edits.
"""

from importlib.util import find_spec

if find_spec("folder_paths") is not None:  # inside a ComfyUI process
    from .nodes.comfy_adapter import register_model_folders
    from .nodes.registry import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

    register_model_folders()

    from .face.judge import runtime_missing

    if runtime_missing():  # checked, not required: see pyproject.toml's dependencies
        import logging

        logging.getLogger("likeness").warning(runtime_missing())
else:
    # Imported as a plain package (pytest collecting this checkout, scripts using pulid/ face/
    # client/): there is no ComfyUI to register with.
    NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = {}, {}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
