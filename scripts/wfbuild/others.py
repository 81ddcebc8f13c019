"""The avatar (text-to-image with identity, seed 003) and score-only workflows."""

from __future__ import annotations

from likeness import contract as C

from .graph import BLUE, BROWN, CYAN, GREEN, GREY, INPUT_COLORS, PURPLE, YELLOW, Graph
from .pieces import MODELS_NOTE, flux_loaders, judge, pulid_loaders, scoring

AVATAR_HOW = (
    "LOAD: the reference photo and an OpenPose skeleton image (green nodes), and the model files of 'Model files'.\n"
    "PRESS: Run. 'Save result' shows the 896x1216 image; 'Identity distance' scores it against the reference."
)
AVATAR_DETAILS = (
    "Flux.1-dev + an optional identity LoRA + PuLID-Flux (weight 0.4, start 0.15, end 0.9, so the LoRA builds the "
    "composition first) + Union-Pro pose control (strength 0.85, end 0.8).\n\n"
    "LoRA: the 'LoRA' node ships bypassed (purple). Select it and press Ctrl+B to turn it on, then pick your "
    "LoRA file and put its trigger word into the prompt.\nNo pose: bypass 'Apply Union ControlNet' (Ctrl+B).\n"
    "'Identity distance' scores every image against the reference (lower = closer)."
)
SCORE_HOW = (
    "LOAD: the reference photo, the target (before) and the enhanced image (after), the same size (green nodes).\n"
    "PRESS: Run. 'Enhancement report' shows cosine before/after, delta ID and SSIM/PSNR outside the face."
)
SCORE_DETAILS = (
    "Face Embed Distance of the target (before) and the enhanced image (after) to the reference. Put several "
    "reference photos in a batch (Batch Images) to average them.\n\nJudge: insightface buffalo_l (non-commercial) "
    "or 'dlib (hog)' (commercially usable)."
)
AVATAR_PROMPT = (
    "a full-body photo of the person standing on a forest trail, left arm raised high, hiking clothes, "
    "natural light, sharp focus"
)


def _notes(g: Graph, how: str, details: str, models: bool) -> list:
    nodes = [g.note(how, title="How to use", width=420, height=120), g.note(details, title="Details", width=420, height=230)]
    if models:
        nodes.append(g.note(MODELS_NOTE, title="Model files", width=420, height=250))
    g.outside.update(n.id for n in nodes)
    return nodes


def _pose(g: Graph, m: dict, guid, neg):
    pose = g.add("LoadImage", C.POSE, colors=INPUT_COLORS, image="pose.png")
    mode = g.add("LikenessFluxUnionMode", "Union mode: pose", mode="pose")
    g.link(m["cn"], 0, mode, "control_net")
    apply = g.add("ControlNetApplyAdvanced", C.APPLY_CONTROL, strength=0.85, start_percent=0.0, end_percent=0.8)
    g.link(guid, 0, apply, "positive")
    g.link(neg, 0, apply, "negative")
    g.link(mode, 0, apply, "control_net")
    g.link(pose, "IMAGE", apply, "image")
    g.link(m["vae"], 0, apply, "vae")
    return pose, mode, apply


def _identity(g: Graph, m: dict):
    lora = g.add("LoraLoaderModelOnly", C.LORA, node_mode=4, lora_name="your_identity_lora.safetensors", strength_model=1.0)
    g.link(m["unet"], 0, lora, "model")
    ref = g.add("LoadImage", C.REFERENCE, colors=INPUT_COLORS, image="reference.png")
    pulid = g.add("LikenessApplyPulidFlux", C.APPLY_PULID, weight=0.4, start_at=0.15, end_at=0.9, fusion="mean",
                  face_order="largest", face_index=0, parsing_model=C.PARSING)
    g.link(lora, 0, pulid, "model")
    g.link(m["pulid"], 0, pulid, "pulid")
    g.link(m["eva"], 0, pulid, "eva_clip")
    g.link(m["fa"], 0, pulid, "face_analysis")
    g.link(ref, "IMAGE", pulid, "image")
    return lora, ref, pulid


# --------------------------------------------------------------------------------------------------------
# 3. Consistent avatar (seed 003)
# --------------------------------------------------------------------------------------------------------
def avatar(info: dict) -> Graph:
    g = Graph(C.WORKFLOW_AVATAR, info)
    m = flux_loaders(g) | pulid_loaders(g)
    m["judge"] = judge(g)
    how = _notes(g, AVATAR_HOW, AVATAR_DETAILS, models=True)
    lora, ref, pulid = _identity(g, m)
    prompt = g.add("CLIPTextEncode", C.PROMPT, text=AVATAR_PROMPT)
    g.link(m["clip"], 0, prompt, "clip")
    guid = g.add("FluxGuidance", "Flux guidance", guidance=3.5)
    neg = g.add("ConditioningZeroOut", "Negative (unused at cfg 1)")
    g.link(prompt, 0, guid, "conditioning")
    g.link(prompt, 0, neg, "conditioning")
    pose, mode, apply = _pose(g, m, guid, neg)
    latent = g.add("EmptySD3LatentImage", C.LATENT_SIZE, width=896, height=1216, batch_size=1)
    ks = g.add("KSampler", C.SAMPLER, seed=42, steps=25, cfg=1.0, sampler_name="euler", scheduler="simple", denoise=1.0)
    g.link(pulid, 0, ks, "model")
    g.link(apply, "positive", ks, "positive")
    g.link(apply, "negative", ks, "negative")
    g.link(latent, 0, ks, "latent_image")
    dec = g.add("VAEDecode", "Decode")
    g.link(ks, 0, dec, "samples")
    g.link(m["vae"], 0, dec, "vae")
    save = g.add("SaveImage", C.SAVE_RESULT, filename_prefix="likeness/avatar")
    g.link(dec, 0, save, "images")
    dist = g.add("LikenessFaceEmbedDistance", C.IDENTITY_DISTANCE, metric="cosine", threshold=0.0, face_order="largest",
                 face_index=0, reference_without_face="error")
    g.link(m["judge"], 0, dist, "judge")
    g.link(ref, "IMAGE", dist, "reference")
    g.link(dec, 0, dist, "images")
    g.layout(
        [[("", GREY, [how])],
         [("Models", BROWN, [[m["unet"], m["clip"], m["vae"], m["cn"]], [m["pulid"], m["eva"], m["fa"], m["judge"]]])],
         [("Identity: optional LoRA + PuLID-Flux (0.4, 0.15-0.9)", GREEN, [[lora, ref], [pulid]])]],
        [[("Prompt", BLUE, [[prompt, guid, neg]]), ("Pose: Union-Pro 'pose'", CYAN, [[pose], [mode, apply]])],
         [("Generate 896x1216", PURPLE, [[latent, ks, dec]])],
         [("Save and score", YELLOW, [[save], [dist]])]],
    )
    return g


# --------------------------------------------------------------------------------------------------------
# 4. Score only
# --------------------------------------------------------------------------------------------------------
def score_only(info: dict) -> Graph:
    g = Graph(C.WORKFLOW_SCORE, info)
    m = {"judge": judge(g)}
    how = _notes(g, SCORE_HOW, SCORE_DETAILS, models=False)
    ref = g.add("LoadImage", C.REFERENCE, colors=INPUT_COLORS, image="reference.png")
    before = g.add("LoadImage", C.TARGET, colors=INPUT_COLORS, image="target.png")
    after = g.add("LoadImage", C.ENHANCED, colors=INPUT_COLORS, image="enhanced.png")
    g.outside.update({m["judge"].id, ref.id, before.id, after.id} | {n.id for n in how})
    score = scoring(g, m, ref, before, "IMAGE", after, "IMAGE", None)
    g.promote += [("face index", [(d, "face_index") for d in score[:2]])]
    g.layout(
        [[("", GREY, [how])], [("Judge", BROWN, [[m["judge"]]])], [("Images", GREEN, [[ref], [before], [after]])],
         [("Scores", YELLOW, [score[:2], score[2:]])]],
    )
    return g
