"""Write the UI workflows in workflows/ and their API copies in workflows/api/ from one declaration per graph.

Each graph is declared once below (nodes by title, links by socket name, groups in reading order); input
and output sockets and the order of widget values come from a live server's /object_info, so the files
match what the ComfyUI editor saves. The API copies are ``client.workflow_format.ui_to_api`` of the UI
files against the same /object_info (tests/server/test_workflows.py repeats that conversion).

    python scripts/build_workflows.py              # starts an embedded headless ComfyUI for /object_info
    python scripts/build_workflows.py --url http://127.0.0.1:8188
    python scripts/build_workflows.py --object-info object_info.json

Then ``python scripts/render_workflow_thumbnails.py`` redraws the thumbnails.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
import importroot  # noqa: E402  (this checkout importable as ``likeness``)

importroot.ensure()

from likeness import contract as C  # noqa: E402  (titles and file names)
from likeness.client.workflow_format import UPLOAD_FLAGS, input_specs, ui_to_api, widget_slots  # noqa: E402

log = logging.getLogger("build_workflows")
WORKFLOWS = ROOT / "workflows"

# LiteGraph metrics (px): title bar above pos, one row per socket, one per widget.
TITLE_H, SLOT_H, WIDGET_H, MULTILINE_H, IMAGE_PREVIEW_H = 30, 20, 24, 100, 260
GAP_Y, GAP_X, GROUP_PAD, GROUP_HEAD = 36, 70, 14, 46
BLUE, GREEN, BROWN, PURPLE, YELLOW, CYAN, GREY = "#3f789e", "#8A8", "#b06634", "#a1309b", "#b58b2a", "#88A", "#444"
INPUT_COLORS = {"color": "#232", "bgcolor": "#353"}  # images the user sets: green
NOTE_COLORS = {"color": "#432", "bgcolor": "#653"}
OUR_PREFIX = "Likeness"

# Standard file names (README model table): written once, in contract.py.
FLUX, T5, CLIP_L, AE = C.FLUX_DEV, C.T5XXL, C.CLIP_L, C.FLUX_VAE
UNION_PRO, PULID, EVA, ESRGAN, FLORENCE = C.UNION_PRO, C.PULID_FLUX, C.EVA_CLIP, C.ESRGAN, C.FLORENCE2


@dataclass
class Node:
    id: int
    type: str
    title: str | None
    widgets: dict[str, Any]
    mode: int = 0
    width: int = 320
    colors: dict[str, str] = field(default_factory=dict)
    note: str | None = None
    pos: tuple[float, float] = (0.0, 0.0)
    inputs: list[dict] = field(default_factory=list)
    outputs: list[dict] = field(default_factory=list)
    widgets_values: list = field(default_factory=list)
    height: int = 0


class Graph:
    """Builds one UI workflow: nodes, links by socket name, then a column layout with groups."""

    def __init__(self, name: str, object_info: dict):
        self.name = name
        self.info = object_info
        self.nodes: list[Node] = []
        self.links: list[list] = []
        self.groups: list[dict] = []

    # -- nodes and links ----------------------------------------------------------------------------
    def add(self, type_: str, title: str | None = None, *, node_mode: int = 0, box_w: int = 320, colors=None, **widgets) -> Node:
        """A node of ``type_``; keyword widgets by input name (node_mode/box_w are the editor's mode and box width)."""
        info = self.info.get(type_)
        if info is None:
            raise SystemExit(f"node type {type_} is not in /object_info: start the server with this pack loaded")
        node = Node(len(self.nodes) + 1, type_, title, widgets, node_mode, box_w, dict(colors or {}))
        specs = input_specs(info)
        names = {s.name for s in specs}
        unknown = set(widgets) - names
        if unknown:
            raise SystemExit(f"{type_} has no inputs {sorted(unknown)}; it has {sorted(names)}")
        node.inputs = [{"name": s.name, "type": s.type, "link": None} for s in specs if not s.is_widget]
        node.outputs = [
            {"name": n, "type": t, "links": [], "slot_index": i}
            for i, (t, n) in enumerate(zip(info["output"], info.get("output_name") or info["output"]))
        ]
        for spec in specs:
            if not spec.is_widget:
                continue
            if spec.name in widgets:
                node.widgets_values.append(widgets[spec.name])
            elif "default" in spec.options:
                node.widgets_values.append(spec.options["default"])
            elif spec.choices:
                node.widgets_values.append(spec.choices[0])
            else:
                raise SystemExit(f"{type_}.{spec.name} has no default: give a value")
            # frontend-only values: the control_after_generate mode, then the upload button's "image"
            extra = ["fixed"] * spec.extra_values
            if spec.type == "COMBO" and any(spec.options.get(f) for f in UPLOAD_FLAGS):
                extra[-1] = "image"
            node.widgets_values.extend(extra)
        n_widgets = len(widget_slots(info))
        multiline = sum(1 for s in specs if s.is_widget and s.options.get("multiline"))
        rows = max(len(node.inputs), len(node.outputs))
        node.height = rows * SLOT_H + 8 + n_widgets * WIDGET_H + multiline * MULTILINE_H
        if type_ == "LoadImage":
            node.height += IMAGE_PREVIEW_H
        self.nodes.append(node)
        return node

    def note(self, text: str, title: str = "Note", width: int = 320, height: int = 160) -> Node:
        node = Node(len(self.nodes) + 1, "Note", title, {}, 0, width, dict(NOTE_COLORS), note=text)
        node.widgets_values = [text]
        node.height = height
        self.nodes.append(node)
        return node

    def link(self, src: Node, output: str | int, dst: Node, input_name: str) -> None:
        if isinstance(output, str):
            idx = [o["name"] for o in src.outputs].index(output)
        else:
            idx = output
        out = src.outputs[idx]
        slot = next((i for i, s in enumerate(dst.inputs) if s["name"] == input_name), None)
        if slot is None:  # a widget converted to an input
            spec = next((s for s in input_specs(self.info[dst.type]) if s.name == input_name), None)
            if spec is None:
                raise SystemExit(f"{dst.type} has no input {input_name}")
            dst.inputs.append({"name": input_name, "type": spec.type, "widget": {"name": input_name}, "link": None})
            slot = len(dst.inputs) - 1
        if dst.inputs[slot]["link"] is not None:
            raise SystemExit(f"{dst.type}.{input_name} is already linked")
        link_id = len(self.links) + 1
        dst.inputs[slot]["link"] = link_id
        out["links"].append(link_id)
        self.links.append([link_id, src.id, idx, dst.id, slot, out["type"]])

    # -- layout ---------------------------------------------------------------------------------------
    def layout(self, columns: list[list[tuple[str, str, list[list[Node]]]]], x0: float = 0.0, y0: float = 0.0) -> None:
        """columns: left to right; each a list of groups (title, color, stacks); a stack is nodes top-down."""
        x = x0
        for column in columns:
            y = y0
            col_w = 0.0
            for title, color, stacks in column:
                gx = x + GROUP_PAD
                top = y + GROUP_HEAD + TITLE_H
                bottom = top
                for stack in stacks:
                    ny = top
                    w = max(n.width for n in stack)
                    for n in stack:
                        n.pos = (gx, ny)
                        ny += n.height + TITLE_H + GAP_Y
                    bottom = max(bottom, ny - GAP_Y - TITLE_H)
                    gx += w + GAP_X
                width = gx - GAP_X + GROUP_PAD - x
                height = bottom - y + GROUP_PAD
                if title:
                    self.groups.append({"title": title, "bounding": [x, y, width, height], "color": color, "font_size": 24, "flags": {}})
                col_w = max(col_w, width)
                y += height + 50
            x += col_w + 90

    # -- output -----------------------------------------------------------------------------------------
    def _order(self) -> dict[int, int]:
        deps = {n.id: set() for n in self.nodes}
        for _, src, _, dst, _, _ in self.links:
            deps[dst].add(src)
        order, done = {}, set()
        while len(done) < len(deps):
            ready = sorted(i for i, d in deps.items() if i not in done and d <= done)
            for i in ready:
                order[i] = len(order)
            done.update(ready)
        return order

    def to_ui(self) -> dict:
        order = self._order()
        nodes = []
        for n in self.nodes:
            d: dict[str, Any] = {
                "id": n.id,
                "type": n.type,
                "pos": [float(n.pos[0]), float(n.pos[1])],
                "size": [float(n.width), float(n.height)],
                "flags": {},
                "order": order[n.id],
                "mode": n.mode,
                "inputs": n.inputs,
                "outputs": n.outputs,
            }
            if n.title:
                d["title"] = n.title
            props = {} if n.type == "Note" else {"Node name for S&R": n.type}
            if n.type.startswith(OUR_PREFIX):
                props["cnr_id"] = "likeness"
            elif n.type != "Note":
                props["cnr_id"] = "comfy-core"
            d["properties"] = props
            d["widgets_values"] = n.widgets_values
            d.update(n.colors)
            nodes.append(d)
        return {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"likeness/workflows/{self.name}")),  # the editor wants a UUID
            "revision": 0,
            "last_node_id": len(self.nodes),
            "last_link_id": len(self.links),
            "nodes": nodes,
            "links": self.links,
            "groups": self.groups,
            "config": {},
            "extra": {"ds": {"scale": 0.6, "offset": [40, 40]}, "likeness": {"workflow": self.name}},
            "version": 0.4,
        }


# --------------------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------------------
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
        "fa": g.add("LikenessFaceAnalysisLoader", "Face analysis (antelopev2)", model="insightface: antelopev2", provider="CPU", det_size=640),
    }


def judge(g: Graph) -> Node:
    return g.add("LikenessFaceJudgeLoader", C.FACE_JUDGE, model="insightface: buffalo_l", provider="CPU", det_size=640)


def reference_chain(g: Graph, m: dict, suffix: str = "", ref_title: str = C.REFERENCE, ref_file: str = "reference.png"):
    """Reference photo(s) -> auto-crop -> upscale if small -> Apply PuLID-Flux (seed 000: weight 0.75, start 0.1)."""
    ref = g.add("LoadImage", ref_title, colors=INPUT_COLORS, image=ref_file)
    crop = g.add("LikenessAutoCropFace", f"Crop reference face{suffix}", face_order="largest", face_index=0, context=1.6,
                 aspect=1.0, working_size=512, align_eyes=False, pad_mode="edge", no_face="error", feather=24)
    up = g.add("LikenessUpscaleIfSmall", f"Upscale reference if small{suffix}")
    apply = g.add("LikenessApplyPulidFlux", f"{C.APPLY_PULID}{suffix}", weight=0.75, start_at=0.1, end_at=1.0,
                  fusion="mean", face_order="largest", face_index=0, parsing_model=C.PARSING)
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
    g.link(m["clip"], 0, enc, "clip")
    g.link(enc, 0, guid, "conditioning")
    g.link(enc, 0, neg, "conditioning")
    return [cap, enc, guid, neg], guid, neg


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
    rep = g.add("LikenessEnhancementReport", "Enhancement report")
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


# --------------------------------------------------------------------------------------------------------
# 1. Enhance, whole image (seed 000)
# --------------------------------------------------------------------------------------------------------
def enhance_whole(info: dict) -> Graph:
    g = Graph("likeness_enhance_whole", info)
    m = flux_loaders(g) | pulid_loaders(g)
    m["esrgan"] = g.add("UpscaleModelLoader", "ESRGAN upscaler", model_name=ESRGAN)
    m["florence"] = g.add("LikenessFlorence2Loader", "Florence-2 captioner", model=FLORENCE, precision="auto")
    m["judge"] = judge(g)
    how = g.note(
        "Enhance a whole image: the target is regenerated with Flux.1-dev img2img (denoise 0.75) guided by the "
        "Union-Pro tile ControlNet (keeps the composition) while PuLID-Flux injects the reference identity "
        "(weight 0.6-0.8; higher smooths expressions).\n\n"
        "1. Load the reference photo(s) and the target image (green nodes).\n"
        "2. The prompt is Florence-2's caption of the target; type a prompt into 'Caption' > manual_prompt to skip "
        "Florence-2 (then the captioner node may be bypassed).\n"
        "3. Queue. 'Distance before/after' and 'Enhancement report' score the identity (lower distance, positive "
        "delta = closer to the reference).",
        title="How to use", width=340, height=330,
    )
    models_note = g.note(MODELS_NOTE, title="Model files", width=340, height=300)
    ref, ref_nodes, pulid = reference_chain(g, m)
    target = g.add("LoadImage", C.TARGET, colors=INPUT_COLORS, image="target.png")
    p_nodes, pos, neg = prompt_chain(g, m, target, "IMAGE")
    mode = g.add("LikenessFluxUnionMode", "Union mode: tile", mode="tile")
    g.link(m["cn"], 0, mode, "control_net")
    s_nodes, dec = sample_chain(g, m, pulid, pos, neg, mode, target, "IMAGE")
    # VAE Encode crops to a multiple of 8 px: scale the result back so before/after line up for the report
    size = g.add("GetImageSize", "Target size")
    fit = g.add("ImageScale", "Match target size", upscale_method="lanczos", crop="disabled")
    g.link(target, "IMAGE", size, "image")
    g.link(dec, 0, fit, "image")
    g.link(size, "width", fit, "width")
    g.link(size, "height", fit, "height")
    score = scoring(g, m, ref, target, "IMAGE", fit, "IMAGE", "likeness/enhanced")
    g.layout([
        [("", GREY, [[how, models_note]])],
        [("1. Models", BROWN, [[m["unet"], m["clip"], m["vae"], m["cn"], m["florence"]],
                               [m["pulid"], m["eva"], m["fa"], m["esrgan"], m["judge"]]])],
        [("2. Reference face -> PuLID-Flux (weight 0.75, start 0.1)", GREEN, [ref_nodes[:2], ref_nodes[2:]])],
        [("3. Target and prompt", BLUE, [[target], p_nodes])],
        [("4. Img2img: Union-Pro tile + PuLID, 28 steps, denoise 0.75", PURPLE, [[mode, s_nodes[0]], s_nodes[1:], [size, fit]])],
        [("5. Score and save", YELLOW, [score[1:3], score[3:], score[:1]])],
    ])
    return g


# --------------------------------------------------------------------------------------------------------
# 2. Enhance, face crop (two faces, each with its own references)
# --------------------------------------------------------------------------------------------------------
def enhance_crop(info: dict) -> Graph:
    g = Graph("likeness_enhance_crop", info)
    m = flux_loaders(g) | pulid_loaders(g)
    m["esrgan"] = g.add("UpscaleModelLoader", "ESRGAN upscaler", model_name=ESRGAN)
    m["florence"] = g.add("LikenessFlorence2Loader", "Florence-2 captioner", model=FLORENCE, precision="auto")
    m["judge"] = judge(g)
    how = g.note(
        "Enhance face crops: each target face is cropped (faces ordered left to right), regenerated at an automatic "
        "working size (the face box x 1.6, 768-1024; set 'Crop target' size_mode to fixed for working_size) with PuLID-Flux + Union-Pro tile, and pasted back with a feathered mask; pixels outside the "
        "mask stay bit-identical.\n\n"
        "Face 1 (the leftmost face) uses 'Reference image'; face 2 uses 'Reference image 2'. To batch several "
        "photos of one person, join them with Batch Images before the reference crop.\n\n"
        "ONE FACE ONLY: select every node of the group 'Face 2' (click its title) and press Ctrl+B to bypass it. "
        "'Paste face back (face 2)' then passes the image from face 1 through, and the scores use it.\n"
        "MORE FACES: copy the face-2 group, set 'Crop target' face_index to 2, 3, ... and chain its paste after "
        "the last one.",
        title="How to use", width=340, height=470,
    )
    models_note = g.note(MODELS_NOTE, title="Model files", width=340, height=300)
    target = g.add("LoadImage", C.TARGET, colors=INPUT_COLORS, image="target.png")
    mode = g.add("LikenessFluxUnionMode", "Union mode: tile", mode="tile")
    g.link(m["cn"], 0, mode, "control_net")
    branches = []
    image_in, image_out = target, "IMAGE"
    for k in (1, 2):
        suffix = f" (face {k})"
        ref_title, ref_file = (C.REFERENCE, "reference.png") if k == 1 else (C.REFERENCE_2, "reference_2.png")
        _, ref_nodes, pulid = reference_chain(g, m, suffix, ref_title, ref_file)
        crop = g.add("LikenessAutoCropFace", f"{C.CROP_TARGET}{suffix}", face_order="left-to-right", face_index=k - 1,
                     context=1.6, aspect=1.0, working_size=1024, align_eyes=False, pad_mode="edge", no_face="error", feather=32,
                     size_mode="auto", auto_min=768, auto_max=1024)
        g.link(m["judge"], 0, crop, "detector")
        g.link(target, "IMAGE", crop, "image")
        p_nodes, pos, neg = prompt_chain(g, m, crop, "crops", suffix)
        s_nodes, dec = sample_chain(g, m, pulid, pos, neg, mode, crop, "crops", suffix)
        paste = g.add("LikenessPasteFaceBack", f"Paste face back{suffix}", feather=32, color_match="none")
        g.link(image_in, image_out, paste, "image")
        g.link(dec, 0, paste, "crops")
        g.link(crop, "crop_data", paste, "crop_data")
        image_in, image_out = paste, "image"
        branches.append((ref_nodes, [crop] + p_nodes, s_nodes, paste))
    first_ref = branches[0][0][0]
    score = scoring(g, m, first_ref, target, "IMAGE", image_in, image_out, "likeness/enhanced_faces")

    def branch_group(k, b, color):
        ref_nodes, p_nodes, s_nodes, paste = b
        return (f"Face {k}: reference -> PuLID, crop -> caption -> tile img2img -> paste back", color,
                [ref_nodes[:2], ref_nodes[2:], p_nodes[:2], p_nodes[2:], s_nodes[:2], s_nodes[2:] + [paste]])

    g.layout([
        [("", GREY, [[how, models_note]])],
        [("Models", BROWN, [[m["unet"], m["clip"], m["vae"], m["cn"], m["florence"]],
                            [m["pulid"], m["eva"], m["fa"], m["esrgan"], m["judge"]]])],
        [("Target", BLUE, [[target, mode]])],
        [branch_group(1, branches[0], GREEN), branch_group(2, branches[1], CYAN)],
        [("Score and save (references of face 1)", YELLOW, [score[1:3], score[3:], score[:1]])],
    ])
    return g


# --------------------------------------------------------------------------------------------------------
# 3. Consistent avatar (seed 003)
# --------------------------------------------------------------------------------------------------------
def avatar(info: dict) -> Graph:
    g = Graph("likeness_avatar", info)
    m = flux_loaders(g) | pulid_loaders(g)
    m["judge"] = judge(g)
    how = g.note(
        "Consistent avatar (text-to-image, 896x1216): Flux.1-dev + an optional identity LoRA + PuLID-Flux "
        "(weight 0.4, start 0.15, end 0.9, so the LoRA builds the composition first) + Union-Pro pose control "
        "(strength 0.85, end 0.8) from an OpenPose skeleton image.\n\n"
        "LoRA: the 'LoRA' node ships bypassed (purple). Select it and press Ctrl+B to turn it on, then pick your "
        "LoRA file and put its trigger word into the prompt.\n"
        "No pose: bypass 'Apply Union ControlNet' (Ctrl+B).\n"
        "'Identity distance' scores every image against the reference (lower = closer).",
        title="How to use", width=340, height=360,
    )
    models_note = g.note(MODELS_NOTE, title="Model files", width=340, height=300)
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
    prompt = g.add("CLIPTextEncode", C.PROMPT, text=(
        "a full-body photo of the person standing on a forest trail, left arm raised high, hiking clothes, "
        "natural light, sharp focus"))
    g.link(m["clip"], 0, prompt, "clip")
    guid = g.add("FluxGuidance", "Flux guidance", guidance=3.5)
    neg = g.add("ConditioningZeroOut", "Negative (unused at cfg 1)")
    g.link(prompt, 0, guid, "conditioning")
    g.link(prompt, 0, neg, "conditioning")
    pose = g.add("LoadImage", C.POSE, colors=INPUT_COLORS, image="pose.png")
    mode = g.add("LikenessFluxUnionMode", "Union mode: pose", mode="pose")
    g.link(m["cn"], 0, mode, "control_net")
    apply = g.add("ControlNetApplyAdvanced", C.APPLY_CONTROL, strength=0.85, start_percent=0.0, end_percent=0.8)
    g.link(guid, 0, apply, "positive")
    g.link(neg, 0, apply, "negative")
    g.link(mode, 0, apply, "control_net")
    g.link(pose, "IMAGE", apply, "image")
    g.link(m["vae"], 0, apply, "vae")
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
    g.layout([
        [("", GREY, [[how, models_note]])],
        [("Models", BROWN, [[m["unet"], m["clip"], m["vae"], m["cn"]], [m["pulid"], m["eva"], m["fa"], m["judge"]]])],
        [("Identity: optional LoRA + PuLID-Flux (0.4, 0.15-0.9)", GREEN, [[lora, ref], [pulid]])],
        [("Prompt", BLUE, [[prompt, guid, neg]]), ("Pose: Union-Pro 'pose'", CYAN, [[pose], [mode, apply]])],
        [("Generate 896x1216", PURPLE, [[latent, ks, dec]])],
        [("Save and score", YELLOW, [[save], [dist]])],
    ])
    return g


# --------------------------------------------------------------------------------------------------------
# 4. Score only
# --------------------------------------------------------------------------------------------------------
def score_only(info: dict) -> Graph:
    g = Graph("likeness_score", info)
    m = {"judge": judge(g)}
    how = g.note(
        "Score existing images: Face Embed Distance of the target (before) and the enhanced image (after) to the "
        "reference, and the Enhancement Report (cosine before/after, delta ID, SSIM/PSNR outside the face). "
        "Before and after must be the same size. Put several reference photos in a batch (Batch Images) to average "
        "them.\n\nJudge: insightface buffalo_l (non-commercial) or 'dlib (hog)' (commercially usable).",
        title="How to use", width=340, height=260,
    )
    ref = g.add("LoadImage", C.REFERENCE, colors=INPUT_COLORS, image="reference.png")
    before = g.add("LoadImage", C.TARGET, colors=INPUT_COLORS, image="target.png")
    after = g.add("LoadImage", C.ENHANCED, colors=INPUT_COLORS, image="enhanced.png")
    score = scoring(g, m, ref, before, "IMAGE", after, "IMAGE", None)
    g.layout([
        [("", GREY, [[how]])],
        [("Judge", BROWN, [[m["judge"]]])],
        [("Images", GREEN, [[ref], [before], [after]])],
        [("Scores", YELLOW, [score[:2], score[2:]])],
    ])
    return g


# --------------------------------------------------------------------------------------------------------
# 5. Two people in one generation: masked multi-ID (issue 16)
# --------------------------------------------------------------------------------------------------------
def _half_mask(g: Graph, side: str, width: int, height: int) -> tuple[list[Node], Node]:
    """A MASK that is 1 on the left or right half of a width x height image (core SolidMask + MaskComposite)."""
    base = g.add("SolidMask", f"Empty mask ({side})", value=0.0, width=width, height=height)
    half = g.add("SolidMask", f"Half ({side})", value=1.0, width=width // 2, height=height)
    mask = g.add("MaskComposite", f"Mask: {side} half", x=0 if side == "left" else width // 2, y=0, operation="add")
    g.link(base, 0, mask, "destination")
    g.link(half, 0, mask, "source")
    return [base, half, mask], mask


def _score_halves(g: Graph, m: dict, people: list, dec: Node, width: int, height: int) -> list[Node]:
    """Each person scored on their own half of the image (no face there: NaN, not an error)."""
    scores = []
    for tag, side, ref, _, _ in people:
        half = g.add("ImageCrop", f"{side.capitalize()} half", width=width // 2, height=height, x=0 if side == "left" else width // 2, y=0)
        d = g.add("LikenessFaceEmbedDistance", f"Distance {tag}", metric="cosine", threshold=0.0, face_order="largest",
                  face_index=0, reference_without_face="error")
        g.link(dec, 0, half, "image")
        g.link(m["judge"], 0, d, "judge")
        g.link(ref, "IMAGE", d, "reference")
        g.link(half, 0, d, "images")
        scores += [half, d]
    return scores


def multi_id(info: dict) -> Graph:
    g = Graph(C.WORKFLOW_MULTI_ID, info)
    m = flux_loaders(g, control=False) | pulid_loaders(g)
    m["judge"] = judge(g)
    width, height = 1216, 832
    how = g.note(
        "Two people in one image (masked multi-ID): two Apply PuLID-Flux nodes in a chain, each with its own "
        "reference photo(s) and a MASK. The identity residual is multiplied per image token by the mask, so person "
        "A's identity goes only where mask A is white and person B's only where mask B is; elsewhere each adds "
        "exactly nothing.\n\n"
        "1. Load a reference of each person (green; join several photos of one person with Batch Images).\n"
        "2. The masks here are the left and right halves of the 1216x832 image; draw your own (Load Image (as "
        "Mask), or a mask editor) for other layouts: keep them the size or at least the aspect of the image.\n"
        "3. Describe both people in the prompt, left and right. 'Distance A/B' score each person "
        "against its own reference, each on its own half of the image.",
        title="How to use", width=340, height=400,
    )
    models_note = g.note(MODELS_NOTE, title="Model files", width=340, height=300)
    people, model = [], m["unet"]
    for side, title, file, tag in (("left", C.REFERENCE, "reference.png", "A"), ("right", C.REFERENCE_2, "reference_2.png", "B")):
        ref = g.add("LoadImage", title, colors=INPUT_COLORS, image=file)
        mask_nodes, mask = _half_mask(g, side, width, height)
        apply = g.add("LikenessApplyPulidFlux", f"{C.APPLY_PULID} (person {tag})", weight=0.9, start_at=0.0, end_at=1.0,
                      fusion="mean", face_order="largest", face_index=0, parsing_model="parsing_bisenet.pth")
        for src, name in ((model, "model"), (m["pulid"], "pulid"), (m["eva"], "eva_clip"), (m["fa"], "face_analysis"),
                          (ref, "image"), (mask, "mask")):
            g.link(src, 0, apply, name)
        model = apply
        people.append((tag, side, ref, mask_nodes, apply))
    prompt = g.add("CLIPTextEncode", C.PROMPT, text=(
        "a photo of two friends side by side in a sunny park, the person on the left laughing, the person on the "
        "right smiling, natural light, sharp focus"))
    g.link(m["clip"], 0, prompt, "clip")
    guid = g.add("FluxGuidance", "Flux guidance", guidance=3.5)
    neg = g.add("ConditioningZeroOut", "Negative (unused at cfg 1)")
    g.link(prompt, 0, guid, "conditioning")
    g.link(prompt, 0, neg, "conditioning")
    latent = g.add("EmptySD3LatentImage", C.LATENT_SIZE, width=width, height=height, batch_size=1)
    ks = g.add("KSampler", C.SAMPLER, seed=42, steps=25, cfg=1.0, sampler_name="euler", scheduler="simple", denoise=1.0)
    for src, name in ((model, "model"), (guid, "positive"), (neg, "negative"), (latent, "latent_image")):
        g.link(src, 0, ks, name)
    dec = g.add("VAEDecode", "Decode")
    g.link(ks, 0, dec, "samples")
    g.link(m["vae"], 0, dec, "vae")
    save = g.add("SaveImage", C.SAVE_RESULT, filename_prefix="likeness/multi_id")
    g.link(dec, 0, save, "images")
    scores = _score_halves(g, m, people, dec, width, height)
    (ta, _, ref_a, masks_a, apply_a), (tb, _, ref_b, masks_b, apply_b) = people
    g.layout([
        [("", GREY, [[how, models_note]])],
        [("Models", BROWN, [[m["unet"], m["clip"], m["vae"]], [m["pulid"], m["eva"], m["fa"], m["judge"]]])],
        [(f"Person {ta}: reference + left mask -> PuLID-Flux", GREEN, [[ref_a], masks_a, [apply_a]]),
         (f"Person {tb}: reference + right mask -> PuLID-Flux", CYAN, [[ref_b], masks_b, [apply_b]])],
        [("Prompt and generate 1216x832", PURPLE, [[prompt, guid, neg], [latent, ks, dec]])],
        [("Save and score each person", YELLOW, [[save], scores[:2], scores[2:]])],
    ])
    return g


BUILDERS = {
    "likeness_enhance_whole": enhance_whole,
    "likeness_enhance_crop": enhance_crop,
    "likeness_avatar": avatar,
    "likeness_score": score_only,
    C.WORKFLOW_MULTI_ID: multi_id,
}
BUILDERS.update(__import__("build_workflows_edit").builders(sys.modules[__name__]))  # Kontext, FLUX.2 (issue 17)


def _object_info(args) -> dict:
    if args.object_info:
        return json.loads(Path(args.object_info).read_text())
    from likeness.client.api import ComfyClient

    if args.url:
        return ComfyClient(args.url).object_info()
    from likeness.client.provision import ensure_comfyui
    from likeness.client.server import EmbeddedServer

    with EmbeddedServer(ensure_comfyui()) as server:
        return server.start().object_info()


def _dump(obj: dict) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="a running ComfyUI with this pack (for /object_info)")
    ap.add_argument("--object-info", help="a saved /object_info JSON instead of a server")
    args = ap.parse_args(argv)
    info = _object_info(args)
    (WORKFLOWS / "api").mkdir(parents=True, exist_ok=True)
    for name, build in BUILDERS.items():
        ui = build(info).to_ui()
        (WORKFLOWS / f"{name}.json").write_text(_dump(ui))
        (WORKFLOWS / "api" / f"{name}.json").write_text(_dump(ui_to_api(ui, info)))
        log.info("wrote workflows/%s.json (%d nodes) and workflows/api/%s.json", name, len(ui["nodes"]), name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
