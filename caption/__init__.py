"""Image captioning for prompts: Florence-2 (local folder, safetensors only, never downloads)."""
