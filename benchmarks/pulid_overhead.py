"""PuLID-Flux cost on the live server with stand-in models, measured side by side in one run.

Prints (1) seconds per sampling step of the same tiny Flux graph without and with Apply PuLID-Flux and
their ratio, and (2) the time of the Apply node on the first run (encoders run) and on a repeated run
(ID tokens from the cache). Timings come from /ws events (progress and executing timestamps).

    python benchmarks/pulid_overhead.py [--steps 12] [--repeats 3]

The stand-in Flux is tiny (hidden 64), so the ratio here overstates what PuLID costs on flux1-dev,
whose blocks dominate; see benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import io
import logging
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402
from graphs import t2i_flux  # noqa: E402
from PIL import Image  # noqa: E402

from client.provision import ensure_comfyui  # noqa: E402
from client.server import EmbeddedServer  # noqa: E402

log = logging.getLogger("bench")


def _step_times(events):
    t = [e["t"] for e in events if e.get("type") == "progress"]
    return [b - a for a, b in zip(t, t[1:])]


def _node_time(events, node):
    starts = {e["data"].get("node"): e["t"] for e in events if e.get("type") == "executing"}
    order = [e["data"].get("node") for e in events if e.get("type") == "executing"]
    i = order.index(node)
    nxt = [e["t"] for e in events if e.get("type") == "executing"][i + 1]
    return nxt - starts[node]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--size", type=int, default=256)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from conftest import _write_model_files

    base = Path(tempfile.mkdtemp(prefix="likeness-bench-"))
    server = EmbeddedServer(ensure_comfyui(), base_dir=base, custom_nodes={"likeness_standins": ROOT / "tests/standins/comfy_pack"},
                            extra_args=["--cache-none"])  # every node runs every time: the ID cache is ours
    server.prepare()
    files = _write_model_files(server.models)
    client = server.start()
    try:
        buf = io.BytesIO()
        Image.fromarray((np.random.default_rng(0).random((96, 96, 3)) * 255).astype(np.uint8)).save(buf, "PNG")
        ref = client.upload_image(buf.getvalue(), "bench_ref.png")["name"]

        def graph(with_pulid: bool, seed: int):
            g = t2i_flux(size=args.size, steps=args.steps, seed=seed)
            if with_pulid:
                g["pl"] = {"class_type": "LikenessPulidFluxLoader", "inputs": {"pulid_file": files["pulid"], "dtype": "auto"}}
                g["pe"] = {"class_type": "LikenessEvaClipLoader", "inputs": {"eva_file": files["eva"], "dtype": "auto"}}
                g["pf"] = {"class_type": "LikenessFaceAnalysisLoader", "inputs": {"model": "insightface: antelopev2", "provider": "CPU", "det_size": 640}}
                g["pi"] = {"class_type": "LoadImage", "inputs": {"image": ref}}
                g["pa"] = {"class_type": "LikenessApplyPulidFlux", "inputs": {
                    "model": ["1", 0], "pulid": ["pl", 0], "eva_clip": ["pe", 0], "face_analysis": ["pf", 0], "image": ["pi", 0],
                    "weight": 1.0, "start_at": 0.0, "end_at": 1.0, "fusion": "mean", "face_order": "largest", "face_index": 0,
                    "parsing_model": files["parsing"]}}
                g["8"]["inputs"]["model"] = ["pa", 0]
            return g

        client.run(graph(False, 0))  # warm-up
        plain, pulid, apply_first, apply_cached = [], [], [], []
        for r in range(args.repeats):
            plain += _step_times(client.run(graph(False, r + 1)).events)
            ev = client.run(graph(True, r + 1)).events
            pulid += _step_times(ev)
            (apply_first if r == 0 else apply_cached).append(_node_time(ev, "pa"))
        a, b = statistics.median(plain), statistics.median(pulid)
        sys.stdout.write(
            f"stand-in Flux (hidden 64, 2 double + 4 single blocks), {args.size}x{args.size}, {args.steps} steps x {args.repeats}\n"
            f"  s/step without PuLID: {a:.4f}   with PuLID: {b:.4f}   ratio: {b / a:.3f}\n"
            f"  Apply PuLID-Flux node: first run (encoders) {apply_first[0]:.3f} s, repeated (cache) "
            f"{statistics.median(apply_cached):.3f} s, ratio {statistics.median(apply_cached) / apply_first[0]:.3f}\n"
        )
    finally:
        server.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
