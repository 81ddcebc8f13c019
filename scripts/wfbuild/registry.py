"""Every shipped workflow and blueprint, in the order they are written. Append a new workflow here."""

from __future__ import annotations

from .enhance import enhance_crop, enhance_whole
from .others import avatar, score_only

# (file stem in workflows/, builder(object_info) -> Graph)
WORKFLOWS = [
    ("likeness_enhance_whole", enhance_whole),
    ("likeness_enhance_crop", enhance_crop),
    ("likeness_avatar", avatar),
    ("likeness_score", score_only),
]

# Blueprints in subgraphs/: (file stem = the name the editor shows, workflow stem, description,
# outputs [(socket name, node title, output slot)]). The editor names a blueprint by its file name, and ':' cannot
# be in a Windows file name (a ComfyUI-Manager git clone would fail there), so the names read "Likeness - ...".
BLUEPRINTS = [
    ("Likeness - Enhance face (whole image)", "likeness_enhance_whole",
     "Restore a drifted face identity over the whole image: PuLID-Flux + Union-Pro tile img2img, scored. "
     "Connect the loaders and the two images; the caption used comes out of 'prompt'.",
     [("image", "Match target size", 0), ("prompt", "Caption", 0), ("delta_id", "Enhancement report", 2)]),
    ("Likeness - Enhance faces (crop and paste)", "likeness_enhance_crop",
     "Enhance the two faces left to right, each at the working size, pasted back with a feathered mask. "
     "Connect the loaders, the target and one reference per face.",
     [("image", "Paste face back (face 2)", 0), ("prompt (face 1)", "Caption (face 1)", 0),
      ("prompt (face 2)", "Caption (face 2)", 0), ("delta_id", "Enhancement report", 2)]),
    ("Likeness - Score identity", "likeness_score",
     "Face Embed Distance before/after and the Enhancement Report. Connect a face judge and three images.",
     [("cos_before", "Enhancement report", 0), ("cos_after", "Enhancement report", 1),
      ("delta_id", "Enhancement report", 2)]),
]
