"""The edit-model workflows: FLUX.1 Kontext with PuLID, and FLUX.2 with its own reference latents.

- likeness_enhance_kontext: FLUX.1 Kontext [dev] edits the drifted target (its own reference latent) with an
  instruction that keeps everything but the face, while PuLID-Flux injects the identity of the reference photos
  (the residual reaches only the generated image's tokens, never the reference latent's).
- likeness_enhance_kontext_crop: the same edit on the target's face crop only (the crop is Kontext's reference
  latent), pasted back with a feathered mask, for a big image where the face is small.
- likeness_enhance_flux2: FLUX.2 [dev] restores the face crop from the reference face crops given as its native
  reference latents (no PuLID), then pastes it back; crop, paste, judge and report are the pack's.

"""

from __future__ import annotations

from likeness import contract as C

from .graph import BLUE, BROWN, GREEN, GREY, INPUT_COLORS, PURPLE, YELLOW, Graph
from .pieces import (
    AE,
    CLIP_L,
    ESRGAN,
    EVA,
    PULID,
    T5,
    fit_to_target,
    judge,
    paste_back,
    pulid_loaders,
    reference_chain,
    scoring,
)

KONTEXT, FLUX2, FLUX2_TE, FLUX2_VAE = C.KONTEXT_DEV, C.FLUX2_DEV, C.FLUX2_TEXT_ENCODER, C.FLUX2_VAE
KONTEXT_PROMPT = (
    "Restore this person's face so it is sharp and natural and clearly the same person. Keep everything else "
    "exactly the same: pose, expression, hair, clothes, background, lighting, colours and framing."
)
FLUX2_PROMPT = (
    "A sharp, natural close-up photo of the person from the reference images, same expression, pose and lighting "
    "as the input face; realistic skin and eyes."
)


KONTEXT_DETAILS = (
    "FLUX.1 Kontext [dev] edits the target itself (its reference latent) with an instruction that keeps "
    "everything but the face, and PuLID-Flux adds the identity of the reference photo(s). PuLID changes only "
    "the image being generated, never the reference latent Kontext copies from.\n\n"
    "Edit 'Prompt' if you like; keep the 'keep everything else' part. For a big image where the face is small, "
    f"{C.WORKFLOW_ENHANCE_KONTEXT_CROP} edits only the face crop and pastes it back."
)
KONTEXT_CROP_DETAILS = (
    "The target's face is cropped (1.6x the face box, square, 1024 px: Kontext's own 1024x1024 size, so no "
    "Kontext Image Scale), encoded and given to FLUX.1 Kontext [dev] as its reference latent with an instruction "
    "that keeps everything but the face; PuLID-Flux adds the reference identity to the generated crop only. "
    "The edited crop is pasted back with a feathered mask: pixels outside the mask stay bit-identical.\n\n"
    "'Crop target' working_size: keep a multiple of 16. For a close-up where the face fills the frame, "
    f"{C.WORKFLOW_ENHANCE_KONTEXT} edits the whole target."
)


def kontext_models(g: Graph, crop: bool = False):
    """Kontext's loaders, PuLID's, the upscaler and judge, and the three notes (``crop``: the face-crop variant's)."""
    m = {
        "unet": g.add("UNETLoader", "FLUX.1 Kontext [dev]", unet_name=KONTEXT, weight_dtype="default"),
        "clip": g.add("DualCLIPLoader", "Text encoders (CLIP-L + T5-XXL)", clip_name1=CLIP_L, clip_name2=T5, type="flux"),
        "vae": g.add("VAELoader", "Flux VAE", vae_name=AE),
    } | pulid_loaders(g)
    m["esrgan"] = g.add("UpscaleModelLoader", "ESRGAN upscaler", model_name=ESRGAN)
    m["judge"] = judge(g)
    shows = "the image with the face edited and pasted back" if crop else "the edited image"
    how = [g.note(
        "LOAD: your reference photo and the target image (the two green nodes), and the model files of 'Model files'.\n"
        f"PRESS: Run. 'Save result' shows {shows}, 'Enhancement report' the scores.",
        title="How to use", width=420, height=120,
    ), g.note(KONTEXT_CROP_DETAILS if crop else KONTEXT_DETAILS, title="Details", width=420, height=250 if crop else 230)]
    models = g.note(
        f"diffusion_models/{KONTEXT} (FLUX.1 Kontext [dev], non-commercial licence)\ntext_encoders/{CLIP_L}, {T5}\n"
        f"vae/{AE}\npulid/{PULID}\neva_clip/{EVA}\ninsightface/models/antelopev2/ and buffalo_l/\n"
        f"facexlib/parsing_bisenet.pth\nupscale_models/{ESRGAN}",
        title="Model files", width=420, height=220,
    )
    return m, how + [models]


def _kontext_edit(g: Graph, m: dict, pulid, image, image_out, what: str):
    """Encode ``image`` as Kontext's reference latent and the latent to sample, the edit prompt, KSampler, decode."""
    enc = g.add("VAEEncode", f"Encode {what}")
    prompt = g.add("CLIPTextEncode", C.PROMPT, text=KONTEXT_PROMPT)
    refl = g.add("ReferenceLatent", f"{what.capitalize()} as reference latent")
    guid = g.add("FluxGuidance", "Flux guidance", guidance=2.5)
    neg = g.add("ConditioningZeroOut", "Negative (unused at cfg 1)")
    ks = g.add("KSampler", C.SAMPLER, seed=42, steps=28, cfg=1.0, sampler_name="euler", scheduler="simple", denoise=1.0)
    dec = g.add("VAEDecode", "Decode")
    g.link(image, image_out, enc, "pixels")
    g.link(m["vae"], 0, enc, "vae")
    g.link(m["clip"], 0, prompt, "clip")
    g.link(prompt, 0, refl, "conditioning")
    g.link(enc, 0, refl, "latent")
    g.link(refl, 0, guid, "conditioning")
    g.link(prompt, 0, neg, "conditioning")
    g.link(pulid, 0, ks, "model")
    g.link(guid, 0, ks, "positive")
    g.link(neg, 0, ks, "negative")
    g.link(enc, 0, ks, "latent_image")
    g.link(ks, 0, dec, "samples")
    g.link(m["vae"], 0, dec, "vae")
    return [enc, prompt, refl, guid, neg], [ks, dec], dec


def _kontext_layout(g: Graph, m: dict, notes, ref_nodes, target_group, edit_group, score) -> None:
    g.layout(
        [[("", GREY, [notes])],
         [("1. Models", BROWN, [[m["unet"], m["clip"], m["vae"], m["judge"]], [m["pulid"], m["eva"], m["fa"], m["esrgan"]]])],
         [("2. Reference face -> PuLID-Flux (weight 0.75, start 0.1)", GREEN, [ref_nodes[:2], ref_nodes[2:]])]],
        [[target_group], [edit_group], [("5. Score and save", YELLOW, [score[1:3], score[3:], score[:1]])]],
    )  # fmt: skip


def kontext(info: dict) -> Graph:
    g = Graph(C.WORKFLOW_ENHANCE_KONTEXT, info)
    m, notes = kontext_models(g)
    ref, ref_nodes, pulid = reference_chain(g, m)
    target = g.add("LoadImage", C.TARGET, colors=INPUT_COLORS, image="target.png")
    scale = g.add("FluxKontextImageScale", "Kontext size")
    g.link(target, "IMAGE", scale, "image")
    cond, sample, dec = _kontext_edit(g, m, pulid, scale, 0, "target")
    fit_nodes, fit = fit_to_target(g, target, dec)
    score = scoring(g, m, ref, target, "IMAGE", fit, "IMAGE", "likeness/enhanced_kontext")
    _kontext_layout(
        g, m, notes, ref_nodes,
        ("3. Target as Kontext reference, edit instruction", BLUE, [[target, scale, cond[0]], cond[1:]]),
        ("4. Kontext edit with PuLID, 28 steps", PURPLE, [sample, fit_nodes]), score,
    )  # fmt: skip
    return g


def kontext_crop(info: dict) -> Graph:
    """The Kontext edit on the target's face crop (its own reference latent), pasted back with a feathered mask."""
    g = Graph(C.WORKFLOW_ENHANCE_KONTEXT_CROP, info)
    m, notes = kontext_models(g, crop=True)
    ref, ref_nodes, pulid = reference_chain(g, m)
    target = g.add("LoadImage", C.TARGET, colors=INPUT_COLORS, image="target.png")
    # fixed 1024 px square: one of FluxKontextImageScale's preferred sizes, a multiple of 16
    crop = g.add("LikenessAutoCropFace", C.CROP_TARGET, face_order="largest", face_index=0, context=1.6, aspect=1.0,
                 working_size=1024, align_eyes=False, pad_mode="edge", no_face="error", feather=32, size_mode="fixed")
    g.link(m["judge"], 0, crop, "detector")
    g.link(target, "IMAGE", crop, "image")
    cond, sample, dec = _kontext_edit(g, m, pulid, crop, "crops", "face crop")
    paste = paste_back(g, target, "IMAGE", dec, crop)
    score = scoring(g, m, ref, target, "IMAGE", paste, "image", "likeness/enhanced_kontext_crop")
    _kontext_layout(
        g, m, notes, ref_nodes,
        ("3. Target face crop as Kontext reference, edit instruction", BLUE, [[target, crop], cond]),
        ("4. Kontext edit of the crop with PuLID, 28 steps, paste back", PURPLE, [sample, [paste]]), score,
    )  # fmt: skip
    return g


def _flux2_models(g):
    """FLUX.2's three loaders, the judge, and the two notes."""
    m = {
        "unet": g.add("UNETLoader", "FLUX.2 [dev]", unet_name=FLUX2, weight_dtype="default"),
        "clip": g.add("CLIPLoader", "Text encoder (Mistral 3 Small)", clip_name=FLUX2_TE, type="flux2", device="default"),
        "vae": g.add("VAELoader", "FLUX.2 VAE", vae_name=FLUX2_VAE),
        "judge": judge(g),
    }
    how = [g.note(
        "LOAD: your reference photo and the target image (the two green nodes), and the model files of 'Model files'.\n"
        "PRESS: Run. 'Save result' shows the image with the face restored, 'Enhancement report' the scores.",
        title="How to use", width=420, height=120,
    ), g.note(
        "FLUX.2 reference restoration (no PuLID): the target's face is cropped, regenerated by FLUX.2 [dev] "
        "(denoise 0.7) with the reference face crop(s) as FLUX.2's own reference images, and pasted back with a "
        "feathered mask; pixels outside the mask stay bit-identical.\n\n"
        "Several references: batch the photos (Batch Images) before 'Crop reference face' with face_index -1 "
        "or one face each; 'Reference latents' gives FLUX.2 one reference per crop (max 4 by default).",
        title="Details", width=420, height=250,
    )]
    models = g.note(
        f"diffusion_models/{FLUX2} (FLUX.2 [dev], FLUX [dev] non-commercial licence)\n"
        f"text_encoders/{FLUX2_TE}\nvae/{FLUX2_VAE}\ninsightface/models/buffalo_l/ (judge)",
        title="Model files", width=420, height=160,
    )
    return m, how + [models]


def flux2(info: dict) -> Graph:
    g = Graph(C.WORKFLOW_ENHANCE_FLUX2, info)
    m, notes = _flux2_models(g)
    ref = g.add("LoadImage", "Reference image", colors=INPUT_COLORS, image="reference.png")
    ref_crop = g.add("LikenessAutoCropFace", "Crop reference face", face_order="largest", face_index=0, context=1.6,
                     aspect=1.0, working_size=512, align_eyes=False, pad_mode="edge", no_face="error", feather=24)
    target = g.add("LoadImage", "Target image", colors=INPUT_COLORS, image="target.png")
    crop = g.add("LikenessAutoCropFace", "Crop target", face_order="largest", face_index=0, context=1.6, aspect=1.0,
                 working_size=1024, align_eyes=False, pad_mode="edge", no_face="error", feather=32)
    prompt = g.add("CLIPTextEncode", "Prompt", text=FLUX2_PROMPT)
    guid = g.add("FluxGuidance", "Flux guidance", guidance=4.0)
    refs = g.add("LikenessReferenceLatents", "Reference latents", max_references=4)
    neg = g.add("ConditioningZeroOut", "Negative (unused at cfg 1)")
    enc = g.add("VAEEncode", "Encode target face")
    ks = g.add("KSampler", "Sampler", seed=42, steps=28, cfg=1.0, sampler_name="euler", scheduler="simple", denoise=0.7)
    dec = g.add("VAEDecode", "Decode")
    for det, img, c in ((m["judge"], ref, ref_crop), (m["judge"], target, crop)):
        g.link(det, 0, c, "detector")
        g.link(img, "IMAGE", c, "image")
    g.link(m["clip"], 0, prompt, "clip")
    g.link(prompt, 0, guid, "conditioning")
    g.link(guid, 0, refs, "conditioning")
    g.link(m["vae"], 0, refs, "vae")
    g.link(ref_crop, "crops", refs, "images")
    g.link(prompt, 0, neg, "conditioning")
    g.link(crop, "crops", enc, "pixels")
    g.link(m["vae"], 0, enc, "vae")
    g.link(m["unet"], 0, ks, "model")
    g.link(refs, 0, ks, "positive")
    g.link(neg, 0, ks, "negative")
    g.link(enc, 0, ks, "latent_image")
    g.link(ks, 0, dec, "samples")
    g.link(m["vae"], 0, dec, "vae")
    paste = paste_back(g, target, "IMAGE", dec, crop)
    score = scoring(g, m, ref, target, "IMAGE", paste, "image", "likeness/enhanced_flux2")
    g.layout(
        [[("", GREY, [notes])],
         [("1. Models", BROWN, [[m["unet"], m["clip"], m["vae"], m["judge"]]])],
         [("2. Reference face crop(s) -> FLUX.2 reference latents", GREEN, [[ref, ref_crop], [prompt, guid, refs, neg]])]],
        [[("3. Target face: crop, regenerate (denoise 0.7), paste back", PURPLE, [[target, crop], [enc, ks, dec, paste]])],
         [("4. Score and save", YELLOW, [score[1:3], score[3:], score[:1]])]],
    )  # fmt: skip
    return g
