"""Test stand-ins: tiny model files and a test-only ComfyUI node pack (comfy_pack/)."""
