"""Florence-2 captions through ``transformers`` (its native ``Florence2ForConditionalGeneration``, 4.56+).

Why not the original ``microsoft/Florence-2-*`` repositories: they need ``trust_remote_code``, i.e. running
Python shipped inside a model folder. This module never does that; it loads the transformers-native layout
(``model_type: florence2`` with a ``florence_vision`` vision config, as in ``florence-community/Florence-2-large``)
from a local folder, safetensors only, and never downloads.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..common.errors import LikenessError
from ..face.errors import FaceModelMissingError
from ..face.judge import to_rgb_uint8

log = logging.getLogger(__name__)

# User-facing task name -> Florence-2 task token (the processor maps the token to its prompt text).
TASKS = {
    "caption": "<CAPTION>",
    "detailed caption": "<DETAILED_CAPTION>",
    "more detailed caption": "<MORE_DETAILED_CAPTION>",
}
MIN_TRANSFORMERS = (4, 56)


class CaptionerError(LikenessError):
    """A Florence-2 folder or captioning request that cannot work; the message says what to change."""


def _transformers_version() -> tuple[int, int]:
    import transformers

    parts = transformers.__version__.split(".")
    return int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()) or 0)


def check_florence2_folder(model_dir: str | Path) -> Path:
    """The folder, after checking it holds a transformers-native Florence-2 in safetensors."""
    path = Path(model_dir)
    if not path.is_dir():
        raise FaceModelMissingError(
            f"Florence-2 folder {str(path)!r} does not exist: put a Florence-2 model folder (config.json, "
            "model.safetensors, tokenizer and processor files) under models/LLM"
        )
    config_file = path / "config.json"
    if not config_file.is_file():
        nested = [p.parent for p in path.glob("*/config.json")]
        hint = f" (found one level deeper in {nested[0].name!r}: move its files up)" if nested else ""
        raise FaceModelMissingError(f"{str(path)!r} has no config.json{hint}; it is not a Florence-2 model folder")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as err:
        raise CaptionerError(f"{str(config_file)!r} is not valid JSON ({err}); re-copy the model folder") from err
    vision_type = (config.get("vision_config") or {}).get("model_type")
    if config.get("model_type") != "florence2":
        raise CaptionerError(
            f"{path.name!r} is a {config.get('model_type')!r} model, not Florence-2 (config.json model_type must be 'florence2')"
        )
    if "auto_map" in config or vision_type == "davit":
        raise CaptionerError(
            f"{path.name!r} is the original remote-code Florence-2 layout (microsoft/Florence-2-*), which needs "
            "trust_remote_code; this pack never runs code from model folders. Use the transformers-native conversion "
            "(florence-community/Florence-2-large or -base) in models/LLM instead"
        )
    if not any(path.glob("*.safetensors")):
        raise CaptionerError(
            f"{path.name!r} has no .safetensors weights (only pickled .bin files are not loaded); use a safetensors copy"
        )
    return path


class Florence2Captioner:
    """A loaded Florence-2 model and processor; ``caption`` is deterministic (beam search, no sampling)."""

    def __init__(self, model: Any, processor: Any, name: str):
        self.model = model
        self.processor = processor
        self.name = name

    @property
    def device(self):
        return next(self.model.parameters()).device

    @property
    def dtype(self):
        return next(self.model.parameters()).dtype

    def caption(
        self,
        images: Sequence[Any] | Any,
        task: str = "more detailed caption",
        max_new_tokens: int = 256,
        num_beams: int = 3,
    ) -> list[str]:
        """One caption per image. ``images``: HxWx3 uint8 arrays, or a (B, H, W, 3) float batch in [0, 1]."""
        import torch
        from PIL import Image

        if task not in TASKS:
            raise CaptionerError(f"unknown caption task {task!r}: expected one of {', '.join(TASKS)}")
        if max_new_tokens < 1 or num_beams < 1:
            raise CaptionerError(f"max_new_tokens ({max_new_tokens}) and num_beams ({num_beams}) must be at least 1")
        if hasattr(images, "shape") and len(images.shape) == 4:
            images = [images[i] for i in range(images.shape[0])]
        pil = [Image.fromarray(to_rgb_uint8(img)) for img in images]
        if not pil:
            raise CaptionerError("no images to caption: the batch is empty")
        token = TASKS[task]
        out = []
        for img in pil:  # one at a time: batch-size-1 beam search keeps results independent of the batch
            inputs = self.processor(text=[token], images=[img], return_tensors="pt")
            inputs = {
                k: (v.to(self.device, self.dtype) if torch.is_floating_point(v) else v.to(self.device))
                for k, v in inputs.items()
            }
            with torch.inference_mode():
                ids = self.model.generate(
                    **inputs, max_new_tokens=int(max_new_tokens), num_beams=int(num_beams), do_sample=False
                )
            text = self.processor.batch_decode(ids, skip_special_tokens=True)[0]
            out.append(" ".join(text.split()))
        return out


def load_florence2(model_dir: str | Path, device: Any = "cpu", dtype: Any = None) -> Florence2Captioner:
    """Load a native Florence-2 folder offline (``local_files_only``, safetensors, no remote code)."""
    path = check_florence2_folder(model_dir)
    if _transformers_version() < MIN_TRANSFORMERS:
        import transformers

        raise CaptionerError(
            f"transformers {transformers.__version__} has no native Florence-2; upgrade to "
            f">= {'.'.join(map(str, MIN_TRANSFORMERS))} (pip install -U transformers)"
        )
    import torch
    from transformers import AutoProcessor, Florence2ForConditionalGeneration

    dtype = dtype or torch.float32
    try:
        processor = AutoProcessor.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
        model = Florence2ForConditionalGeneration.from_pretrained(
            str(path), local_files_only=True, trust_remote_code=False, use_safetensors=True, dtype=dtype
        )
    except (OSError, ValueError, KeyError) as err:
        raise CaptionerError(f"could not load Florence-2 from {str(path)!r}: {err}") from err
    model.to(device).eval()
    log.info("Florence-2 %s loaded (%s, %s)", path.name, device, dtype)
    return Florence2Captioner(model, processor, path.name)


def compose_prompt(caption: str, prefix: str = "", suffix: str = "") -> str:
    """prefix + caption + suffix, joined with single spaces (e.g. a trigger word before the caption)."""
    return " ".join(part.strip() for part in (prefix, caption, suffix) if part and part.strip())

