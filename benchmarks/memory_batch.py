"""Memory across a batch: server RSS (and GPU memory on a GPU) after each of 20 enhancement jobs on one server.

A leak shows as growth that continues after the first jobs (which fill caches, load models and let the
allocator settle). One embedded ComfyUI (default ComfyUI cache, as a user's server) runs the shipped
likeness_enhance_whole workflow 20 times with the same reference and a different target each time (crops of two
real photos, so every job decodes, encodes and scores a new image), new seed each time. After each job: the
server process's RSS (/proc), on a GPU the device memory in use and torch's reserved memory (/system_stats), and
the number of files in the server's temp/ and output/ folders. Prints the table and the growth from job 3 to the
last job; target <= 5 %.

    python benchmarks/memory_batch.py [--quick] [--jobs 20]
    python benchmarks/memory_batch.py --gpu     # flux1-dev shape (random weights) on CUDA, 768x768 targets
"""

from __future__ import annotations

import time

import benchlib as bl


def targets(n: int, side: int):
    """n distinct targets: shifted, scaled crops of the astronaut and Grace Hopper photos."""
    import numpy as np
    import photos
    from PIL import Image

    srcs = [photos.astronaut(), photos.grace_hopper()]
    for i in range(n):
        src = Image.fromarray(srcs[i % 2])
        w, h = src.size
        m = (i // 2) % 5 * 8
        yield np.asarray(src.crop((m, m, w - m // 2, h - m // 2)).resize((side, side), Image.BICUBIC))


def count_files(path) -> int:
    return sum(1 for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def main() -> int:
    p = bl.arg_parser(__doc__)
    p.add_argument("--jobs", type=int, help="jobs in the batch (20; --quick 6)")
    p.add_argument("--steps", type=int, help="sampler steps (CPU 2, GPU 4; memory does not depend on them)")
    args = p.parse_args()
    bl.setup_logging()
    jobs = args.jobs or (6 if args.quick else 20)
    steps = args.steps or (4 if args.gpu else 2)
    side = 768 if args.gpu else 256

    import photos
    from likeness.client.params import fill
    from likeness.client.workflow_format import load_workflow
    from likeness.standins.substitution import to_standins

    with bl.Bench(gpu=args.gpu) as b:
        ref = b.upload(photos.astronaut(), "bench_reference.png")
        api = load_workflow("likeness_enhance_whole")
        rows = []
        for i, arr in enumerate(targets(jobs, side)):
            tgt = b.upload(arr, f"bench_target_{i:02d}.png")
            g = fill(to_standins(api, b.files, steps=steps, size=None if args.gpu else 128), reference=ref, target=tgt,
                     seed=1000 + i, output_prefix="bench/batch")  # fmt: skip
            if args.gpu:
                g = bl.to_bench(g, bl.SHAPES["flux-dev"], b.models)
            t0 = time.monotonic()
            b.client.run(g, timeout=1800)
            row = {"job": i + 1, "s": time.monotonic() - t0, "rss": b.server.rss_bytes() / 2**20,
                   "temp": count_files(b.base / "temp"), "output": count_files(b.base / "output")}  # fmt: skip
            if args.gpu:
                dev = (b.client.system_stats().get("devices") or [{}])[0]
                row["gpu"] = (dev.get("vram_total", 0) - dev.get("vram_free", 0)) / 2**20
                row["torch"] = dev.get("torch_vram_total", 0) / 2**20
            rows.append(row)
            bl.log.info("job %d: %.1f s, RSS %.0f MiB", i + 1, row["s"], row["rss"])
        bl.out(bl.machine(b.comfyui))
        if args.gpu:
            bl.out(bl.gpu_facts(b.client))
        model = "flux1-dev shape (random weights)" if args.gpu else "test stand-ins"
        bl.out(f"Memory over a batch of {jobs} likeness_enhance_whole jobs on one server ({model}, {side}x{side} targets, "
               f"{steps} steps, default ComfyUI cache)")  # fmt: skip
        header = ["job", "seconds", "server RSS (MiB)", "temp files", "output files"] + (["GPU used (MiB)", "torch reserved (MiB)"] if args.gpu else [])
        bl.out(bl.table([[r["job"], r["s"], r["rss"], r["temp"], r["output"]] + ([r["gpu"], r["torch"]] if args.gpu else []) for r in rows], header))
        base = rows[min(2, len(rows) - 1)]
        last = rows[-1]
        peak = max(r["rss"] for r in rows[2:])
        line = (f"RSS growth job 3 -> job {last['job']}: {100 * (last['rss'] / base['rss'] - 1):+.1f} %   "
                f"(peak after job 3: {100 * (peak / base['rss'] - 1):+.1f} %)   target <= 5 %")  # fmt: skip
        if args.gpu:
            line += f"\nGPU memory growth job 3 -> job {last['job']}: {100 * (last['gpu'] / base['gpu'] - 1):+.1f} %"
        bl.out(line)
        bl.out(f"files per job: temp {(last['temp'] - base['temp']) / max(1, last['job'] - base['job']):.1f}, "
               f"output {(last['output'] - base['output']) / max(1, last['job'] - base['job']):.1f} (after job 3)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
