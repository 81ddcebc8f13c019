"""Face-crop vs whole-image enhancement of a 1536x1024 target at the same steps, through the shipped workflows.

The target is a real photo (scikit-image's Grace Hopper portrait scaled 1.6x, so her face box is ~300 px, a
realistic face in a 1536x1024 photo) placed on a 1536x1024 canvas of another photo; the reference is the portrait. On CPU the whole geometry is halved (768x512 target, crop working sizes 512 and 384: the same
token ratios) with a quarter of flux1-dev's text tokens (64) and hidden 512 (shape cpu-scaled), which keeps the
proportion of linear-layer to attention cost near flux1-dev's at 1536x1024; at full size on 2 cores one job took
minutes and the tiny VAE's mid-block attention at 1/8 resolution (24576 positions) outweighed sampling. One embedded ComfyUI runs workflows/api/likeness_enhance_whole.json and the crop workflow with its
"Face 2" group bypassed (client.workflow_format.bypass_group + ui_to_api with the server's /object_info), both
switched to the stand-ins (standins.substitution.to_standins) and then to the benchmark stand-in Flux and Union
ControlNet (standins/comfy_pack/bench.py) so that sampling cost grows with the token count as flux1-dev's does. Variants:
whole image (1536x1024 -> 6144 image tokens), crop at the fixed working size 1024 (4096 tokens) and at the
shipped `auto` working size (the face box x 1.6 rounded up to 64, clamped to 768-1024: 768 here, 2304 tokens),
times the scale (the auto bounds too); the same steps, interleaved. Per variant: job time without the model loaders
(the server keeps models between jobs), the KSampler node, its median step (from /ws progress events), VAE
encode + decode and the rest, as the server's CPU seconds on CPU (benchlib.SINGLE_THREAD: other load on the
shared machine stretches wall time much more) and wall seconds on a GPU, median of the jobs; ratio crop/whole of
each, and of the job's wall time. The multiply-add count of one
step (Flux blocks + Union ControlNet, active 70 % of the steps) gives the same ratio for the stand-in (to check the
count against the measurement) and for flux1-dev + Union-Pro (5 + 10 blocks) with 256 text tokens.

    python benchmarks/crop_vs_whole.py [--quick] [--scale 1 --shape cpu-narrow]
    python benchmarks/crop_vs_whole.py --gpu     # full size, flux1-dev shape (random weights) on CUDA, 28 steps
"""

from __future__ import annotations

import functools

import benchlib as bl

SIZE = (1536, 1024)
VARIANTS = {"whole": None, "crop 1024": 1024, "crop auto": "auto"}
AUTO_BOUNDS = (768, 1024)
PORTRAIT_SCALE, PORTRAIT_AT = 1.6, (358, 32)


FIGURES = ("job", "sampling", "step", "vae", "rest")


def figures(events: list[dict], g: dict, key: str, steps: int) -> dict:
    """Job (without model loaders), KSampler, median step, VAE encode + decode and the rest, in ``key`` seconds."""
    spans = bl.node_spans(events, key)
    kinds = {n: g[n]["class_type"] for n, _, _ in spans}
    load = sum(e - s for n, s, e in spans if kinds[n] in bl.LOADERS)
    sample = sum(e - s for n, s, e in spans if kinds[n] == "KSampler")
    vae = sum(e - s for n, s, e in spans if kinds[n] in ("VAEEncode", "VAEDecode"))
    job = bl.first_event(events, "execution_success", key) - bl.first_event(events, "execution_start", key) - load
    step = bl.median(bl.step_deltas(events, key=key)) if steps > 1 else float("nan")
    return {"job": job, "sampling": sample, "step": step, "vae": vae, "rest": job - sample - vae}


def sampling_macs(shape: dict, image_tokens: int, cn_active: float = 0.7) -> float:
    h, t = shape["hidden_size"], image_tokens + shape["tokens"]
    per_block = 12 * h * h * t + 2 * h * t * t
    return per_block * (shape["depth"] + shape["depth_single_blocks"] + cn_active * (shape["cn_depth"] + shape["cn_single"]))


def _snap(v: float) -> int:
    return int(round(v / 16)) * 16


@functools.lru_cache(maxsize=None)
def auto_side(scale: float) -> int:
    """The working size Auto-crop's `auto` picks for the canvas: dlib's real face box, the same rule (face.geometry)."""
    from likeness.face.geometry import auto_working_size, crop_box
    from likeness.face.judge import DlibJudge, select_faces

    img = canvas(scale)
    face = select_faces(DlibJudge().detect_embed(img), order="left-to-right", index=0)[0]
    box = crop_box(face.box, img.shape[:2], 1.6, 1.0)
    return auto_working_size([box], *(_snap(b * scale) for b in AUTO_BOUNDS))


def side(variant: str, scale: float) -> int | None:
    s = VARIANTS[variant]
    if s == "auto":
        return auto_side(scale)
    return None if s is None else _snap(s * scale)


def set_crop_size(api: dict, variant: str, scale: float) -> dict:
    """Fixed variants set size_mode=fixed + working_size; `auto` keeps the workflow's auto with scaled bounds."""
    lo, hi = (_snap(b * scale) for b in AUTO_BOUNDS)
    for node in api.values():
        if node["class_type"] == "LikenessAutoCropFace" and node.get("_meta", {}).get("title", "").startswith("Crop target"):
            node["inputs"].update(auto_min=lo, auto_max=hi, size_mode="auto" if VARIANTS[variant] == "auto" else "fixed")
            if VARIANTS[variant] != "auto":
                node["inputs"]["working_size"] = side(variant, scale)
    return api


def tokens_of(variant: str, scale: float = 1.0) -> int:
    s = side(variant, scale)
    w, h = (int(round(x * scale / 16)) * 16 for x in SIZE)
    return (w // 16) * (h // 16) if s is None else (s // 16) ** 2


def canvas(scale: float):
    """The astronaut on a 1536x1024 canvas whose background is another real photo (coffee, scaled up)."""
    import numpy as np
    import photos
    import skimage.data
    from PIL import Image

    bg = Image.fromarray(skimage.data.coffee()).resize(SIZE, Image.BICUBIC)
    portrait = Image.fromarray(photos.grace_hopper())
    portrait = portrait.resize((round(portrait.width * PORTRAIT_SCALE), round(portrait.height * PORTRAIT_SCALE)), Image.LANCZOS)
    bg.paste(portrait, PORTRAIT_AT)
    w, h = (int(round(x * scale / 16)) * 16 for x in SIZE)
    return np.asarray(bg.resize((w, h), Image.LANCZOS) if (w, h) != SIZE else bg)


def _print_results(b, args, med: dict, shape: dict, scale: float, steps: int, repeats: int) -> None:
    """The figures of one run: the table of variants against the whole image, and the predicted ratios."""
    bl.out(bl.machine(b.comfyui))
    if args.gpu:
        bl.out(bl.gpu_facts(b.client))
    w, h = (int(round(x * scale / 16)) * 16 for x in SIZE)
    bl.out(f"Face crop vs whole image, {w}x{h} target (1536x1024 x {scale:g}), {steps} steps (denoise 0.75), {repeats} jobs per variant, "
           f"interleaved; stand-in Flux hidden {shape['hidden_size']}, {shape['depth']}+{shape['depth_single_blocks']} "
           f"blocks, Union ControlNet {shape['cn_depth']}+{shape['cn_single']}, {shape['tokens']} text tokens")  # fmt: skip
    key = "t" if args.gpu else "cpu"
    bl.out("figures: " + ("wall seconds" if args.gpu else "server CPU seconds") + ", median of the jobs; job excludes model loading")
    rows = []
    for v in VARIANTS:
        m, base = med[v][key], med["whole"][key]
        name = v if VARIANTS[v] is None else f"crop {side(v, scale)}"
        rows.append([name, tokens_of(v, scale), m["job"], m["sampling"], m["step"], m["vae"], m["rest"], m["job"] / base["job"],
                     m["sampling"] / base["sampling"], m["step"] / base["step"], med[v]["t"]["job"] / med["whole"]["t"]["job"]])  # fmt: skip
    bl.out(bl.table(rows, ["variant", "image tokens", "job", "KSampler", "step", "VAE", "rest", "job / whole",
                           "KSampler / whole", "step / whole", "wall job / whole"]))  # fmt: skip
    fd = bl.SHAPES["flux-dev"]
    pred = [f"{v}: {sampling_macs(shape, tokens_of(v, scale)) / sampling_macs(shape, tokens_of('whole', scale)):.3f} stand-in, "
            f"{sampling_macs(fd, tokens_of(v)) / sampling_macs(fd, tokens_of('whole')):.3f} flux1-dev at full size"
            for v in VARIANTS if v != "whole"]  # fmt: skip
    bl.out("multiply-adds per step / whole: " + "; ".join(pred))
    fits = max(ws for ws in range(256, 1025, 64) if sampling_macs(fd, (ws // 16) ** 2) <= 0.5 * sampling_macs(fd, tokens_of("whole")))
    bl.out(f"flux1-dev: largest crop working size (multiple of 64) whose sampling multiply-adds are <= 0.5 x whole: {fits}")
    bl.out("target: crop / whole <= 0.45 of the whole job at flux1-dev token counts, crop at the shipped auto working size")


def main() -> int:
    p = bl.arg_parser(__doc__)
    p.add_argument("--steps", type=int, help="sampler steps, the same for every variant (CPU 3, GPU 28)")
    p.add_argument("--repeats", type=int, help="jobs per variant, interleaved (4; --quick 1)")
    p.add_argument("--shape", choices=sorted(bl.SHAPES), help="model shape (CPU cpu-scaled, GPU flux-dev)")
    p.add_argument("--scale", type=float, help="side of target and crops relative to 1536x1024 / 1024 (CPU 0.5, GPU 1)")
    args = p.parse_args()
    bl.setup_logging()
    shape = bl.SHAPES[args.shape or ("flux-dev" if args.gpu else "cpu-scaled")]
    scale = args.scale or (1.0 if args.gpu else 0.5)
    steps = args.steps or (28 if args.gpu else 3)
    repeats = args.repeats or (1 if args.quick else 4)

    from likeness.client.params import fill
    from likeness.client.workflow_format import bypass_group, load_workflow, ui_to_api
    from likeness.standins.substitution import to_standins

    with bl.Bench(gpu=args.gpu) as b:
        target = b.upload(canvas(scale), "bench_target.png")
        import photos

        ref = b.upload(photos.grace_hopper(), "bench_reference.png")
        info = b.client.object_info()
        whole = load_workflow("likeness_enhance_whole")
        crop = ui_to_api(bypass_group(load_workflow("likeness_enhance_crop", api=False), "Face 2"), info)

        def build(variant: str, seed: int) -> dict:
            api = whole if VARIANTS[variant] is None else crop
            params = {"reference": ref, "target": target, "seed": seed, "output_prefix": "bench/crop_vs_whole"}
            g = fill(to_standins(api, b.files, steps=steps), **params)
            return bl.to_bench(g if VARIANTS[variant] is None else set_crop_size(g, variant, scale), shape, b.models)

        warm = set_crop_size(fill(to_standins(crop, b.files, steps=1), reference=ref, target=target), "crop auto", scale)
        b.run(bl.to_bench(warm, shape, b.models))  # builds the models and runs every node once
        per = {v: [] for v in VARIANTS}
        for i, v in enumerate(bl.abba(repeats, list(VARIANTS))):
            g = build(v, 100 + i)
            res = b.run(g)
            per[v].append({key: figures(res.events, g, key, steps) for key in ("cpu", "t")})
            f = per[v][-1]["t"]
            bl.log.info("job %d %s: %.2f s without loads (%.2f sampling, %.2f VAE)", i + 1, v, f["job"], f["sampling"], f["vae"])

        med = {v: {key: {k: bl.median([r[key][k] for r in rs]) for k in FIGURES} for key in ("cpu", "t")} for v, rs in per.items()}
        _print_results(b, args, med, shape, scale, steps, repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
