"""End to end through the REST client: per-image wall time and where it goes.

Runs the shipped likeness_enhance_whole workflow for a few images through client.api.ComfyClient against one
embedded ComfyUI (default ComfyUI cache, as a user's server: image 1 loads the models, later images reuse them)
and splits each image's wall time, from the first upload to the result's bytes on the client, into: upload
(/upload/image of reference and target), queue (POST /prompt), queue wait (to ``execution_start``), model load
(loader nodes), prepare (load, crop, upscale, resize images), identity (Apply PuLID-Flux), prompt (caption, text
encoding, guidance, ControlNet setup), VAE encode, sampling (KSampler), decode (VAEDecode), scoring (Face Embed
Distance, Enhancement Report), save (SaveImage), results (/history, /view download) and what is left. Node times
come from the /ws events (``executing`` to the next ``executing``; the client stamps each event on arrival).

    python benchmarks/e2e_client.py [--quick] [--images 4]
    python benchmarks/e2e_client.py --gpu     # flux1-dev shape (random weights) on CUDA, 1024x1024, 28 steps
"""

from __future__ import annotations

import io
import time

import benchlib as bl
from likeness.client.api import ComfyClient

STAGES = [
    ("model load", bl.LOADERS),
    ("prepare", {"LoadImage", "LikenessAutoCropFace", "LikenessUpscaleIfSmall", "GetImageSize", "ImageScale"}),
    ("identity", {"LikenessApplyPulidFlux"}),
    ("prompt", {"LikenessCaption", "CLIPTextEncode", "FluxGuidance", "ConditioningZeroOut", "LikenessFluxUnionMode", "ControlNetApplyAdvanced"}),
    ("VAE encode", {"VAEEncode"}),
    ("sampling", {"KSampler"}),
    ("decode", {"VAEDecode"}),
    ("scoring", {"LikenessFaceEmbedDistance", "LikenessEnhancementReport"}),
    ("save", {"SaveImage"}),
]


class TimedClient(ComfyClient):
    """Stamps the POST /prompt round trip, which run() does not expose."""

    def queue_prompt(self, graph, extra_data=None):
        t0 = time.monotonic()
        pid = super().queue_prompt(graph, extra_data)
        self.posted = (t0, time.monotonic())
        return pid


def png(arr) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def main() -> int:
    p = bl.arg_parser(__doc__)
    p.add_argument("--images", type=int, help="images to enhance (4; --quick 2); image 1 includes model loading")
    p.add_argument("--steps", type=int, help="sampler steps (CPU 4, GPU 28)")
    args = p.parse_args()
    bl.setup_logging()
    n = args.images or (2 if args.quick else 4)
    steps = args.steps or (28 if args.gpu else 4)
    side = 1024 if args.gpu else 512
    shape = bl.SHAPES["flux-dev" if args.gpu else "cpu-scaled"]

    import photos
    from likeness.client.params import fill
    from likeness.client.workflow_format import load_workflow
    from likeness.standins.substitution import to_standins
    from memory_batch import targets

    with bl.Bench(gpu=args.gpu) as b:
        client = TimedClient(b.server.url, timeout=120.0)
        api = load_workflow("likeness_enhance_whole")
        ref_png = png(photos.astronaut())
        images = [png(a) for a in targets(n, side)]
        rows = []
        for i, tgt_png in enumerate(images):
            t0 = time.monotonic()
            ref = client.upload_image(ref_png, "bench_e2e_reference.png", overwrite=True)["name"]
            tgt = client.upload_image(tgt_png, f"bench_e2e_target_{i}.png", overwrite=True)["name"]
            t_up = time.monotonic()
            g = bl.to_bench(fill(to_standins(api, b.files, steps=steps), reference=ref, target=tgt, seed=7 + i,
                                 output_prefix="bench/e2e"), shape, b.models)  # fmt: skip
            res = client.run(g, timeout=3600)
            rec = res.images()[0]
            client.view(rec["filename"], rec.get("subfolder", ""), rec.get("type", "output"))
            t_end = time.monotonic()
            ev = res.events
            start, success = bl.first_event(ev, "execution_start"), bl.first_event(ev, "execution_success")
            row = {"upload": t_up - t0, "queue": client.posted[1] - client.posted[0], "queue wait": start - client.posted[1]}
            spans = bl.node_spans(ev)
            for name, kinds in STAGES:
                row[name] = sum(e - s for nid, s, e in spans if g[nid]["class_type"] in kinds)
            row["results"] = t_end - success
            row["wall"] = t_end - t0
            row["other"] = row["wall"] - sum(v for k, v in row.items() if k != "wall")
            rows.append(row)
            bl.log.info("image %d: %.2f s (sampling %.2f)", i + 1, row["wall"], row["sampling"])
        bl.out(bl.machine(b.comfyui))
        if args.gpu:
            bl.out(bl.gpu_facts(b.client))
        bl.out(f"End to end through client.api.ComfyClient: likeness_enhance_whole, {side}x{side} targets, {steps} steps, "
               f"stand-in Flux hidden {shape['hidden_size']} ({shape['depth']}+{shape['depth_single_blocks']} blocks), {n} images")  # fmt: skip
        keys = ["upload", "queue", "queue wait"] + [s for s, _ in STAGES] + ["results", "other", "wall"]
        warm = rows[1:] or rows
        med = {k: bl.median([r[k] for r in warm]) for k in keys}
        table = [[k, rows[0][k], f"{100 * rows[0][k] / rows[0]['wall']:.1f}", med[k], f"{100 * med[k] / med['wall']:.1f}"] for k in keys]
        bl.out(bl.table(table, ["stage", "image 1 (s)", "image 1 (%)", f"images 2-{n} median (s)", "images 2+ (%)"]))
        bl.out(f"per-image wall: image 1 {rows[0]['wall']:.2f} s, later images {med['wall']:.2f} s (median); "
               f"sampling share of a later image {med['sampling'] / med['wall']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
