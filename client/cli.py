"""The ``likeness`` command line (``likeness``, or ``python -m likeness.client`` from a checkout). No torch here.

Commands: ``enhance`` (one target), ``batch`` (a CSV or folder of pairs), ``score`` (score existing images),
``demo`` (enhance the bundled examples), ``eval`` and ``dataset`` (local tools, run in a subprocess that
may import torch). Without ``--server`` an embedded headless ComfyUI with this pack is started; when the
real model files are absent it runs the same workflows on tiny stand-in weights and says so.

Exit codes (scripts can rely on them):
  0 done; 1 a job failed on the server; 2 bad arguments or input files; 3 server unavailable;
  4 the workflow did not validate (/prompt 400); 5 the likeness gate was not reached in --max-tries.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .. import contract as C
from ..contract import MODEL_FILES
from .api import ComfyClient, ComfyError, PromptRejected, ServerUnavailable
from .extras import DEMO_EXTRAS, missing_extras
from .jobs import JobRunner, job_key, safe_upload_name
from .journal import Journal, JournalError
from .params import fill
from .provision import ensure_comfyui
from .server import IMPORT_ROOT, PACK_DIR, EmbeddedServer, ServerStartError
from .workflow_format import WorkflowFormatError, bypass_group, load_workflow, ui_to_api

log = logging.getLogger("likeness")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_SERVER, EXIT_REJECTED, EXIT_GATE = 0, 1, 2, 3, 4, 5
STANDINS_DIR = PACK_DIR / "standins" / "comfy_pack"
EXAMPLES = PACK_DIR / "demo"  # not examples/: ComfyUI would serve it in place of workflows/ as the templates
WORKFLOWS = {"whole": C.WORKFLOW_ENHANCE_WHOLE, "crop": C.WORKFLOW_ENHANCE_CROP}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")

# What the shipped workflows load (README model table): path under models/ -> accepted alternatives.
REAL_WEIGHTS = MODEL_FILES


class UsageError(Exception):
    """A bad argument or input file: exit 2 with the message."""


class GateNotReached(Exception):
    pass


def missing_real_weights(models_dir: Path | None) -> list[str]:
    if models_dir is None:
        return list(REAL_WEIGHTS)
    return [p for p, alts in REAL_WEIGHTS.items() if not any((models_dir / q).exists() for q in [p, *alts])]


def _out(msg: str) -> None:
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


# -- inputs ------------------------------------------------------------------------------------------
@dataclass
class ImageFile:
    path: Path
    sha: str

    @classmethod
    def check(cls, path: str | Path, role: str) -> ImageFile:
        p = Path(path).expanduser()
        if not p.is_file():
            raise UsageError(f"{role} image {str(p)!r} does not exist")
        data = p.read_bytes()
        try:
            from PIL import Image

            with Image.open(io.BytesIO(data)) as im:
                im.verify()
        except ImportError:  # pragma: no cover - Pillow ships with ComfyUI and the test extras
            pass
        except Exception as err:  # noqa: BLE001 - any decoder error means the same thing here
            raise UsageError(f"{role} image {str(p)!r} is not a readable image ({err}); re-export it as PNG or JPEG") from None
        return cls(p.resolve(), hashlib.sha256(data).hexdigest())


def _upload(client: ComfyClient, image: ImageFile) -> str:
    data = image.path.read_bytes()
    return client.upload_image(data, safe_upload_name(data, image.path.name))["name"]


# -- the server --------------------------------------------------------------------------------------
@dataclass
class Session:
    client: ComfyClient
    standin: bool
    files: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    where: str = ""


def _tool_env() -> dict[str, str]:
    """The environment of a helper process: this copy of the pack importable as ``likeness``."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(IMPORT_ROOT), os.environ.get("PYTHONPATH")]))}


def _write_standin_models(models: Path) -> dict[str, str]:
    out = subprocess.run([sys.executable, "-m", "likeness.standins", str(models)], env=_tool_env(), capture_output=True, text=True)
    if out.returncode != 0:
        raise ServerStartError(f"could not write the stand-in model files:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


@contextmanager
def session(args: argparse.Namespace) -> Iterator[Session]:
    if args.server:
        client = ComfyClient(args.server, timeout=args.http_timeout)
        client.system_stats()
        # --standins: the server has the test stand-in pack and its tiny files (tests, CI, trying the plumbing).
        yield Session(client, standin=args.standins, missing=["(--standins given)"] if args.standins else [], where=args.server)
        return
    comfyui = Path(args.comfyui).resolve() if args.comfyui else ensure_comfyui()
    models = Path(args.models).resolve() if args.models else None
    if models is None and args.comfyui and (comfyui / "models").is_dir():
        models = comfyui / "models"
    missing = missing_real_weights(models)
    standin = bool(missing)
    with tempfile.TemporaryDirectory(prefix="likeness-models-") as tmp:
        files: dict[str, str] = {}
        extra = {}
        if standin:
            models = Path(tmp)
            files = _write_standin_models(models)
            extra = {"likeness_standins": STANDINS_DIR}
        with EmbeddedServer(comfyui, custom_nodes=extra, models_dir=models) as server:
            client = server.start()
            client.timeout = args.http_timeout
            yield Session(client, standin, files, missing, where=f"embedded ComfyUI at {server.url} ({comfyui})")


def _banner(s: Session) -> str:
    if s.standin:
        shown = ", ".join(s.missing[:3]) + (f" and {len(s.missing) - 3} more" if len(s.missing) > 3 else "")
        return f"LIKENESS ON STAND-IN RANDOM WEIGHTS (real model files absent: {shown}); images show plumbing, not quality"
    return f"LIKENESS ON REAL WEIGHTS via {s.where}"


# -- progress ----------------------------------------------------------------------------------------
class Progress:
    """One status line from /ws events: node title, sampler step i/N, elapsed seconds."""

    def __init__(self, enabled: bool, graphs: dict[str, dict]):
        self.enabled = enabled
        self.graphs = graphs
        self.key = ""
        self.t0 = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.node = ""

    def start(self, key: str, label: str) -> None:
        self.key = key
        self.t0 = time.monotonic()
        self.label = label

    def _title(self, node: str) -> str:
        graph = self.graphs.get(self.key) or {}
        return (graph.get(node, {}).get("_meta") or {}).get("title", node)

    def __call__(self, event: dict) -> None:
        if not self.enabled:
            return
        kind, data = event.get("type"), event.get("data", {})
        line = None
        if kind == "executing" and data.get("node") is not None:
            self.node = self._title(str(data["node"]))
            line = self.node
        elif kind == "progress":
            value, total = int(data.get("value", 0)), int(data.get("max", 1) or 1)
            bar = "#" * int(20 * value / total)
            line = f"{self.node} [{bar:<20}] step {value}/{total}"
        if line is None:
            return
        text = f"[{self.label}] {time.monotonic() - self.t0:6.1f}s {line}"
        if self.tty:
            sys.stderr.write("\r" + text[:118].ljust(118))
            sys.stderr.flush()
        else:
            log.info("%s", text)

    def done(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")


# -- jobs --------------------------------------------------------------------------------------------
def _titles(graph: dict) -> dict[str, str]:
    return {k: (v.get("_meta") or {}).get("title", "") for k, v in graph.items()}


def _number(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


class Jobs:
    """Builds the workflow for a journaled job and turns its /history outputs into a result row."""

    def __init__(self, s: Session, args: argparse.Namespace, out_dir: Path):
        self.s = s
        self.args = args
        self.out_dir = out_dir
        self.graphs: dict[str, dict] = {}
        self._object_info: dict | None = None

    def _workflow(self, name: str, one_face: bool) -> dict:
        if name == WORKFLOWS["crop"] and one_face:
            if self._object_info is None:
                self._object_info = self.s.client.object_info()
            return ui_to_api(bypass_group(load_workflow(name, api=False), "Face 2"), self._object_info)
        return load_workflow(name)

    def build(self, job, client: ComfyClient) -> dict:
        spec = job.spec
        graph = self._workflow(spec["workflow"], not spec.get("reference_2"))
        if self.s.standin:
            from ..standins.substitution import to_standins  # stand-in runs only: never on a real-weights path

            graph = to_standins(graph, self.s.files, steps=spec.get("standin_steps"))
        params = dict(spec["params"])
        for role in ("reference", "reference_2"):
            if spec.get(role):
                params[role] = [_upload(client, ImageFile(Path(p), "")) for p in spec[role]]
        for role in ("target", "enhanced"):
            if spec.get(role):
                params[role] = _upload(client, ImageFile(Path(spec[role]), ""))
        if spec["workflow"] != C.WORKFLOW_SCORE:
            params["output_prefix"] = JobRunner.prefix(job)
        graph = fill(graph, **params)
        self.graphs[job.key] = graph
        return graph

    def collect(self, job, outputs: dict) -> dict:
        graph = self.graphs.get(job.key) or self.build(job, self.s.client)
        row, img = scores_from_outputs(outputs, _titles(graph))
        if img is not None:
            data = self.s.client.view(img["filename"], img.get("subfolder", ""), img.get("type", "temp"))
            path = self.out_dir / "jobs" / f"{job.key}_report.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            row["report_image"] = str(path)
        return row


REPORT_FIELDS = C.REPORT_FIELDS


def scores_from_outputs(outputs: dict, titles: dict[str, str]) -> tuple[dict, dict | None]:
    """A result row from a workflow's /history outputs (Face Embed Distance records keyed by their node's
    title: before / after / identity; the Enhancement Report's fields) and the report preview's image record."""
    row: dict[str, Any] = {"judge": None}
    report_image = None
    for nid, out in outputs.items():
        title = titles.get(nid, "")
        for rec in out.get(C.HISTORY_FACE_DISTANCE, [])[:1]:
            key = "after" if title.startswith(C.DISTANCE_AFTER) else "before" if title.startswith(C.DISTANCE_BEFORE) else "identity"
            row[f"distance_{key}"] = _number(rec.get("distance"))
            row[f"similarity_{key}"] = _number(rec.get("cosine_similarity"))
            row["judge"] = rec.get("judge", row["judge"])
        for rep in out.get(C.HISTORY_REPORT, [])[:1]:
            for k in REPORT_FIELDS:
                row[k] = _number(rep.get(k))
            row["judge"] = rep.get("judge", row["judge"])
            report_image = (out.get("images") or [None])[0]
    return row, report_image


def _score(result: dict) -> float:
    v = result.get("cos_after", result.get("similarity_identity"))
    return -math.inf if v is None else float(v)


def run_pairs(s: Session, args: argparse.Namespace, pairs: list[dict], workflow_of) -> tuple[list[dict], int]:
    """Run each pair (with the likeness gate when asked); returns the rows and the exit code."""
    out_dir = Path(args.output).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    journal = Journal(Path(args.journal).resolve() if args.journal else out_dir / "likeness_journal.sqlite")
    jobs = Jobs(s, args, out_dir)
    progress = Progress(not args.json and not args.quiet, jobs.graphs)
    runner = JobRunner(s.client, journal, out_dir / "jobs", jobs.build, jobs.collect, on_event=progress,
                       job_timeout=args.timeout, server_wait=args.server_wait)  # fmt: skip
    batch = job_key([p["name"] for p in pairs], args.min_similarity, args.max_tries)
    rows, code = [], EXIT_OK
    for i, pair in enumerate(pairs):
        tries = []
        for t in range(max(1, args.max_tries)):
            spec = {
                "workflow": workflow_of(pair),
                "reference": pair.get("reference"),
                "reference_2": pair.get("reference_2"),
                "target": pair.get("target"),
                "enhanced": pair.get("enhanced"),
                "sha": pair["sha"],
                "params": {k: v for k, v in pair.get("params", {}).items() if v is not None}
                | ({"seed": pair["params"]["seed"] + t} if pair.get("params", {}).get("seed") is not None else {}),
                "standin": s.standin,
                "try": t,
            }
            key = job_key(spec)
            journal.add(batch, i * 1000 + t, key, spec)
            progress.start(key, f"{pair['name']} try {t + 1}" if args.max_tries > 1 else pair["name"])
            t0 = time.monotonic()
            outcome = runner.run(key)
            progress.done()
            result = dict(outcome.job.result or {})
            tries.append(
                {"name": pair["name"], "try": t + 1, "seed": spec["params"].get("seed"), "job": key, "state": outcome.job.state,
                 "error": outcome.job.error, "seconds": round(time.monotonic() - t0, 2), **result}  # fmt: skip
            )
            if outcome.job.state != "done":
                code = EXIT_FAILED
                log.error("%s: %s", pair["name"], outcome.job.error)
                break
            if args.min_similarity is None or _score(result) >= args.min_similarity:
                break
        done = [r for r in tries if r["state"] == "done"]
        best = max(done, key=_score) if done else None
        for r in tries:
            r["best"] = r is best
        if best is not None:
            files = best.get("files") or []
            if files:
                dest = out_dir / f"{pair['name']}_{'scored' if pair.get('enhanced') else 'enhanced'}.png"
                shutil.copyfile(files[0], dest)
                best["output"] = str(dest)
            if best.get("report_image"):
                dest = out_dir / f"{pair['name']}_report.png"
                shutil.copyfile(best["report_image"], dest)
                best["report_image"] = str(dest)
            if args.min_similarity is not None and _score(best) < args.min_similarity and code == EXIT_OK:
                code = EXIT_GATE
        rows.extend(tries)
    _write_results(out_dir, rows, s, args)
    return rows, code


CSV_COLUMNS = [
    "name", "try", "best", "seed", "state", "cos_before", "cos_after", "delta_id", "ssim_outside", "psnr_outside",
    "lpips_outside", "no_face_before", "no_face_after", "similarity_identity", "judge", "output", "report_image",
    "seconds", "resumed", "job", "error",
]  # fmt: skip


def _write_results(out_dir: Path, rows: list[dict], s: Session, args: argparse.Namespace) -> None:
    summary = {"standin_weights": s.standin, "server": s.where, "min_similarity": args.min_similarity, "rows": rows}
    (out_dir / "likeness_results.json").write_text(json.dumps(summary, indent=2, default=str))
    with open(out_dir / "likeness_results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


# -- commands ----------------------------------------------------------------------------------------
def _params(args: argparse.Namespace) -> dict:
    return {
        "seed": args.seed,
        "steps": args.steps,
        "denoise": args.denoise,
        "pulid_weight": args.weight,
        "prompt": args.prompt,
        "judge": args.judge,
    }


def _pair(name: str, refs: list[str], target: str, params: dict, refs_2: list[str] | None = None) -> dict:
    if not refs:
        raise UsageError(f"{name}: give at least one --ref image")
    ref_files = [ImageFile.check(r, "reference") for r in refs]
    ref2_files = [ImageFile.check(r, "reference (face 2)") for r in refs_2 or []]
    tgt = ImageFile.check(target, "target")
    return {
        "name": name,
        "reference": [str(f.path) for f in ref_files],
        "reference_2": [str(f.path) for f in ref2_files] or None,
        "target": str(tgt.path),
        "sha": [f.sha for f in ref_files + ref2_files + [tgt]],
        "params": params,
    }


def _report(rows: list[dict], s: Session, args: argparse.Namespace, code: int, t0: float) -> int:
    out_dir = Path(args.output).resolve()
    if args.json:
        _out(json.dumps({"exit_code": code, "standin_weights": s.standin, "output_dir": str(out_dir), "rows": rows}, default=str))
        return code
    for r in rows:
        mark = "*" if r.get("best") else " "
        cos = " ".join(
            f"{k} {r[k]:.3f}" if isinstance(r.get(k), (int, float)) else f"{k} n/a" for k in ("cos_before", "cos_after", "delta_id")
        )
        if r.get("no_face_after"):
            cos += " (no face in the result)"
        _out(f"{mark} {r['name']} try {r['try']} seed {r.get('seed')}: {r['state']} {cos} {r.get('output') or ''}".rstrip())
    _out(f"results: {out_dir / 'likeness_results.csv'} and likeness_results.json")
    if code == EXIT_GATE:
        _out(f"likeness gate: no try reached {args.min_similarity}; the best try is kept (exit {EXIT_GATE})")
    _out(("STAND-IN RANDOM WEIGHTS WERE USED; " if s.standin else "") + f"done in {time.monotonic() - t0:.1f} s")
    return code


def cmd_enhance(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    pair = _pair(args.name or Path(args.target).stem, args.ref, args.target, _params(args), args.ref2)
    workflow = WORKFLOWS[args.mode]
    if pair["reference_2"] and args.mode != "crop":
        raise UsageError("--ref2 (references of a second face) needs --mode crop")
    with session(args) as s:
        if not args.json:
            _out(_banner(s))
        rows, code = run_pairs(s, args, [pair], lambda p: workflow)
        return _report(rows, s, args, code, t0)


def _read_pairs(args: argparse.Namespace) -> list[dict]:
    params = _params(args)
    pairs = []
    if args.pairs:
        path = Path(args.pairs)
        if not path.is_file():
            raise UsageError(f"--pairs file {str(path)!r} does not exist")
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"reference", "target"} <= set(reader.fieldnames):
                raise UsageError(f"{path}: the CSV needs 'reference' and 'target' columns, found {reader.fieldnames}")
            for i, row in enumerate(reader):
                base = path.parent
                refs = [str(base / r.strip()) for r in row["reference"].split(";") if r.strip()]
                p = dict(params)
                if row.get("seed"):
                    p["seed"] = int(row["seed"])
                if row.get("prompt"):
                    p["prompt"] = row["prompt"]
                pairs.append(_pair(row.get("name") or f"{i:04d}_{Path(row['target']).stem}", refs, str(base / row["target"].strip()), p))
    else:
        root = Path(args.folder)
        if not root.is_dir():
            raise UsageError(f"--folder {str(root)!r} is not a folder")
        for sub in sorted(d for d in root.iterdir() if d.is_dir()):
            imgs = sorted(f for f in sub.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            refs = [str(f) for f in imgs if f.stem.lower().startswith("ref")]
            targets = [str(f) for f in imgs if f.stem.lower().startswith("target")]
            if len(targets) != 1:
                raise UsageError(f"{sub}: expected one target* image and ref* images, found targets {targets}")
            pairs.append(_pair(sub.name, refs, targets[0], dict(params)))
    if not pairs:
        raise UsageError("no pairs found")
    return pairs


def cmd_batch(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    pairs = _read_pairs(args)
    if args.ray:
        from .ray_batch import run_on_ray  # optional dependency, imported only here

        return run_on_ray(args, pairs)
    workflow = WORKFLOWS[args.mode]
    with session(args) as s:
        if not args.json:
            _out(_banner(s) + f"; {len(pairs)} pair(s)")
        rows, code = run_pairs(s, args, pairs, lambda p: workflow)
        return _report(rows, s, args, code, t0)


def cmd_score(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    refs = [ImageFile.check(r, "reference") for r in args.ref]
    before, after = ImageFile.check(args.before, "before"), ImageFile.check(args.after, "after")
    pair = {
        "name": args.name or Path(args.after).stem,
        "reference": [str(f.path) for f in refs],
        "target": str(before.path),
        "enhanced": str(after.path),
        "sha": [f.sha for f in [*refs, before, after]],
        "params": {"judge": args.judge},
    }
    args.min_similarity, args.max_tries = None, 1
    with session(args) as s:
        if not args.json:
            _out(_banner(s))
        rows, code = run_pairs(s, args, [pair], lambda p: C.WORKFLOW_SCORE)
        return _report(rows, s, args, code, t0)


def cmd_demo(args: argparse.Namespace) -> int:
    if not args.server and (missing := missing_extras(DEMO_EXTRAS)):  # the embedded server runs on this Python
        raise UsageError(missing)
    args.ref = [str(EXAMPLES / "reference.png")]
    args.target = str(EXAMPLES / "target_drifted.png")
    args.name = "demo"
    args.ref2 = None
    code = cmd_enhance(args)
    return code


def cmd_local_tool(args: argparse.Namespace, rest: list[str]) -> int:
    """eval / dataset: pure local tools that need numpy/torch, so they run as ``python -m likeness.tools.cli``."""
    cmd = [sys.executable, "-m", "likeness.tools.cli", args.command, *rest]
    return subprocess.call(cmd, env=_tool_env())


# -- parser ------------------------------------------------------------------------------------------
def _server_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("server")
    g.add_argument("--server", help="URL of a running ComfyUI with Likeness (default: start an embedded one)")
    g.add_argument("--standins", action="store_true", help="with --server: run on the test stand-in models that server has")
    g.add_argument("--comfyui", help="your own ComfyUI installation for the embedded server (default: the pinned 0.3.75)")
    g.add_argument("--models", help="a ComfyUI models folder with the real weights (default: <--comfyui>/models; else stand-ins)")
    g.add_argument("--timeout", type=float, default=3600.0, help="seconds one job may take (default 3600)")
    g.add_argument("--http-timeout", type=float, default=30.0, help="seconds one HTTP request may take (default 30)")
    g.add_argument("--server-wait", type=float, default=300.0, help="seconds to wait for a lost server to come back (default 300)")
    o = p.add_argument_group("output")
    o.add_argument("--output", "-o", default="outputs", help="folder for images, results CSV/JSON and the journal (default ./outputs)")
    o.add_argument("--journal", help="job journal (SQLite; default <output>/likeness_journal.sqlite); rerun to resume")
    o.add_argument("--json", action="store_true", help="print one JSON object to stdout and nothing else")
    o.add_argument("--quiet", "-q", action="store_true", help="no progress line")


def _generation_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("generation")
    g.add_argument("--mode", choices=sorted(WORKFLOWS), default="whole", help="regenerate the whole image, or face crops pasted back")
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--steps", type=int, help="sampler steps (workflow default 28)")
    g.add_argument("--denoise", type=float, help="img2img denoise (workflow default 0.75)")
    g.add_argument("--weight", type=float, help="PuLID identity weight (workflow default 0.75)")
    g.add_argument("--prompt", help="manual prompt instead of the Florence-2 caption")
    g.add_argument("--judge", help="identity judge of the scores, e.g. 'dlib (hog)' (workflow default insightface: buffalo_l)")
    g.add_argument("--min-similarity", type=float, help="likeness gate: re-run with a new seed until the after-similarity reaches this")
    g.add_argument("--max-tries", type=int, default=1, help="likeness gate: most tries per target (default 1)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="likeness", description="Likeness: keep a face's identity, through ComfyUI")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("enhance", help="enhance one target image with reference photos of the person")
    e.add_argument("--ref", action="append", required=True, help="a reference photo (repeat for several)")
    e.add_argument("--ref2", action="append", help="crop mode: reference photos of the target's second face")
    e.add_argument("--target", required=True, help="the image whose face drifted")
    e.add_argument("--name", help="name of the outputs (default: the target's file name)")
    _generation_options(e)
    _server_options(e)
    e.set_defaults(func=cmd_enhance)
    b = sub.add_parser("batch", help="enhance many pairs from a CSV or a folder; resumable")
    src = b.add_mutually_exclusive_group(required=True)
    src.add_argument("--pairs", help="CSV with columns reference (';'-separated), target [, name, seed, prompt]")
    src.add_argument("--folder", help="a folder of sub-folders, each with ref* images and one target* image")
    b.add_argument("--ray", action="store_true", help="spread the jobs over several ComfyUI servers with Ray")
    b.add_argument("--servers", help="--ray: comma-separated server URLs (default: start --workers embedded servers)")
    b.add_argument("--workers", type=int, default=2, help="--ray without --servers: embedded servers to start")
    _generation_options(b)
    _server_options(b)
    b.set_defaults(func=cmd_batch)
    s = sub.add_parser("score", help="score existing images: reference vs before vs after")
    s.add_argument("--ref", action="append", required=True)
    s.add_argument("--before", required=True)
    s.add_argument("--after", required=True)
    s.add_argument("--name")
    s.add_argument("--judge", help="identity judge, e.g. 'dlib (hog)' (workflow default insightface: buffalo_l)")
    _server_options(s)
    s.set_defaults(func=cmd_score)
    d = sub.add_parser("demo", help="enhance the bundled example images on an embedded ComfyUI")
    _generation_options(d)
    _server_options(d)
    d.set_defaults(func=cmd_demo)
    for name, text in (("eval", "evaluation reports over folders (local, no server)"), ("dataset", "prepare a LoRA dataset (local)")):
        t = sub.add_parser(name, help=text, add_help=False)
        t.set_defaults(func=None)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] in ("eval", "dataset"):
        args = argparse.Namespace(command=argv[0])
        return cmd_local_tool(args, argv[1:])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s", stream=sys.stderr)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        return args.func(args)
    except (UsageError, JournalError, WorkflowFormatError) as err:
        log.error("likeness: %s", err)
        return EXIT_USAGE
    except PromptRejected as err:
        log.error("likeness: the workflow did not validate:\n%s", err)
        return EXIT_REJECTED
    except (ServerUnavailable, ServerStartError) as err:
        log.error("likeness: %s", err)
        return EXIT_SERVER
    except GateNotReached:
        return EXIT_GATE
    except ComfyError as err:
        log.error("likeness: %s", err)
        return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
