"""ID-embedding cache: what Apply PuLID-Flux costs the first time a reference is used and when it is re-queued.

One embedded ComfyUI (default ComfyUI cache, as a user's server) runs the same small graph several times with the
same two references (astronaut and Grace Hopper, batched). Run 1 encodes them (face analysis, BiSeNet parsing,
EVA-CLIP, IDFormer); every later run changes the PuLID weight, so ComfyUI re-executes Apply PuLID-Flux (its own
cache would otherwise skip the node) and only our ID cache can skip the encoders. The node's log line
"PuLID-Flux: N reference(s): E encoded, C from cache" says which path each run took; the node's time is the span
between its /ws ``executing`` event and the next one. The same span of a trivial node (FluxGuidance, re-run with a
new value each time) is the floor every node pays on this server.

    python benchmarks/id_cache.py [--quick] [--tiny-encoders]
    python benchmarks/id_cache.py --gpu          # the same on CUDA

The encoders are a random EVA02-CLIP-L-14-336 (304 M parameters, written once into the cache) and the official
IDFormer shape, so the first run pays what real encoders cost (face analysis and BiSeNet are the test stand-ins:
a tiny ONNX detector/recogniser and a full-size random BiSeNet); ``--tiny-encoders`` (and ``--quick``) use the
tiny EVA and IDFormer of the tests instead.
"""

from __future__ import annotations

import re
import time

import benchlib as bl

LINE = re.compile(r"PuLID-Flux: (\d+) reference\(s\): (\d+) encoded, (\d+) from cache")


def graph(files: dict, pulid_name: str, eva_name: str, weight: float, guidance: float) -> dict:
    from likeness.standins.graphs import t2i_flux

    g = t2i_flux(size=128, steps=2, seed=1, prefix="bench/idcache")
    g["5"]["inputs"]["guidance"] = guidance
    g["pl"] = {"class_type": "LikenessPulidFluxLoader", "inputs": {"pulid_file": pulid_name, "dtype": "auto"}}
    g["pe"] = {"class_type": "LikenessEvaClipLoader", "inputs": {"eva_file": eva_name, "dtype": "auto"}}
    g["pf"] = {"class_type": "LikenessFaceAnalysisLoader", "inputs": {"model": "insightface: antelopev2", "provider": "CPU", "det_size": 640}}
    g["pi"] = {"class_type": "LoadImage", "inputs": {"image": "bench_ref_a.png"}}
    g["pj"] = {"class_type": "LoadImage", "inputs": {"image": "bench_ref_b.png"}}
    g["pb"] = {"class_type": "ImageBatch", "inputs": {"image1": ["pi", 0], "image2": ["pj", 0]}}
    g["pa"] = {"class_type": "LikenessApplyPulidFlux", "inputs": {
        "model": ["1", 0], "pulid": ["pl", 0], "eva_clip": ["pe", 0], "face_analysis": ["pf", 0], "image": ["pb", 0],
        "weight": weight, "start_at": 0.0, "end_at": 1.0, "fusion": "mean", "face_order": "largest", "face_index": 0,
        "parsing_model": files["parsing"]}}  # fmt: skip
    g["8"]["inputs"]["model"] = ["pa", 0]
    return g


def main() -> int:
    p = bl.arg_parser(__doc__)
    p.add_argument("--repeats", type=int, help="re-queued runs after the first (default 4; --quick 2)")
    p.add_argument("--tiny-encoders", action="store_true", help="the tests' tiny EVA-CLIP and IDFormer (default with --quick)")
    args = p.parse_args()
    bl.setup_logging()
    repeats = args.repeats or (2 if args.quick else 4)
    full = not (args.tiny_encoders or args.quick)

    import numpy as np
    import photos
    from PIL import Image

    with bl.Bench(gpu=args.gpu) as b:
        pulid_name = bl.pulid_file(b.models, 64, 2, full_encoder=True) if full else b.files["pulid"]
        eva_name = bl.eva_file(b.models, b.files, full)
        b.upload(photos.astronaut(), "bench_ref_a.png")
        b.upload(np.asarray(Image.fromarray(photos.grace_hopper()).resize((512, 512), Image.BICUBIC)), "bench_ref_b.png")
        rows, offset = [], len(b.server.log_text())
        for i in range(1 + repeats):
            t0 = time.monotonic()
            res = b.client.run(graph(b.files, pulid_name, eva_name, 1.0 - 0.05 * i, 3.5 - 0.1 * i), timeout=1800)
            wall = time.monotonic() - t0
            spans = {n: e - s for n, s, e in bl.node_spans(res.events)}
            start, end = bl.first_event(res.events, "execution_start"), bl.first_event(res.events, "execution_success")
            text, offset = b.log_since(offset)
            m = LINE.findall(text)
            if not m:
                raise RuntimeError(f"run {i + 1}: Apply PuLID-Flux logged no 'reference(s)' line:\n{text[-2000:]}")
            n, enc, hit = (int(x) for x in m[-1])
            rows.append({"run": i + 1, "apply": spans["pa"], "floor": spans.get("5", float("nan")),
                         "job": (end - start) if start and end else wall, "encoded": enc, "cached": hit, "refs": n})  # fmt: skip
            bl.log.info("run %d: apply %.3f s, %d encoded, %d from cache", i + 1, spans["pa"], enc, hit)
        first, later = rows[0], rows[1:]
        rep_apply = bl.median([r["apply"] for r in later])
        floor = bl.median([r["floor"] for r in rows])
        bl.out(bl.machine(b.comfyui))
        if args.gpu:
            bl.out(bl.gpu_facts(b.client))
        enc = "full-size random EVA02-CLIP-L/336 + official IDFormer" if full else "tiny stand-in EVA-CLIP + IDFormer"
        bl.out(f"ID-embedding cache: Apply PuLID-Flux with 2 references ({enc}; stand-in antelopev2 and BiSeNet), "
               f"first run then {repeats} re-queued runs with a changed weight")  # fmt: skip
        bl.out(bl.table(
            [[r["run"], f"{r['encoded']} encoded, {r['cached']} cached", r["apply"], r["floor"], r["job"]] for r in rows],
            ["run", "references", "Apply node (s)", "FluxGuidance node (s)", "whole job (s)"],
        ))  # fmt: skip
        bl.out(
            f"repeated / first Apply node: {rep_apply / first['apply']:.4f}   "
            f"repeated Apply / first whole job: {rep_apply / first['job']:.4f}   target: encoders <= 0.02 of the first run\n"
            f"repeated Apply minus the per-node floor ({floor:.4f} s), over the first Apply: "
            f"{max(0.0, rep_apply - floor) / first['apply']:.4f}"
        )
        if any(r["encoded"] for r in later) or first["encoded"] != first["refs"]:
            bl.out("WARNING: the cache did not behave as expected (see the references column)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
