"""Florence-2 loader and Caption: the target image's caption becomes the regeneration prompt (it steers the tile
ControlNet's regeneration)."""

from __future__ import annotations

import logging

import torch

from ..caption.florence2 import TASKS, compose_prompt, load_florence2
from . import comfy_adapter as host
from .types import CAPTIONER, CATEGORY

log = logging.getLogger(__name__)

PRECISIONS = ["auto", "float32", "bfloat16", "float16"]


class _Holder(torch.nn.Module):
    """ComfyUI's ModelPatcher assigns ``model.device``, a read-only property on transformers models."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner


class CaptionerBundle:
    """What flows on a LIKENESS_CAPTIONER socket: the captioner and its memory manager."""

    def __init__(self, captioner):
        self.captioner = captioner
        self.patcher = host.managed(_Holder(captioner.model))


class LikenessFlorence2Loader:
    DESCRIPTION = (
        "Load a Florence-2 captioner from a folder in models/LLM (the transformers-native layout, e.g. "
        "florence-community/Florence-2-large, safetensors). Nothing is downloaded and no code from the folder is run."
    )
    CATEGORY = f"{CATEGORY}/loaders"
    RETURN_TYPES = (CAPTIONER,)
    RETURN_NAMES = ("captioner",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (host.list_model_dirs("LLM"), {"tooltip": "A Florence-2 folder in models/LLM (config.json, model.safetensors, tokenizer, processor)."}),
                "precision": (PRECISIONS, {"default": "auto", "tooltip": "auto: bfloat16 on GPUs that support it, float32 on CPU."}),
            }
        }

    def load(self, model, precision):
        path = host.model_dir_path("LLM", model)
        captioner = load_florence2(path, device=host.offload_device(), dtype=host.weight_dtype(precision))
        return (CaptionerBundle(captioner),)


class LikenessCaption:
    DESCRIPTION = (
        "Caption the target image with Florence-2 for the regeneration prompt, or use the manual prompt when it is not empty "
        "(then Florence-2 is not run and the captioner input may be left unconnected). Deterministic: beam search, no sampling."
    )
    CATEGORY = f"{CATEGORY}/prompt"
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("prompt", "captions")
    OUTPUT_IS_LIST = (False, True)
    OUTPUT_TOOLTIPS = (
        "prefix + the first image's caption (or the manual prompt): connect it to CLIP Text Encode's text.",
        "Every image's caption, one string per image of the batch.",
    )
    FUNCTION = "caption"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "The image to describe (the target being enhanced)."}),
                "task": (list(TASKS), {"default": "more detailed caption", "tooltip": "Florence-2 task: one sentence, a detailed sentence, or a paragraph."}),
                "manual_prompt": ("STRING", {"default": "", "multiline": True, "tooltip": "Not empty: used as the prompt instead of a caption."}),
                "prefix": ("STRING", {"default": "", "tooltip": "Put before the caption, e.g. a LoRA trigger word or 'a photo of'."}),
                "max_new_tokens": ("INT", {"default": 256, "min": 1, "max": 1024, "tooltip": "Longest caption in tokens."}),
                "num_beams": ("INT", {"default": 3, "min": 1, "max": 8, "tooltip": "Beam search width (1 = greedy)."}),
            },
            "optional": {
                "captioner": (CAPTIONER, {"tooltip": "From Load Florence-2; not needed when a manual prompt is given."}),
            },
        }

    def caption(self, image, task, manual_prompt, prefix, max_new_tokens, num_beams, captioner=None):
        if manual_prompt.strip():
            captions = [manual_prompt.strip()] * int(image.shape[0])
            log.info("Caption: manual prompt used, Florence-2 not run")
        else:
            if captioner is None:
                raise ValueError(
                    "Caption has an empty manual_prompt and no captioner: connect Load Florence-2 (Likeness) "
                    "to 'captioner', or type a prompt into manual_prompt"
                )
            host.load_on_device([captioner.patcher])
            captions = captioner.captioner.caption(image, task=task, max_new_tokens=max_new_tokens, num_beams=num_beams)
            if len(captions) > 1:
                log.info("Caption: %d images captioned; 'prompt' uses the first, 'captions' has all", len(captions))
        prompt = compose_prompt(captions[0], prefix)
        return {"ui": {"text": [prompt]}, "result": (prompt, captions)}
