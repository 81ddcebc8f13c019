"""Shared plumbing of the benchmark scripts: a headless ComfyUI with the stand-ins, /ws timing, machine facts.

Every figure a script prints is a ratio of two things measured side by side in the same run (interleaved
repetitions on one server), because the machine is shared and absolute seconds drift between runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import platform
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "tests")]
import importroot  # noqa: E402  (this checkout importable as ``likeness``)

importroot.ensure()

from likeness.client.api import ComfyClient  # noqa: E402
from likeness.client.provision import cache_dir, ensure_comfyui  # noqa: E402
from likeness.client.server import EmbeddedServer  # noqa: E402

log = logging.getLogger("bench")

# Model shapes of the benchmark stand-ins (standins/comfy_pack/bench.py). "flux-dev" is the full flux1-dev shape and
# Union-Pro v1's ControlNet (5 double + 10 single blocks); the CPU shapes are what 2 cores can sample in minutes.
SHAPES = {
    "flux-dev": dict(hidden_size=3072, depth=19, depth_single_blocks=38, cn_depth=5, cn_single=10, tokens=256),
    "cpu-wide": dict(hidden_size=512, depth=4, depth_single_blocks=8, cn_depth=1, cn_single=2, tokens=64),
    "cpu-narrow": dict(hidden_size=128, depth=1, depth_single_blocks=2, cn_depth=1, cn_single=1, tokens=256),
    # for images of half the side (a quarter of flux1-dev's tokens, text 256 -> 64): per block, linear layers
    # (12 h^2 T) against attention (2 h T^2) stay near flux1-dev's proportion at full size (exact at hidden 768).
    "cpu-scaled": dict(hidden_size=512, depth=1, depth_single_blocks=1, cn_depth=1, cn_single=0, tokens=64),
}

LOADERS = {
    "UNETLoader", "DualCLIPLoader", "VAELoader", "ControlNetLoader", "UpscaleModelLoader", "LikenessPulidFluxLoader",
    "LikenessEvaClipLoader", "LikenessFaceAnalysisLoader", "LikenessFlorence2Loader", "LikenessFaceJudgeLoader",
    "LikenessTestTinyFlux", "LikenessTestTinyTextEncoder", "LikenessTestTinyVAE", "LikenessTestTinyUnionControlNet",
    "LikenessBenchFlux", "LikenessBenchTextEncoder", "LikenessBenchUnionControlNet",
}  # fmt: skip


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def arg_parser(doc: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc.strip().splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=doc)
    p.add_argument("--quick", action="store_true", help="smoke run: fewer repetitions and steps")
    p.add_argument("--gpu", action="store_true", help="run the server on CUDA with the full Flux-dev shape (random weights)")
    return p


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)


# -- facts about the machine and the versions ----------------------------------------------------------------
def machine(comfyui: Path | None = None) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = ""
    try:
        kb = int(next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")).split()[1])
        ram = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration):
        pass
    load = ", load average %.1f/%.1f/%.1f" % os.getloadavg() if hasattr(os, "getloadavg") else ""
    comfy = "?"
    if comfyui is not None and (comfyui / "comfyui_version.py").is_file():
        comfy = (comfyui / "comfyui_version.py").read_text().split('__version__ = "', 1)[-1].split('"', 1)[0]
    try:
        torch_v = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_v = "?"
    return (
        f"machine: {cpu}, {os.cpu_count()} cores{ram}{load}\n"
        f"versions: Python {platform.python_version()}, torch {torch_v}, ComfyUI {comfy}\n"
        f"command: {' '.join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])}"
    )


def gpu_facts(client: ComfyClient) -> str:
    dev = (client.system_stats().get("devices") or [{}])[0]
    return f"server device: {dev.get('name', '?')} ({dev.get('vram_total', 0) / 2**30:.0f} GiB)"


# -- model files -----------------------------------------------------------------------------------------------
def _source_key() -> str:
    h = hashlib.sha256()
    for p in sorted((ROOT / "standins").glob("*.py")) + [ROOT / "pulid" / "config.py", ROOT / "pulid" / "model.py", ROOT / "eva_clip" / "model.py"]:
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def model_files() -> tuple[Path, dict[str, str]]:
    """The test stand-ins' model files, written once into the cache and reused by every benchmark run.

    Keyed by the stand-in sources; a copy written for older sources is removed (the full-size EVA is 1.2 GB).
    """
    from likeness.standins.models import write_model_files

    root = cache_dir() / "bench-models" / _source_key()
    index = root / "files.json"
    if index.is_file():
        return root / "models", json.loads(index.read_text())
    for old in root.parent.glob("*") if root.parent.is_dir() else []:
        if old.is_dir() and old.name != root.name:  # written for older stand-in sources
            shutil.rmtree(old, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="models-", dir=root))
    files = write_model_files(tmp)
    os.replace(tmp, root / "models")
    index.write_text(json.dumps(files))
    return root / "models", files


def _save_random(path: Path, shapes: dict, prefix: str = "") -> None:
    import torch
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(0)
    sd = {}
    for k, shape in sorted(shapes.items()):
        base = 1.0 if ("norm" in k or "ln" in k) and k.endswith("weight") else 0.0
        std = min(0.05, shape[-1] ** -0.5) if len(shape) >= 2 else 0.02
        sd[prefix + k] = (base + std * torch.randn(shape, generator=gen)).contiguous()
    tmp = path.with_suffix(".tmp")
    save_file(sd, str(tmp))
    os.replace(tmp, path)


def pulid_file(models: Path, flux_dim: int, num_ca: int, full_encoder: bool = False) -> str:
    """A random PuLID-Flux file whose cross-attention has the official shape scaled to ``flux_dim``.

    flux1-dev: flux_dim 3072, 16 heads x 128 (inner 2048), 32 ID tokens of width 2048, one CA per 2nd double and
    4th single block. The ID encoder is tiny (it feeds the tiny EVA stand-in) unless ``full_encoder``: then it has
    the official IDFormer shape and needs the full EVA (eva_file(models, full=True)).
    """
    from likeness.pulid import PulidFluxConfig, build_pulid_flux
    from likeness.standins.weights import tiny_pulid_config

    name = f"bench_pulid_flux_{flux_dim}_{num_ca}{'_full' if full_encoder else ''}.safetensors"
    path = models / "pulid" / name
    if not path.is_file():
        base = PulidFluxConfig.official() if full_encoder else tiny_pulid_config(flux_dim, num_ca)
        cfg = dataclasses.replace(base, flux_dim=flux_dim, num_ca=num_ca, ca_heads=max(1, round(16 * flux_dim / 3072)),
                                  ca_dim_head=128, num_queries=32, id_token_dim=2048)  # fmt: skip
        with _meta():
            shapes = {k: tuple(v.shape) for k, v in build_pulid_flux(cfg).state_dict().items()}
        _save_random(path, shapes)
    return name


def eva_file(models: Path, files: dict, full: bool) -> str:
    """The tiny EVA stand-in, or a random EVA02-CLIP-L-14-336 of the official shape (304 M parameters)."""
    if not full:
        return files["eva"]
    from likeness.eva_clip import OFFICIAL_L336, expected_shapes

    name = "bench_eva02_clip_l336_random.safetensors"
    path = models / "eva_clip" / name
    if not path.is_file():
        _save_random(path, {k: v for k, v in expected_shapes(OFFICIAL_L336).items() if "rope." not in k}, prefix="visual.")
    return name


def _meta():
    import torch

    return torch.device("meta")


def ca_count(depth: int, depth_single_blocks: int) -> int:
    """CA modules PuLID needs: one after every 2nd double block and every 4th single block."""
    return len(range(0, depth, 2)) + len(range(0, depth_single_blocks, 4))


# On CPU the server computes on one thread: its CPU time then measures its work. With two threads on a shared
# two-core machine, a thread that other load descheduled leaves its partner spinning at OpenMP barriers, and CPU
# time grew with the load as much as wall time did.
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# -- the server --------------------------------------------------------------------------------------------------
def _gpu_launcher(base: Path) -> str:
    """EmbeddedServer always passes --cpu (it is the test and demo harness); a GPU benchmark runs it without."""
    path = base / "python-without-cpu-flag.sh"
    path.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do shift; [ "$a" = --cpu ] || set -- "$@" "$a"; done\n'
        f'exec {shlex.quote(sys.executable)} "$@"\n'
    )
    path.chmod(0o755)
    return str(path)


class Bench:
    """An embedded ComfyUI with this pack, and the stand-in pack (standins/comfy_pack: test and benchmark stand-ins from one builder)."""

    def __init__(self, gpu: bool = False, cache_none: bool = False, extra_args: list[str] | None = None):
        if gpu:
            import torch

            if not torch.cuda.is_available():
                raise SystemExit("--gpu: torch sees no CUDA device on this machine (run the CPU benchmarks without --gpu)")
        self.comfyui = ensure_comfyui()
        self.models, self.files = model_files()
        self.base = Path(tempfile.mkdtemp(prefix="likeness-bench-"))
        args = list(extra_args or [])
        if cache_none:
            args.append("--cache-none")
        self.gpu = gpu
        self.server = EmbeddedServer(
            self.comfyui,
            base_dir=self.base,
            custom_nodes={"likeness_standins": ROOT / "standins" / "comfy_pack"},
            models_dir=self.models,
            extra_args=args,
            python=_gpu_launcher(self.base) if gpu else None,
            env=None if gpu else SINGLE_THREAD,
        )
        self.client: ComfyClient | None = None

    def __enter__(self) -> Bench:
        t0 = time.monotonic()
        self.client = self.server.start(timeout=600.0)
        self.client.timeout = 120.0
        self.server.check_pack_loaded(self.client, ["LikenessApplyPulidFlux", "LikenessTestTinyFlux", "LikenessBenchFlux"])
        self.start_s = time.monotonic() - t0
        if self.gpu:
            dev = (self.client.system_stats().get("devices") or [{}])[0]
            if dev.get("type") != "cuda":
                raise SystemExit(f"--gpu: the server runs on {dev.get('type')!r}, not CUDA; no usable GPU here")
        log.info("server up in %.1f s at %s", self.start_s, self.server.url)
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is not None:
            sys.stderr.write(self.server.log_tail(40) + "\n")
        self.server.cleanup()
        shutil.rmtree(self.base, ignore_errors=True)

    def upload(self, arr, name: str) -> str:
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG")
        return self.client.upload_image(buf.getvalue(), name, overwrite=True)["name"]

    def run(self, graph: dict, timeout: float = 3600.0):
        """client.run, each /ws event stamped with the server's CPU seconds on arrival (``cpu``) besides ``t``."""
        pid = self.server.proc.pid

        def stamp(msg: dict) -> None:
            msg["cpu"] = cpu_seconds(pid)

        return self.client.run(graph, timeout=timeout, on_event=stamp)

    def log_since(self, offset: int) -> tuple[str, int]:
        text = self.server.log_text()
        return text[offset:], len(text)


# -- graphs ----------------------------------------------------------------------------------------------------
def bench_nodes(shape: dict, weight_dtype: str = "default") -> dict[str, dict]:
    """Inputs of the benchmark stand-ins for one shape (see SHAPES)."""
    return {
        "flux": {"class_type": "LikenessBenchFlux", "inputs": {
            "seed": 0, "hidden_size": shape["hidden_size"], "depth": shape["depth"],
            "depth_single_blocks": shape["depth_single_blocks"], "weight_dtype": weight_dtype}},
        "clip": {"class_type": "LikenessBenchTextEncoder", "inputs": {"seed": 0, "tokens": shape["tokens"]}},
        "cn": {"class_type": "LikenessBenchUnionControlNet", "inputs": {
            "seed": 0, "hidden_size": shape["hidden_size"], "depth": shape["cn_depth"],
            "depth_single_blocks": shape["cn_single"], "num_modes": 10}},
    }  # fmt: skip


def to_bench(graph: dict, shape: dict, models: Path, weight_dtype: str = "default") -> dict:
    """A stand-in graph (standins.substitution.to_standins) switched to the benchmark stand-ins of ``shape``.

    The PuLID file is swapped for one whose cross-attention matches the model's width and block count.
    """
    nodes = bench_nodes(shape, weight_dtype)
    swap = {"LikenessTestTinyFlux": "flux", "LikenessTestTinyTextEncoder": "clip", "LikenessTestTinyUnionControlNet": "cn"}
    pulid = pulid_file(models, shape["hidden_size"], ca_count(shape["depth"], shape["depth_single_blocks"]))
    out = json.loads(json.dumps(graph))
    for node in out.values():
        if node["class_type"] in swap:
            new = nodes[swap[node["class_type"]]]
            node["class_type"], node["inputs"] = new["class_type"], dict(new["inputs"])
        elif node["class_type"] == "LikenessPulidFluxLoader":
            node["inputs"]["pulid_file"] = pulid
    return out


# -- /ws timing ------------------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads (Linux /proc; 10 ms resolution).

    On a shared machine other processes stretch wall time but hardly the CPU time a fixed piece of work takes,
    so the scripts report ratios of both.
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def node_spans(events: list[dict], key: str = "t") -> list[tuple[str, float, float]]:
    """(node id, start, end) per executed node: from its ``executing`` event to the next one (node None = done).

    ``key``: "t" for wall seconds (the client's monotonic clock), "cpu" for the server's CPU seconds (Bench.run).
    Cached nodes send no ``executing`` event, so they take no time here, as they take none on the server.
    """
    ex = [(e["data"].get("node"), e[key]) for e in events if e.get("type") == "executing"]
    end_t = next((e[key] for e in events if e.get("type") in ("execution_success", "execution_error")), None)
    spans = []
    for i, (node, t) in enumerate(ex):
        if node is None:
            continue
        nxt = ex[i + 1][1] if i + 1 < len(ex) else end_t
        if nxt is not None:
            spans.append((str(node), t, nxt))
    return spans


def progress_times(events: list[dict], node: str | None = None, key: str = "t") -> list[float]:
    return [e[key] for e in events if e.get("type") == "progress" and (node is None or str(e["data"].get("node")) == node)]


def step_deltas(events: list[dict], node: str | None = None, key: str = "t") -> list[float]:
    """Seconds of each sampling step after the first (the first holds model loading and warm-up)."""
    t = progress_times(events, node, key)
    return [b - a for a, b in zip(t, t[1:])]


def per_step(events: list[dict], node: str | None = None, key: str = "t") -> float:
    """Seconds per sampling step, from the first to the last progress event (the first step holds warm-up)."""
    t = progress_times(events, node, key)
    if len(t) < 2:
        raise RuntimeError(f"need at least 2 progress events to time steps, got {len(t)}")
    return (t[-1] - t[0]) / (len(t) - 1)


def first_event(events: list[dict], kind: str, key: str = "t") -> float | None:
    return next((e[key] for e in events if e.get("type") == kind), None)


def median(xs) -> float:
    return statistics.median(xs) if xs else float("nan")


def abba(n: int, variants: list[str]) -> list[str]:
    """Interleaved order: A B B A A B ... so drift over the run hits every variant alike."""
    order = []
    for r in range(n):
        order += variants if r % 2 == 0 else list(reversed(variants))
    return order


def table(rows: list[list], header: list[str]) -> str:
    cells = [[str(c) for c in header]] + [[c if isinstance(c, str) else f"{c:.3f}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
