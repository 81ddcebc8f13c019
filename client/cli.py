"""The ``likeness`` command line (run as ``python -m client``). No torch here.

``demo`` starts an embedded headless ComfyUI with this pack, queues a graph through the REST API
and writes the outputs under ./outputs/. When the real model files are absent it runs on the
test stand-ins (tiny random weights) and says so in its first and last line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from .api import ComfyClient
from .graphs import t2i_flux
from .provision import ensure_comfyui
from .server import PACK_DIR, EmbeddedServer

log = logging.getLogger("likeness")

STANDINS_DIR = PACK_DIR / "tests" / "standins" / "comfy_pack"
# The files the real pipeline needs (README model table): folder -> file names.
REAL_WEIGHTS = {
    "diffusion_models": ["flux1-dev.safetensors"],
    "text_encoders": ["t5xxl_fp16.safetensors", "clip_l.safetensors"],
    "vae": ["ae.safetensors"],
}


def missing_real_weights(models_dir: Path | None) -> list[str]:
    if models_dir is None:
        return [f"{folder}/{name}" for folder, names in REAL_WEIGHTS.items() for name in names]
    return [
        f"{folder}/{name}" for folder, names in REAL_WEIGHTS.items() for name in names if not (models_dir / folder / name).exists()
    ]


def _say(msg: str) -> None:
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def _progress(event: dict) -> None:
    kind, data = event.get("type"), event.get("data", {})
    if kind == "executing" and data.get("node") is not None:
        log.info("running node %s", data["node"])
    elif kind == "progress":
        log.info("  step %s/%s", data.get("value"), data.get("max"))


def cmd_demo(args: argparse.Namespace) -> int:
    models_dir = Path(args.models).resolve() if args.models else None
    missing = missing_real_weights(models_dir)
    standin = bool(missing)
    banner = (
        "LIKENESS DEMO ON STAND-IN RANDOM WEIGHTS (real model files absent: "
        + ", ".join(missing[:3])
        + ("..." if len(missing) > 3 else "")
        + "); images show plumbing, not quality"
        if standin
        else "LIKENESS DEMO ON REAL WEIGHTS from " + str(models_dir)
    )
    _say(banner)
    if not standin:
        _say("note: the real-weight enhancement graph is not wired into the demo yet; running the harness graph")
    comfyui = Path(args.comfyui) if args.comfyui else ensure_comfyui()
    out_dir = Path(args.output).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    extra = {"likeness_standins": STANDINS_DIR} if standin else {}
    with EmbeddedServer(comfyui, custom_nodes=extra, models_dir=models_dir) as server:
        client: ComfyClient = server.start()
        t_up = time.monotonic() - t0
        graph = t2i_flux(args.prompt, args.size, args.steps, args.seed, scheduler="beta", prefix="likeness_demo")
        result = client.run(graph, on_event=_progress)
        written = []
        for rec in result.images():
            data = client.view(rec["filename"], rec.get("subfolder", ""), rec.get("type", "output"))
            path = out_dir / rec["filename"]
            path.write_bytes(data)
            written.append(str(path))
    summary = {
        "prompt_id": result.prompt_id,
        "outputs": written,
        "standin_weights": standin,
        "server_start_s": round(t_up, 2),
        "total_s": round(time.monotonic() - t0, 2),
    }
    (out_dir / "demo_result.json").write_text(json.dumps(summary, indent=2))
    _say(f"outputs written to {out_dir}: {', '.join(Path(w).name for w in written)} (+ demo_result.json)")
    _say(("STAND-IN RANDOM WEIGHTS WERE USED; " if standin else "") + f"done in {summary['total_s']} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="likeness", description="Likeness: face-identity tools for ComfyUI")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="run the demo on an embedded headless ComfyUI")
    d.add_argument("--models", help="a ComfyUI models folder with the real weights (default: none, stand-ins)")
    d.add_argument("--comfyui", help="path of your own ComfyUI installation (default: the pinned 0.3.75 copy)")
    d.add_argument("--output", default="outputs", help="where to write the outputs (default ./outputs)")
    d.add_argument("--prompt", default="a portrait photo of a woman, soft light")
    d.add_argument("--size", type=int, default=256)
    d.add_argument("--steps", type=int, default=8)
    d.add_argument("--seed", type=int, default=42)
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
