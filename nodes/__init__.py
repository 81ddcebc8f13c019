"""ComfyUI glue. Only nodes/comfy_adapter.py imports ComfyUI internals; node modules import it."""
