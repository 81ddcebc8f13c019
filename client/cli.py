"""The ``likeness`` command (``likeness``, or ``python -m likeness.client`` from a checkout). No torch here.

One argparse tree for every command: ``enhance`` (one target), ``batch`` (a CSV or folder of pairs; ``--ray``
spreads it over servers), ``score`` (score existing images), ``demo`` (enhance the bundled examples) run
workflows on ComfyUI; ``eval`` and ``dataset`` run the local tools (likeness.tools) in this process. Without
``--server`` an embedded headless ComfyUI with this pack is started; when the real model files are absent it
runs the same workflows on tiny stand-in weights and says so. Relative paths are the caller's: nothing here
changes the working directory.

Exit codes (scripts can rely on them; the same for every command):
  0 done; 1 a job failed on the server; 2 bad arguments or input files; 3 something the command needs is
  unavailable (the server, a model file, or the package that runs it); 4 the workflow did not validate
  (/prompt 400); 5 the likeness gate was not reached in --max-tries.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..common.images import IMAGE_SUFFIXES
from ..contract import WORKFLOW_SCORE
from ..tools.options import add_dataset_args, add_eval_args, add_judge_options  # argparse only: no numpy
from .api import ComfyError, PromptRejected, ServerUnavailable
from .console import Progress, out, report
from .exits import EXIT_FAILED, EXIT_GATE, EXIT_OK, EXIT_REJECTED, EXIT_UNAVAILABLE, EXIT_USAGE
from .extras import DEMO_EXTRAS, missing_extras
from .journal import Journal, JournalError
from .params import DEFAULT_MODE, MODES, judge_choice, workflow_named
from .runs import Gate, Pair, UsageError, finish, make_pair, plan, run_local, write_results
from .server import PACK_DIR, ServerStartError
from .session import ServerOptions, Session, open_session
from .workflow_format import WorkflowFormatError

log = logging.getLogger("likeness")

EXAMPLES = PACK_DIR / "examples"


# -- inputs ------------------------------------------------------------------------------------------------
def _params(args: argparse.Namespace) -> dict:
    return {"seed": args.seed, "steps": args.steps, "denoise": args.denoise, "pulid_weight": args.weight,
            "prompt": args.prompt, "working_size": args.working_size,
            "judge": judge_choice(args.judge, args.dlib_detector, args.insightface_pack)}  # fmt: skip


def _pairs_from_csv(path: Path, args: argparse.Namespace) -> list[Pair]:
    if not path.is_file():
        raise UsageError(f"--pairs file {str(path)!r} does not exist")
    pairs = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"reference", "target"} <= set(reader.fieldnames):
            raise UsageError(f"{path}: the CSV needs 'reference' and 'target' columns, found {reader.fieldnames}")
        for i, row in enumerate(reader):
            base = path.parent  # paths in the CSV are relative to the CSV's folder
            refs = [str(base / r.strip()) for r in row["reference"].split(";") if r.strip()]
            refs_2 = [str(base / r.strip()) for r in (row.get("reference_2") or "").split(";") if r.strip()]
            p = _params(args)
            if row.get("seed"):
                p["seed"] = int(row["seed"])
            if row.get("prompt"):
                p["prompt"] = row["prompt"]
            name = row.get("name") or f"{i:04d}_{Path(row['target']).stem}"
            pairs.append(make_pair(name, MODES[args.mode], refs, str(base / row["target"].strip()), p, refs_2))
    return pairs


def _pairs_from_folder(root: Path, args: argparse.Namespace) -> list[Pair]:
    if not root.is_dir():
        raise UsageError(f"--folder {str(root)!r} is not a folder")
    pairs = []
    for sub in sorted(d for d in root.iterdir() if d.is_dir()):
        imgs = sorted(f for f in sub.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        refs = [str(f) for f in imgs if f.stem.lower().startswith("ref") and not f.stem.lower().startswith("ref2")]
        refs_2 = [str(f) for f in imgs if f.stem.lower().startswith("ref2")]  # crop mode: the second face
        targets = [str(f) for f in imgs if f.stem.lower().startswith("target")]
        if len(targets) != 1:
            raise UsageError(f"{sub}: expected one target* image and ref* images, found targets {targets}")
        pairs.append(make_pair(sub.name, MODES[args.mode], refs, targets[0], _params(args), refs_2))
    return pairs


# -- running -----------------------------------------------------------------------------------------------
def _server_options(args: argparse.Namespace, workers: int = 1) -> ServerOptions:
    servers = [u.strip() for u in (getattr(args, "servers", None) or args.server or "").split(",") if u.strip()]
    return ServerOptions(servers, args.standins, args.comfyui, args.models, args.http_timeout, workers)


def _run(args: argparse.Namespace, pairs: list[Pair], gate: Gate, ray: bool = False) -> int:
    """Every command that runs workflows: servers, the journal, the tries, the results files, the summary."""
    t0 = time.monotonic()
    if ray:
        from .ray_batch import require_ray  # optional dependency, imported only with --ray

        require_ray()
    out_dir = Path(args.output).resolve()
    with open_session(_server_options(args, args.workers if ray else 1)) as s:
        out_dir.mkdir(parents=True, exist_ok=True)
        journal = Journal(Path(args.journal).resolve() if args.journal else out_dir / "likeness_journal.sqlite")
        if not args.json:
            where = f" on {len(s.urls)} server(s) with Ray" if ray else ""
            out(s.banner() + (f"; {len(pairs)} pair(s){where}" if args.command == "batch" else ""))
        runs = plan(pairs, gate, s.standin, journal)
        _execute(args, s, runs, journal, out_dir / "jobs", ray)
        result = finish(runs, out_dir)
        header = {"standin_weights": s.standin, "server": s.where, "min_similarity": gate.min_similarity}
        write_results(out_dir, result.rows, header)
    code = EXIT_FAILED if result.failed else EXIT_GATE if result.gate_missed else EXIT_OK
    return report(args, result.rows, s.standin, out_dir, code, time.monotonic() - t0)


def _execute(args: argparse.Namespace, s: Session, runs: list, journal: Journal, jobs_dir: Path, ray: bool) -> None:
    if ray:
        from .ray_batch import run_on_ray

        run_on_ray(s.urls, s.standin, s.files, runs, journal, jobs_dir, timeout=args.timeout, http_timeout=args.http_timeout)
        return
    progress = Progress(not args.json and not args.quiet)
    run_local(s.client(), s.standin, s.files, runs, journal, jobs_dir, progress, args.timeout, args.server_wait)


def cmd_enhance(args: argparse.Namespace) -> int:
    name = args.name or Path(args.target).stem
    pair = make_pair(name, MODES[args.mode], args.ref, args.target, _params(args), args.ref2)
    return _run(args, [pair], Gate(args.min_similarity, args.max_tries))


def cmd_batch(args: argparse.Namespace) -> int:
    pairs = _pairs_from_csv(Path(args.pairs), args) if args.pairs else _pairs_from_folder(Path(args.folder), args)
    if not pairs:
        raise UsageError("no pairs found")
    return _run(args, pairs, Gate(args.min_similarity, args.max_tries), ray=args.ray)


def cmd_score(args: argparse.Namespace) -> int:
    params = {"judge": judge_choice(args.judge, args.dlib_detector, args.insightface_pack)}
    pair = make_pair(args.name or Path(args.after).stem, workflow_named(WORKFLOW_SCORE), args.ref, args.before,
                     params, enhanced=args.after)  # fmt: skip
    return _run(args, [pair], Gate())


def cmd_demo(args: argparse.Namespace) -> int:
    if not args.server and (missing := missing_extras(DEMO_EXTRAS)):  # the embedded server runs on this Python
        raise UsageError(missing)
    args.ref, args.target, args.name, args.ref2 = [str(EXAMPLES / "reference.png")], str(EXAMPLES / "target_drifted.png"), "demo", None
    return cmd_enhance(args)


def cmd_tool(args: argparse.Namespace) -> int:
    """eval / dataset: the local tools, in this process (they import numpy/torch, so only when asked)."""
    from ..tools.cli import run

    return run(args)


# -- the parser --------------------------------------------------------------------------------------------
def _server_args(p: argparse.ArgumentParser) -> None:
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


def _generation_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("generation")
    modes = "; ".join(f"{m}: {w.help}" for m, w in MODES.items())
    g.add_argument("--mode", choices=sorted(MODES), default=DEFAULT_MODE, help=f"the workflow ({modes}; default {DEFAULT_MODE})")
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--steps", type=int, help="sampler steps (workflow default 28)")
    g.add_argument("--denoise", type=float, help="img2img denoise (workflow default 0.75)")
    g.add_argument("--weight", type=float, help="PuLID identity weight (workflow default 0.75)")
    g.add_argument("--prompt", help="manual prompt instead of the Florence-2 caption")
    g.add_argument("--working-size", type=int, help="crop mode: side of each face crop in pixels (workflow default 512)")
    g.add_argument("--min-similarity", type=float, help="likeness gate: re-run with a new seed until the after-similarity reaches this")
    g.add_argument("--max-tries", type=int, default=1, help="likeness gate: most tries per target (default 1)")
    add_judge_options(p, default=None, local=False)


def _add_workflow_commands(sub: Any) -> None:
    e = sub.add_parser("enhance", help="enhance one target image with reference photos of the person")
    e.add_argument("--ref", action="append", required=True, help="a reference photo (repeat for several)")
    e.add_argument("--ref2", action="append", help="crop mode: reference photos of the target's second face")
    e.add_argument("--target", required=True, help="the image whose face drifted")
    e.add_argument("--name", help="name of the outputs (default: the target's file name)")
    b = sub.add_parser("batch", help="enhance many pairs from a CSV or a folder; resumable")
    src = b.add_mutually_exclusive_group(required=True)
    src.add_argument("--pairs", help="CSV with columns reference (';'-separated), target [, name, seed, prompt, reference_2]")
    src.add_argument("--folder", help="a folder of sub-folders, each with ref* images, one target* image [and ref2* images]")
    b.add_argument("--ray", action="store_true", help="spread the jobs over several ComfyUI servers with Ray")
    b.add_argument("--servers", help="--ray: comma-separated server URLs (default: start --workers embedded servers)")
    b.add_argument("--workers", type=int, default=2, help="--ray without --servers: embedded servers to start")
    d = sub.add_parser("demo", help="enhance the bundled example images on an embedded ComfyUI")
    for p, func in ((e, cmd_enhance), (b, cmd_batch), (d, cmd_demo)):
        _generation_args(p)
        _server_args(p)
        p.set_defaults(func=func)
    s = sub.add_parser("score", help="score existing images: reference vs before vs after")
    s.add_argument("--ref", action="append", required=True)
    s.add_argument("--before", required=True)
    s.add_argument("--after", required=True)
    s.add_argument("--name")
    add_judge_options(s, default=None, local=False)
    _server_args(s)
    s.set_defaults(func=cmd_score)


def build_parser() -> argparse.ArgumentParser:
    """The one parser of every command."""
    p = argparse.ArgumentParser(prog="likeness", description="Likeness: keep a face's identity, through ComfyUI")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = p.add_subparsers(dest="command", required=True)
    _add_workflow_commands(sub)
    for add in (add_eval_args, add_dataset_args):
        add(sub).set_defaults(func=cmd_tool)
    return p


# -- main: the one exit-code table ---------------------------------------------------------------------------
def _exit_code(err: BaseException) -> int | None:
    if isinstance(err, (UsageError, JournalError, WorkflowFormatError)):
        log.error("likeness: %s", err)
        return EXIT_USAGE
    if isinstance(err, PromptRejected):
        log.error("likeness: the workflow did not validate:\n%s", err)
        return EXIT_REJECTED
    if isinstance(err, (ServerUnavailable, ServerStartError)):
        log.error("likeness: %s", err)
        return EXIT_UNAVAILABLE
    if isinstance(err, ComfyError):
        log.error("likeness: %s", err)
        return EXIT_FAILED
    return None


def main(argv: list[str] | None = None) -> int:
    """``likeness ...``: returns the exit code (argparse's own errors and --help included)."""
    try:
        args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # a usage error (argparse printed it: exit 2) or --help (0)
        return int(exc.code or 0)
    if args.func is not cmd_tool:  # the tools set up their own logging
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s", stream=sys.stderr)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        return args.func(args)
    except Exception as err:  # noqa: BLE001 - every error the table knows becomes one line and its exit code
        code = _exit_code(err)
        if code is None or args.debug:
            raise
        return code


if __name__ == "__main__":
    raise SystemExit(main())
