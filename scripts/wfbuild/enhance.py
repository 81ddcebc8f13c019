"""The two enhancement workflows: the whole image (seed 000) and face crops pasted back (two faces)."""

from __future__ import annotations

from likeness import contract as C

from .graph import BLUE, BROWN, CYAN, GREEN, GREY, INPUT_COLORS, PURPLE, YELLOW, Graph
from .pieces import (
    ESRGAN,
    FLORENCE,
    MODELS_NOTE,
    fit_to_target,
    flux_loaders,
    judge,
    paste_back,
    prompt_chain,
    pulid_loaders,
    reference_chain,
    sample_chain,
    scoring,
)

WHOLE_HOW = (
    "LOAD: your reference photo and the target image (the two green nodes), and the model files of 'Model files'.\n"
    "PRESS: Run. 'Save result' shows the enhanced image, 'Prompt used' the caption, 'Enhancement report' the scores."
)
WHOLE_DETAILS = (
    "The target is regenerated with Flux.1-dev img2img (denoise 0.75) guided by the Union-Pro tile ControlNet "
    "(keeps the composition) while PuLID-Flux injects the reference identity (weight 0.6-0.8; higher smooths "
    "expressions).\n\nThe prompt is Florence-2's caption of the target, shown in 'Prompt used': copy it into "
    "'Caption' > manual_prompt and edit it to skip Florence-2 (the captioner node may then be bypassed).\n\n"
    "'Distance before/after' and 'Enhancement report' score the identity (lower distance, positive delta = closer "
    "to the reference)."
)
CROP_HOW = (
    "LOAD: the target image and one reference photo per face (green nodes), and the model files of 'Model files'.\n"
    "PRESS: Run. 'Save result' shows the image with both faces enhanced; 'Prompt used' shows each face's caption."
)
CROP_DETAILS = (
    "Each target face is cropped (faces ordered left to right), regenerated at an automatic working size (the "
    "face box x 1.6, 768-1024; set 'Crop target' size_mode to fixed to use working_size) with PuLID-Flux + Union-Pro tile, and pasted back with a feathered mask; pixels outside the mask stay "
    "bit-identical. Face 1 (the leftmost) uses 'Reference image'; face 2 uses 'Reference image 2'. To batch "
    "several photos of one person, join them with Batch Images before the reference crop.\n\n"
    "ONE FACE ONLY: select every node of the group 'Face 2' (click its title) and press Ctrl+B to bypass it. "
    "'Paste face back (face 2)' then passes the image from face 1 through, and the scores use it.\n"
    "MORE FACES: copy the face-2 group, set 'Crop target' face_index to 2, 3, ... and chain its paste after the "
    "last one."
)


def enhance_models(g: Graph) -> dict:
    """Every loader of an enhancement; they stay outside a blueprint."""
    m = flux_loaders(g) | pulid_loaders(g)
    m["esrgan"] = g.add("UpscaleModelLoader", "ESRGAN upscaler", model_name=ESRGAN)
    m["florence"] = g.add("LikenessFlorence2Loader", "Florence-2 captioner", model=FLORENCE, precision="auto")
    m["judge"] = judge(g)
    g.outside.update(n.id for n in m.values())
    return m


def notes(g: Graph, how: str, details: str, details_h: int) -> list:
    nodes = [g.note(how, title="How to use", width=420, height=120),
             g.note(details, title="Details", width=420, height=details_h),
             g.note(MODELS_NOTE, title="Model files", width=420, height=250)]
    g.outside.update(n.id for n in nodes)
    return nodes


def models_group(m: dict, title: str) -> tuple:
    return (title, BROWN, [[m["unet"], m["clip"], m["vae"], m["cn"], m["florence"]],
                           [m["pulid"], m["eva"], m["fa"], m["esrgan"], m["judge"]]])


def _promote_common(g: Graph, pulids: list, samplers: list, controls: list, captions: list) -> None:
    g.promote += [
        ("identity weight", [(p, "weight") for p in pulids]),
        ("identity start", [(p, "start_at") for p in pulids]),
        ("denoise", [(k, "denoise") for k in samplers]),
        ("steps", [(k, "steps") for k in samplers]),
        ("seed", [(k, "seed") for k in samplers]),
        ("controlnet strength", [(c, "strength") for c in controls]),
        ("manual prompt", [(c, "manual_prompt") for c in captions]),
    ]


# --------------------------------------------------------------------------------------------------------
# 1. Enhance, whole image (seed 000)
# --------------------------------------------------------------------------------------------------------
def enhance_whole(info: dict) -> Graph:
    g = Graph(C.WORKFLOW_ENHANCE_WHOLE, info)
    m = enhance_models(g)
    how = notes(g, WHOLE_HOW, WHOLE_DETAILS, 260)
    ref, ref_nodes, pulid = reference_chain(g, m)
    target = g.add("LoadImage", C.TARGET, colors=INPUT_COLORS, image="target.png")
    g.outside.update({ref.id, target.id})
    p_nodes, pos, neg = prompt_chain(g, m, target, "IMAGE")
    mode = g.add("LikenessFluxUnionMode", "Union mode: tile", mode="tile")
    g.link(m["cn"], 0, mode, "control_net")
    s_nodes, dec = sample_chain(g, m, pulid, pos, neg, mode, target, "IMAGE")
    fit_nodes, fit = fit_to_target(g, target, dec)
    score = scoring(g, m, ref, target, "IMAGE", fit, "IMAGE", "likeness/enhanced")
    _promote_common(g, [pulid], [s_nodes[2]], [s_nodes[0]], [p_nodes[0]])
    g.promote.append(("reference face index", [(ref_nodes[1], "face_index")]))
    g.layout(
        [[("", GREY, [how])], [models_group(m, "1. Models")],
         [("2. Reference face -> PuLID-Flux (weight 0.75, start 0.1)", GREEN, [ref_nodes[:2], ref_nodes[2:]])]],
        [[("3. Target and prompt", BLUE, [[target], p_nodes[:2], p_nodes[2:]])],
         [("4. Img2img: Union-Pro tile + PuLID, 28 steps, denoise 0.75", PURPLE,
           [[mode, s_nodes[0]], s_nodes[1:], fit_nodes])],
         [("5. Score and save", YELLOW, [score[1:], score[:1]])]],
    )
    return g


# --------------------------------------------------------------------------------------------------------
# 2. Enhance, face crop (two faces, each with its own references)
# --------------------------------------------------------------------------------------------------------
def _face_branch(g: Graph, m: dict, k: int, target, mode, image_in, image_out):
    """Face k: its reference -> PuLID, crop the k-th face from the left, caption, tile img2img, paste back."""
    suffix = f" (face {k})"
    ref_title, ref_file = (C.REFERENCE, "reference.png") if k == 1 else (C.REFERENCE_2, "reference_2.png")
    ref, ref_nodes, pulid = reference_chain(g, m, suffix, ref_title, ref_file)
    g.outside.add(ref.id)
    crop = g.add("LikenessAutoCropFace", f"{C.CROP_TARGET}{suffix}", face_order="left-to-right", face_index=k - 1,
                 context=1.6, aspect=1.0, working_size=1024, align_eyes=False, pad_mode="edge", no_face="error",
                 feather=32, size_mode="auto", auto_min=768, auto_max=1024)
    g.link(m["judge"], 0, crop, "detector")
    g.link(target, "IMAGE", crop, "image")
    p_nodes, pos, neg = prompt_chain(g, m, crop, "crops", suffix)
    s_nodes, dec = sample_chain(g, m, pulid, pos, neg, mode, crop, "crops", suffix)
    paste = paste_back(g, image_in, image_out, dec, crop, suffix)
    nodes = {"ref": ref_nodes, "crop": crop, "prompt": p_nodes, "sample": s_nodes, "paste": paste, "pulid": pulid}
    color = GREEN if k == 1 else CYAN
    group = (f"Face {k}: reference -> PuLID, crop -> caption -> tile img2img -> paste back", color,
             [ref_nodes, [crop] + p_nodes[:2], p_nodes[2:] + s_nodes[:1], s_nodes[1:] + [paste]])
    return nodes, group


def enhance_crop(info: dict) -> Graph:
    g = Graph(C.WORKFLOW_ENHANCE_CROP, info)
    m = enhance_models(g)
    how = notes(g, CROP_HOW, CROP_DETAILS, 330)
    target = g.add("LoadImage", C.TARGET, colors=INPUT_COLORS, image="target.png")
    g.outside.add(target.id)
    mode = g.add("LikenessFluxUnionMode", "Union mode: tile", mode="tile")
    g.link(m["cn"], 0, mode, "control_net")
    faces, groups = [], []
    image_in, image_out = target, "IMAGE"
    for k in (1, 2):
        nodes, group = _face_branch(g, m, k, target, mode, image_in, image_out)
        faces.append(nodes)
        groups.append(group)
        image_in, image_out = nodes["paste"], "image"
    first_ref = g.nodes[faces[0]["ref"][0].id - 1]
    score = scoring(g, m, first_ref, target, "IMAGE", image_in, image_out, "likeness/enhanced_faces")
    _promote_common(g, [f["pulid"] for f in faces], [f["sample"][2] for f in faces], [f["sample"][0] for f in faces],
                    [f["prompt"][0] for f in faces])
    g.promote += [
        ("face order", [(f["crop"], "face_order") for f in faces]),
        ("first face index", [(faces[0]["crop"], "face_index")]),
        ("second face index", [(faces[1]["crop"], "face_index")]),
        ("working size", [(f["crop"], "working_size") for f in faces]),
    ]
    g.layout(
        [[("", GREY, [how])], [models_group(m, "Models")], [("Target", BLUE, [[target, mode]])]],
        [[groups[0]], [groups[1]], [("Score and save (references of face 1)", YELLOW, [score[1:] + score[:1]])]],
    )
    return g
