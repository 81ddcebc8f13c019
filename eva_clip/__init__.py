"""EVA02-CLIP-L-14-336 visual tower for PuLID: strict loading, the five tapped hidden states, preprocessing."""

from .errors import EvaClipCheckpointError
from .loading import load_eva_clip_file, read_state_dict
from .model import (
    OFFICIAL_L336,
    EvaClipConfig,
    EvaClipVision,
    detect_config,
    expected_shapes,
    load_eva_clip,
    rope_tables,
)
from .preprocess import CLIP_MEAN, CLIP_STD, preprocess

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "OFFICIAL_L336",
    "EvaClipCheckpointError",
    "EvaClipConfig",
    "EvaClipVision",
    "detect_config",
    "expected_shapes",
    "load_eva_clip",
    "load_eva_clip_file",
    "preprocess",
    "read_state_dict",
    "rope_tables",
]
