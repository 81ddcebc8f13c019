"""One table of every node the pack registers: id -> (class, display name)."""

from __future__ import annotations

from .caption_nodes import LikenessCaption, LikenessFlorence2Loader
from .control_nodes import LikenessFluxUnionMode
from .crop_nodes import LikenessAutoCropFace, LikenessPasteFaceBack, LikenessUpscaleIfSmall
from .face_nodes import LikenessFaceAnalysisLoader, LikenessFaceEmbedDistance, LikenessFaceJudgeLoader
from .pulid_nodes import LikenessApplyPulidFlux, LikenessEvaClipLoader, LikenessPulidFluxLoader
from .reference_nodes import LikenessReferenceLatents
from .report_nodes import LikenessEnhancementReport

_NODES = [
    ("LikenessFluxUnionMode", LikenessFluxUnionMode, "Flux Union ControlNet Mode (Likeness)"),
    ("LikenessFaceJudgeLoader", LikenessFaceJudgeLoader, "Load Face Judge (Likeness)"),
    ("LikenessFaceAnalysisLoader", LikenessFaceAnalysisLoader, "Load Face Analysis for PuLID (Likeness)"),
    ("LikenessPulidFluxLoader", LikenessPulidFluxLoader, "Load PuLID-Flux Model (Likeness)"),
    ("LikenessEvaClipLoader", LikenessEvaClipLoader, "Load EVA-CLIP for PuLID (Likeness)"),
    ("LikenessApplyPulidFlux", LikenessApplyPulidFlux, "Apply PuLID-Flux (Likeness)"),
    ("LikenessAutoCropFace", LikenessAutoCropFace, "Auto-crop Face (Likeness)"),
    ("LikenessUpscaleIfSmall", LikenessUpscaleIfSmall, "Upscale Face If Small (Likeness)"),
    ("LikenessPasteFaceBack", LikenessPasteFaceBack, "Paste Face Back (Likeness)"),
    ("LikenessFlorence2Loader", LikenessFlorence2Loader, "Load Florence-2 Captioner (Likeness)"),
    ("LikenessCaption", LikenessCaption, "Caption or Manual Prompt (Likeness)"),
    ("LikenessFaceEmbedDistance", LikenessFaceEmbedDistance, "Face Embed Distance (Likeness)"),
    ("LikenessEnhancementReport", LikenessEnhancementReport, "Enhancement Report (Likeness)"),
    ("LikenessReferenceLatents", LikenessReferenceLatents, "Reference Latents from Images (Likeness)"),
]

NODE_CLASS_MAPPINGS = {node_id: cls for node_id, cls, _ in _NODES}
NODE_DISPLAY_NAME_MAPPINGS = {node_id: name for node_id, _, name in _NODES}
