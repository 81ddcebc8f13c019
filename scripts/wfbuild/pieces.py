"""Pieces the workflows share: the model loaders, the reference -> PuLID chain, caption -> prompt, the tile
img2img sampler, fit-to-target, paste-back and the scores. Model file names are the README model table's."""

from __future__ import annotations

from likeness import contract as C

from .graph import INPUT_COLORS, Graph, Node

# Standard file names (README model table), from the contract.
FLUX, T5, CLIP_L, AE, UNION_PRO = C.FLUX_DEV, C.T5XXL, C.CLIP_L, C.FLUX_VAE, C.UNION_PRO
PULID, EVA, ESRGAN, FLORENCE, PARSING = C.PULID_FLUX, C.EVA_CLIP, C.ESRGAN, C.FLORENCE2, C.PARSING


def flux_loaders(g: Graph, control: bool = True) -> dict[str, Node]:
    m = {
        "unet": g.add("UNETLoader", "Flux.1-dev", unet_name=FLUX, weight_dtype="default"),
        "clip": g.add("DualCLIPLoader", "Text encoders (CLIP-L + T5-XXL)", clip_name1=CLIP_L, clip_name2=T5, type="flux"),
        "vae": g.add("VAELoader", "Flux VAE", vae_name=AE),
    }
    if control:
        m["cn"] = g.add("ControlNetLoader", "Union-Pro ControlNet (v1)", control_net_name=UNION_PRO)
    return m


def pulid_loaders(g: Graph) -> dict[str, Node]:
    return {
        "pulid": g.add("LikenessPulidFluxLoader", "PuLID-Flux", pulid_file=PULID, dtype="auto"),
        "eva": g.add("LikenessEvaClipLoader", "EVA-CLIP", eva_file=EVA, dtype="auto"),
        "fa": g.add("LikenessFaceAnalysisLoader", "Face analysis (antelopev2)", model=f"insightface: {C.ANTELOPEV2}", provider="CPU", det_size=640),
    }


def judge(g: Graph) -> Node:
    return g.add("LikenessFaceJudgeLoader", C.FACE_JUDGE, model=f"insightface: {C.BUFFALO_L}", provider="CPU", det_size=640)


def reference_chain(g: Graph, m: dict, suffix: str = "", ref_title: str = C.REFERENCE, ref_file: str = "reference.png"):
    """Reference photo(s) -> auto-crop -> upscale if small -> Apply PuLID-Flux (seed 000: weight 0.75, start 0.1)."""
    ref = g.add("LoadImage", ref_title, colors=INPUT_COLORS, image=ref_file)
    crop = g.add("LikenessAutoCropFace", f"Crop reference face{suffix}", face_order="largest", face_index=0, context=1.6,
                 aspect=1.0, working_size=512, align_eyes=False, pad_mode="edge", no_face="error", feather=24)
    up = g.add("LikenessUpscaleIfSmall", f"Upscale reference if small{suffix}")
    apply = g.add("LikenessApplyPulidFlux", f"{C.APPLY_PULID}{suffix}", weight=0.75, start_at=0.1, end_at=1.0,
                  fusion="mean", face_order="largest", face_index=0, parsing_model=PARSING)
    g.link(m["fa"], 0, crop, "detector")
    g.link(ref, "IMAGE", crop, "image")
    g.link(ref, "IMAGE", up, "image")
    g.link(crop, "crop_data", up, "crop_data")
    g.link(m["esrgan"], 0, up, "upscale_model")
    g.link(m["unet"], 0, apply, "model")
    g.link(m["pulid"], 0, apply, "pulid")
    g.link(m["eva"], 0, apply, "eva_clip")
    g.link(m["fa"], 0, apply, "face_analysis")
    g.link(up, "crops", apply, "image")
    return ref, [ref, crop, up, apply], apply


def fit_to_target(g: Graph, target: Node, image: Node, image_out: str | int = 0):
    """Scale a decoded image back to the target's size (VAE Encode crops to a multiple of 8 px), so before and
    after line up for the report; returns ([size, fit], fit)."""
    size = g.add("GetImageSize", "Target size")
    fit = g.add("ImageScale", "Match target size", upscale_method="lanczos", crop="disabled")
    g.link(target, "IMAGE", size, "image")
    g.link(image, image_out, fit, "image")
    g.link(size, "width", fit, "width")
    g.link(size, "height", fit, "height")
    return [size, fit], fit


def paste_back(g: Graph, image: Node, image_out: str | int, decoded: Node, crop: Node, suffix: str = "") -> Node:
    """Paste the decoded face crop(s) into ``image`` where ``crop`` cut them, with a feathered mask."""
    paste = g.add("LikenessPasteFaceBack", f"Paste face back{suffix}", feather=32, color_match="none")
    g.link(image, image_out, paste, "image")
    g.link(decoded, 0, paste, "crops")
    g.link(crop, "crop_data", paste, "crop_data")
    return paste


def prompt_chain(g: Graph, m: dict, image: Node, image_out: str | int, suffix: str = ""):
    """Caption (Florence-2, or the manual prompt) -> CLIP Text Encode -> Flux guidance; zeroed negative."""
    cap = g.add("LikenessCaption", f"{C.CAPTION}{suffix}", box_w=360, task="more detailed caption", manual_prompt="",
                prefix="", max_new_tokens=256, num_beams=3)
    enc = g.add("CLIPTextEncode", f"Encode prompt{suffix}", text="")
    guid = g.add("FluxGuidance", f"Flux guidance{suffix}", guidance=3.5)
    neg = g.add("ConditioningZeroOut", f"Negative (unused at cfg 1){suffix}")
    g.link(image, image_out, cap, "image")
    g.link(m["florence"], 0, cap, "captioner")
    g.link(cap, "prompt", enc, "text")
    shown = g.add("PreviewAny", f"{C.PROMPT_USED}{suffix}", box_w=360)  # the caption on the canvas, to copy and edit
    g.link(cap, "prompt", shown, "source")
    g.link(m["clip"], 0, enc, "clip")
    g.link(enc, 0, guid, "conditioning")
    g.link(enc, 0, neg, "conditioning")
    return [cap, shown, enc, guid, neg], guid, neg


def sample_chain(g: Graph, m: dict, model: Node, pos: Node, neg: Node, control: Node, image: Node, image_out, suffix: str = ""):
    """Union tile ControlNet on the image + img2img KSampler (28 steps, denoise 0.75, euler/beta, cfg 1) + decode."""
    apply = g.add("ControlNetApplyAdvanced", f"{C.APPLY_CONTROL}{suffix}", strength=0.8, start_percent=0.1, end_percent=0.8)
    enc = g.add("VAEEncode", f"Encode image{suffix}")
    ks = g.add("KSampler", f"{C.SAMPLER}{suffix}", seed=42, steps=28, cfg=1.0, sampler_name="euler", scheduler="beta", denoise=0.75)
    dec = g.add("VAEDecode", f"Decode{suffix}")
    g.link(pos, 0, apply, "positive")
    g.link(neg, 0, apply, "negative")
    g.link(control, 0, apply, "control_net")
    g.link(image, image_out, apply, "image")
    g.link(m["vae"], 0, apply, "vae")
    g.link(image, image_out, enc, "pixels")
    g.link(m["vae"], 0, enc, "vae")
    g.link(model, 0, ks, "model")
    g.link(apply, "positive", ks, "positive")
    g.link(apply, "negative", ks, "negative")
    g.link(enc, 0, ks, "latent_image")
    g.link(ks, 0, dec, "samples")
    g.link(m["vae"], 0, dec, "vae")
    return [apply, enc, ks, dec], dec


def scoring(g: Graph, m: dict, ref: Node, before: Node, before_out, after: Node, after_out, save_prefix: str | None):
    """Face Embed Distance before/after, the enhancement report, and the saved result."""
    d0 = g.add("LikenessFaceEmbedDistance", C.DISTANCE_BEFORE, metric="cosine", threshold=0.0, face_order="largest",
               face_index=0, reference_without_face="error")
    d1 = g.add("LikenessFaceEmbedDistance", C.DISTANCE_AFTER, metric="cosine", threshold=0.0, face_order="largest",
               face_index=0, reference_without_face="error")
    rep = g.add("LikenessEnhancementReport", C.ENHANCEMENT_REPORT)
    for d, src, out in ((d0, before, before_out), (d1, after, after_out)):
        g.link(m["judge"], 0, d, "judge")
        g.link(ref, "IMAGE", d, "reference")
        g.link(src, out, d, "images")
    g.link(m["judge"], 0, rep, "judge")
    g.link(ref, "IMAGE", rep, "reference")
    g.link(before, before_out, rep, "before")
    g.link(after, after_out, rep, "after")
    nodes = [d0, d1, rep]
    if save_prefix:
        save = g.add("SaveImage", C.SAVE_RESULT, filename_prefix=save_prefix)
        g.link(after, after_out, save, "images")
        nodes.insert(0, save)
    return nodes


MODELS_NOTE = (
    "Model files (README model table), in your ComfyUI models/ folders:\n"
    f"diffusion_models/{FLUX}\ntext_encoders/{CLIP_L}, {T5}\nvae/{AE}\n"
    f"controlnet/{UNION_PRO} (FLUX.1-dev-ControlNet-Union-Pro v1)\npulid/{PULID}\neva_clip/{EVA}\n"
    "insightface/models/antelopev2/ and buffalo_l/\nfacexlib/parsing_bisenet.pth\n"
    f"upscale_models/{ESRGAN} (or 4x-UltraSharp.pth)\nLLM/{FLORENCE}/\n"
    "Nothing is downloaded. Face judge: 'dlib (hog)' is the commercially usable choice."
)
