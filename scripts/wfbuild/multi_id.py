"""Two people in one generation (masked multi-ID): two Apply PuLID-Flux nodes in a chain, each with a MASK."""

from __future__ import annotations

from likeness import contract as C

from .graph import BROWN, CYAN, GREEN, GREY, INPUT_COLORS, PURPLE, YELLOW, Graph, Node
from .pieces import MODELS_NOTE, PARSING, flux_loaders, judge, pulid_loaders

WIDTH, HEIGHT = 1216, 832
HOW = (
    "LOAD: a reference photo of each person (the two green nodes), and the model files of 'Model files'.\n"
    "PRESS: Run. 'Save result' shows both people; 'Distance A/B' score each against its own reference."
)
DETAILS = (
    "Each Apply PuLID-Flux multiplies its identity residual per image token by its MASK, so person A's identity "
    "goes only where mask A is white and person B's only where mask B is; elsewhere each adds exactly nothing.\n\n"
    "The masks here are the left and right halves of the 1216x832 image; draw your own (Load Image (as Mask), or "
    "the mask editor) for other layouts, at the image's size or at least its aspect. Describe both people in the "
    "prompt, left and right. Join several photos of one person with Batch Images."
)
PROMPT = (
    "a photo of two friends side by side in a sunny park, the person on the left laughing, the person on the "
    "right smiling, natural light, sharp focus"
)


def _half_mask(g: Graph, side: str) -> tuple[list[Node], Node]:
    """A MASK that is 1 on the left or right half of the image (core SolidMask + MaskComposite)."""
    base = g.add("SolidMask", f"Empty mask ({side})", value=0.0, width=WIDTH, height=HEIGHT)
    half = g.add("SolidMask", f"Half ({side})", value=1.0, width=WIDTH // 2, height=HEIGHT)
    mask = g.add("MaskComposite", f"Mask: {side} half", x=0 if side == "left" else WIDTH // 2, y=0, operation="add")
    g.link(base, 0, mask, "destination")
    g.link(half, 0, mask, "source")
    return [base, half, mask], mask


def _score_halves(g: Graph, m: dict, people: list, dec: Node) -> list[Node]:
    """Each person scored on their own half of the image."""
    scores = []
    for tag, side, ref, _, _ in people:
        half = g.add("ImageCrop", f"{side.capitalize()} half", width=WIDTH // 2, height=HEIGHT,
                     x=0 if side == "left" else WIDTH // 2, y=0)
        d = g.add("LikenessFaceEmbedDistance", f"Distance {tag}", metric="cosine", threshold=0.0, face_order="largest",
                  face_index=0, reference_without_face="error")
        g.link(dec, 0, half, "image")
        g.link(m["judge"], 0, d, "judge")
        g.link(ref, "IMAGE", d, "reference")
        g.link(half, 0, d, "images")
        scores += [half, d]
    return scores


def _people(g: Graph, m: dict) -> tuple[list, Node]:
    people, model = [], m["unet"]
    for side, title, file, tag in (("left", C.REFERENCE, "reference.png", "A"),
                                   ("right", C.REFERENCE_2, "reference_2.png", "B")):
        ref = g.add("LoadImage", title, colors=INPUT_COLORS, image=file)
        mask_nodes, mask = _half_mask(g, side)
        apply = g.add("LikenessApplyPulidFlux", f"{C.APPLY_PULID} (person {tag})", weight=0.9, start_at=0.0,
                      end_at=1.0, fusion="mean", face_order="largest", face_index=0, parsing_model=PARSING)
        for src, name in ((model, "model"), (m["pulid"], "pulid"), (m["eva"], "eva_clip"), (m["fa"], "face_analysis"),
                          (ref, "image"), (mask, "mask")):
            g.link(src, 0, apply, name)
        model = apply
        people.append((tag, side, ref, mask_nodes, apply))
    return people, model


def _generate(g: Graph, m: dict, model: Node) -> list[Node]:
    prompt = g.add("CLIPTextEncode", C.PROMPT, text=PROMPT)
    guid = g.add("FluxGuidance", "Flux guidance", guidance=3.5)
    neg = g.add("ConditioningZeroOut", "Negative (unused at cfg 1)")
    latent = g.add("EmptySD3LatentImage", C.LATENT_SIZE, width=WIDTH, height=HEIGHT, batch_size=1)
    ks = g.add("KSampler", C.SAMPLER, seed=42, steps=25, cfg=1.0, sampler_name="euler", scheduler="simple", denoise=1.0)
    dec = g.add("VAEDecode", "Decode")
    g.link(m["clip"], 0, prompt, "clip")
    g.link(prompt, 0, guid, "conditioning")
    g.link(prompt, 0, neg, "conditioning")
    for src, name in ((model, "model"), (guid, "positive"), (neg, "negative"), (latent, "latent_image")):
        g.link(src, 0, ks, name)
    g.link(ks, 0, dec, "samples")
    g.link(m["vae"], 0, dec, "vae")
    return [prompt, guid, neg, latent, ks, dec]


def multi_id(info: dict) -> Graph:
    g = Graph(C.WORKFLOW_MULTI_ID, info)
    m = flux_loaders(g, control=False) | pulid_loaders(g)
    m["judge"] = judge(g)
    notes = [g.note(HOW, title="How to use", width=420, height=120),
             g.note(DETAILS, title="Details", width=420, height=260),
             g.note(MODELS_NOTE, title="Model files", width=420, height=250)]
    people, model = _people(g, m)
    gen = _generate(g, m, model)
    save = g.add("SaveImage", C.SAVE_RESULT, filename_prefix="likeness/multi_id")
    g.link(gen[-1], 0, save, "images")
    scores = _score_halves(g, m, people, gen[-1])
    (ta, _, ref_a, masks_a, apply_a), (tb, _, ref_b, masks_b, apply_b) = people
    g.layout(
        [[("", GREY, [notes])],
         [("Models", BROWN, [[m["unet"], m["clip"], m["vae"]], [m["pulid"], m["eva"], m["fa"], m["judge"]]])],
         [(f"Person {ta}: reference + left mask -> PuLID-Flux", GREEN, [[ref_a], masks_a, [apply_a]])],
         [(f"Person {tb}: reference + right mask -> PuLID-Flux", CYAN, [[ref_b], masks_b, [apply_b]])]],
        [[("Prompt and generate 1216x832", PURPLE, [gen[:3], gen[3:]])],
         [("Save and score each person", YELLOW, [[save], scores[:2], scores[2:]])]],
    )
    return g
