"""PuLID-Flux overhead per sampling step: the same Flux with and without Apply PuLID-Flux, side by side.

One embedded ComfyUI runs a text-to-image graph (benchmark stand-in Flux, KSampler, SaveLatent; default ComfyUI
cache, so the model stays loaded and only the KSampler re-runs with a new seed) in two designs:

* alternating steps (the main figure): the model through Apply PuLID-Flux (weight 1, start 0, end 1: injected at
  every step, the worst case) and standins/comfy_pack/bench.py's LikenessBenchAlternatePatches, which runs PuLID's block
  patches on even steps only; one sampling run interleaves steps with (B) and without (A) PuLID, so load drifting
  on a shared machine hits both alike. Step times come from /ws progress events (the first step, which holds the
  warm-up, is left out), as the server process's CPU seconds read when each event arrives and as wall seconds.
  On CPU the same runs also time PuLID's patches beside the blocks they wrap (LikenessBenchPatchTimer, thread CPU
  time): the share of the step PuLID's own code takes, in the very same steps.
* whole runs: the model straight from the loader (A) and through Apply PuLID-Flux (B), runs in A B B A order.
  This is what a user compares; on a shared CPU its run-to-run drift (+-10 %) exceeds the effect.

Also printed: the ratio a multiply-add count predicts for this shape and for flux1-dev. The Apply node's own time
(ID encoding) is not part of a step: see id_cache.py. On a GPU read the wall figures (the server's CPU time there
is kernel launching and waiting).

CPU (default): hidden 512 (4 heads of 128, as flux1-dev), 4 double + 8 single blocks, 512x512 (1024 image tokens
+ 64 text tokens: flux1-dev's 256 scaled with the image), PuLID cross-attention scaled to that width (4 CA
modules), the server computing on one thread (see benchlib.SINGLE_THREAD).
    python benchmarks/pulid_overhead.py [--quick]
GPU: the full flux1-dev shape (hidden 3072, 19 + 38 blocks, random weights), 1024x1024, official CA shape (20).
    python benchmarks/pulid_overhead.py --gpu [--weight-dtype fp8_e4m3fn_fast] [--compile] [--easycache]
"""

from __future__ import annotations

import argparse

import benchlib as bl

REF_NAME = "bench_pulid_reference.png"


def step_macs(shape: dict, image_tokens: int, with_pulid: bool) -> float:
    """Multiply-adds of one Flux forward: 12 h^2 per token per block (qkv, proj, MLP x4) plus 2 h T^2 attention;
    PuLID adds per image token and CA module q/out projections (2 h inner) and attention to 32 ID tokens."""
    h, t = shape["hidden_size"], image_tokens + shape["tokens"]
    blocks = shape["depth"] + shape["depth_single_blocks"]
    macs = blocks * (12 * h * h * t + 2 * h * t * t)
    if with_pulid:
        inner = max(1, round(16 * h / 3072)) * 128
        macs += bl.ca_count(shape["depth"], shape["depth_single_blocks"]) * image_tokens * (2 * h * inner + 2 * 32 * inner)
    return float(macs)


def graph(shape: dict, args, seed: int, variant: str, files: dict, pulid_name: str, token: str | None = None) -> dict:
    n = bl.bench_nodes(shape, args.weight_dtype)
    g = {
        "1": n["flux"],
        "2": n["clip"],
        "4": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["2", 0], "text": "a portrait photo of a person"}},
        "5": {"class_type": "FluxGuidance", "inputs": {"conditioning": ["4", 0], "guidance": 3.5}},
        "6": {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["4", 0]}},
        "7": {"class_type": "EmptySD3LatentImage", "inputs": {"width": args.size, "height": args.size, "batch_size": 1}},
        "8": {"class_type": "KSampler", "inputs": {
            "positive": ["5", 0], "negative": ["6", 0], "latent_image": ["7", 0], "seed": seed, "steps": args.steps,
            "cfg": 1.0, "sampler_name": "euler", "scheduler": "simple", "denoise": 1.0}},
        "9": {"class_type": "SaveLatent", "inputs": {"samples": ["8", 0], "filename_prefix": "bench/latent"}},
    }  # fmt: skip
    model = ["1", 0]
    if variant == "pulid":
        g["pl"] = {"class_type": "LikenessPulidFluxLoader", "inputs": {"pulid_file": pulid_name, "dtype": "auto"}}
        g["pe"] = {"class_type": "LikenessEvaClipLoader", "inputs": {"eva_file": files["eva"], "dtype": "auto"}}
        g["pf"] = {"class_type": "LikenessFaceAnalysisLoader", "inputs": {"model": "insightface: antelopev2", "provider": "CPU", "det_size": 640}}
        g["pi"] = {"class_type": "LoadImage", "inputs": {"image": REF_NAME}}
        g["pa"] = {"class_type": "LikenessApplyPulidFlux", "inputs": {
            "model": model, "pulid": ["pl", 0], "eva_clip": ["pe", 0], "face_analysis": ["pf", 0], "image": ["pi", 0],
            "weight": 1.0, "start_at": 0.0, "end_at": 1.0, "fusion": "mean", "face_order": "largest", "face_index": 0,
            "parsing_model": files["parsing"]}}  # fmt: skip
        model = ["pa", 0]
    if variant == "alternate":
        g = graph(shape, args, seed, "pulid", files, pulid_name)
        model = ["pa", 0]
        if not args.gpu:  # time PuLID's patches beside the blocks they wrap (a GPU would need a synchronise per patch)
            g["tm"] = {"class_type": "LikenessBenchPatchTimer", "inputs": {"model": model, "token": token}}
            model = ["tm", 0]
        g["ta"] = {"class_type": "LikenessBenchAlternatePatches", "inputs": {"model": model, "token": token}}
        g["tr"] = {"class_type": "LikenessBenchPatchTimerReport", "inputs": {"samples": ["8", 0], "token": token}}
        model = ["ta", 0]
    if args.compile:
        g["tc"] = {"class_type": "TorchCompileModel", "inputs": {"model": model, "backend": "inductor"}}
        model = ["tc", 0]
    if args.easycache:
        g["ec"] = {"class_type": "EasyCache", "inputs": {"model": model, "reuse_threshold": 0.2, "start_percent": 0.15, "end_percent": 0.95, "verbose": False}}
        model = ["ec", 0]
    g["8"]["inputs"]["model"] = model
    return g


def _alternating_runs(b, args: argparse.Namespace, shape: dict, pulid_name: str) -> tuple[dict, list]:
    """Runs whose steps alternate with and without PuLID: per-step wall and CPU seconds, and the patch share."""
    alt = {"on": [], "off": [], "on_cpu": [], "off_cpu": []}
    inside = []  # per run: on-step CPU / (on-step CPU - what PuLID's patches added per on-step)
    for r in range(args.alt_runs):
        res = b.run(graph(shape, argparse.Namespace(**{**vars(args), "steps": args.alt_steps}), 50 + r, "alternate", b.files, pulid_name, f"alt{r}"))
        rep = res.outputs["tr"]["bench_patch_timer"][0]
        seen = rep.get("seen") or []
        if not seen or seen[0] != 0 or seen != sorted(set(seen)) or (seen != list(range(args.alt_steps)) and not args.easycache):
            raise RuntimeError(f"alternating run saw steps {seen}, expected 0..{args.alt_steps - 1} (EasyCache may skip some)")
        for key, suffix in (("t", ""), ("cpu", "_cpu")):
            for step, d in enumerate(bl.step_deltas(res.events, "8", key), start=1):
                alt[("on" if step % 2 == 0 else "off") + suffix].append(d)
        if rep.get("calls"):
            n_on = len(range(0, args.alt_steps, 2))
            m_on = bl.median(alt["on_cpu"][-((args.alt_steps - 1) // 2) :])
            inside.append(m_on / (m_on - (rep["patch_s"] - rep["block_s"]) / n_on))
        bl.log.info("alternating run %d: on %.3f, off %.3f CPU s/step", r + 1, bl.median(alt["on_cpu"]), bl.median(alt["off_cpu"]))
    return alt, inside


def _print_results(b, args: argparse.Namespace, shape: dict, alt: dict, inside: list, wall: dict, cpu: dict) -> None:
    """The figures: per-step medians of both designs, the ratios and the multiply-add prediction."""
    tokens = (args.size // 16) ** 2
    predicted = step_macs(shape, tokens, True) / step_macs(shape, tokens, False)
    fd = bl.SHAPES["flux-dev"]
    fd_pred = step_macs(fd, 4096, True) / step_macs(fd, 4096, False)
    extras = ", ".join(x for x, on in (("weight_dtype " + args.weight_dtype, True), ("TorchCompileModel", args.compile), ("EasyCache", args.easycache)) if on)
    bl.out(bl.machine(b.comfyui))
    if args.gpu:
        bl.out(bl.gpu_facts(b.client))
    bl.out(
        f"PuLID-Flux overhead per sampling step ({extras})\n"
        f"model: stand-in Flux hidden {shape['hidden_size']}, {shape['depth']} double + {shape['depth_single_blocks']} single "
        f"blocks, {bl.ca_count(shape['depth'], shape['depth_single_blocks'])} PuLID CA modules; {args.size}x{args.size} "
        f"({tokens} image + {shape['tokens']} text tokens); {args.alt_runs} alternating runs of {args.alt_steps} steps; "
        f"{args.repeats} whole runs of {args.steps} steps per variant, interleaved"
    )
    rows = [
        ["alternating steps: without PuLID", bl.median(alt["off"]), bl.median(alt["off_cpu"]), len(alt["off"])],
        ["alternating steps: with PuLID", bl.median(alt["on"]), bl.median(alt["on_cpu"]), len(alt["on"])],
        ["whole runs: without PuLID", bl.median(wall["plain"]), bl.median(cpu["plain"]), len(wall["plain"])],
        ["whole runs: with PuLID", bl.median(wall["pulid"]), bl.median(cpu["pulid"]), len(wall["pulid"])],
    ]
    bl.out(bl.table(rows, ["design / variant", "median step, wall (s)", "median step, server CPU (s)", "steps timed"]))

    def ratio(without, with_pulid):
        return bl.median(with_pulid) / bl.median(without)

    bl.out(f"ratio with/without PuLID, alternating steps: {ratio(alt['off_cpu'], alt['on_cpu']):.3f} (server CPU)   "
           f"{ratio(alt['off'], alt['on']):.3f} (wall)   target <= 1.05")  # fmt: skip
    if inside:
        bl.out(f"  of which PuLID's own patch code (timed beside the blocks it wraps, same steps): "
               f"{bl.median(inside):.3f} (runs: {', '.join(f'{x:.3f}' for x in inside)})")  # fmt: skip
    bl.out(f"ratio with/without PuLID, whole runs: {ratio(cpu['plain'], cpu['pulid']):.3f} (server CPU)   "
           f"{ratio(wall['plain'], wall['pulid']):.3f} (wall)")  # fmt: skip
    bl.out(f"MAC-count prediction for this shape: {predicted:.3f}; for flux1-dev at 1024x1024: {fd_pred:.3f}")


def main() -> int:
    p = bl.arg_parser(__doc__)
    p.add_argument("--steps", type=int, help="sampling steps per whole run (CPU 3, GPU 20)")
    p.add_argument("--repeats", type=int, help="whole runs per variant, interleaved (CPU 2, GPU 3; --quick 1)")
    p.add_argument("--alt-steps", type=int, help="steps per alternating run (CPU 12, GPU 20; --quick 4)")
    p.add_argument("--alt-runs", type=int, help="alternating runs (2; --quick 1)")
    p.add_argument("--size", type=int, help="image side in pixels (CPU 512, GPU 1024)")
    p.add_argument("--shape", choices=sorted(bl.SHAPES), help="model shape (CPU cpu-wide, GPU flux-dev)")
    p.add_argument("--weight-dtype", default="default", choices=["default", "fp8_e4m3fn", "fp8_e4m3fn_fast"], help="as UNETLoader's")
    p.add_argument("--compile", action="store_true", help="core TorchCompileModel (inductor) after Apply PuLID-Flux")
    p.add_argument("--easycache", action="store_true", help="core EasyCache (0.2, 0.15-0.95) on both models")
    args = p.parse_args()
    bl.setup_logging()
    gpu = args.gpu
    shape = bl.SHAPES[args.shape or ("flux-dev" if gpu else "cpu-wide")]
    args.steps = args.steps or (20 if gpu else 3)
    args.repeats = args.repeats or (1 if args.quick else 3 if gpu else 2)
    args.alt_steps = args.alt_steps or (4 if args.quick else 20 if gpu else 12)
    args.alt_runs = args.alt_runs or (1 if args.quick else 2)
    args.size = args.size or (1024 if gpu else (256 if args.quick else 512))

    import numpy as np
    import photos
    from PIL import Image

    with bl.Bench(gpu=gpu) as b:
        pulid_name = bl.pulid_file(b.models, shape["hidden_size"], bl.ca_count(shape["depth"], shape["depth_single_blocks"]))
        ref = np.asarray(Image.fromarray(photos.astronaut()).resize((256, 256), Image.BICUBIC))
        b.upload(ref, REF_NAME)
        variants = ["plain", "pulid"]
        warm = argparse.Namespace(**{**vars(args), "steps": 2})
        for v in [*variants, "alternate"]:  # warm-up: builds and loads the model, encodes the reference, compiles
            b.run(graph(shape, warm, 0, v, b.files, pulid_name, token="warm"))
        alt, inside = _alternating_runs(b, args, shape, pulid_name)
        wall = {v: [] for v in variants}
        cpu = {v: [] for v in variants}
        for i, v in enumerate(bl.abba(args.repeats, variants)):
            res = b.run(graph(shape, args, 1 + i, v, b.files, pulid_name))
            wall[v] += bl.step_deltas(res.events, "8")
            cpu[v] += bl.step_deltas(res.events, "8", key="cpu")
            bl.log.info("run %d %s: %.3f s/step, %.3f CPU s/step", i + 1, v, bl.per_step(res.events, "8"), bl.per_step(res.events, "8", "cpu"))
        _print_results(b, args, shape, alt, inside, wall, cpu)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
