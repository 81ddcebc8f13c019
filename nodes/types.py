"""Socket type names shared by the pack's nodes (prefixed so they never clash with other packs)."""

PULID = "LIKENESS_PULID"
EVA_CLIP = "LIKENESS_EVA_CLIP"
FACE_ANALYSIS = "LIKENESS_FACE_ANALYSIS"
FACE_JUDGE = "LIKENESS_FACE_JUDGE"
CROP_DATA = "LIKENESS_CROP_DATA"
CAPTIONER = "LIKENESS_CAPTIONER"

CATEGORY = "Likeness"
