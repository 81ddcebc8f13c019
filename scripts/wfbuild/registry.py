"""Every shipped workflow and blueprint, in the order they are written. Append a new workflow here."""

from __future__ import annotations

from likeness import contract as C

from .edit import flux2, kontext, kontext_crop
from .enhance import enhance_crop, enhance_whole
from .multi_id import multi_id
from .others import avatar, score_only

# (file stem in workflows/, builder(object_info) -> Graph)
WORKFLOWS = [
    (C.WORKFLOW_ENHANCE_WHOLE, enhance_whole),
    (C.WORKFLOW_ENHANCE_CROP, enhance_crop),
    (C.WORKFLOW_AVATAR, avatar),
    (C.WORKFLOW_SCORE, score_only),
    (C.WORKFLOW_MULTI_ID, multi_id),
    (C.WORKFLOW_ENHANCE_KONTEXT, kontext),
    (C.WORKFLOW_ENHANCE_KONTEXT_CROP, kontext_crop),
    (C.WORKFLOW_ENHANCE_FLUX2, flux2),
]

# Blueprints in subgraphs/: (file stem = the name the editor shows, workflow stem, description,
# outputs [(socket name, node title, output slot)]). The editor names a blueprint by its file name, and ':' cannot
# be in a Windows file name (a ComfyUI-Manager git clone would fail there), so the names read "Likeness - ...".
BLUEPRINTS = [
    (C.BLUEPRINT_ENHANCE_WHOLE, C.WORKFLOW_ENHANCE_WHOLE,
     "Restore a drifted face identity over the whole image: PuLID-Flux + Union-Pro tile img2img, scored. "
     "Connect the loaders and the two images; the caption used comes out of 'prompt'.",
     [("image", "Match target size", 0), ("prompt", C.CAPTION, 0), ("delta_id", C.ENHANCEMENT_REPORT, 2)]),
    (C.BLUEPRINT_ENHANCE_CROP, C.WORKFLOW_ENHANCE_CROP,
     "Enhance the two faces left to right, each at the working size, pasted back with a feathered mask. "
     "Connect the loaders, the target and one reference per face.",
     [("image", "Paste face back (face 2)", 0), ("prompt (face 1)", f"{C.CAPTION} (face 1)", 0),
      ("prompt (face 2)", f"{C.CAPTION} (face 2)", 0), ("delta_id", C.ENHANCEMENT_REPORT, 2)]),
    (C.BLUEPRINT_SCORE, C.WORKFLOW_SCORE,
     "Face Embed Distance before/after and the Enhancement Report. Connect a face judge and three images.",
     [("cos_before", C.ENHANCEMENT_REPORT, 0), ("cos_after", C.ENHANCEMENT_REPORT, 1),
      ("delta_id", C.ENHANCEMENT_REPORT, 2)]),
]
