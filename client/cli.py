"""The ``likeness`` command (``likeness``, or ``python -m likeness.client`` from a checkout). No torch here.

One argparse tree for every command: ``enhance`` (one target), ``batch`` (a CSV or folder of pairs; ``--ray``
spreads it over servers), ``score`` (score existing images), ``demo`` (enhance the bundled examples) run
workflows on ComfyUI; ``eval`` and ``dataset`` run the local tools (likeness.tools) in this process. Without
``--server`` an embedded headless ComfyUI with this pack is started; it runs on tiny stand-in weights only with
``--standins`` or in ``demo`` without a models folder (session.py), and says so. Relative paths are the
caller's: nothing here changes the working directory. Every flag, path, URL and CSV cell is checked before a
server is started or contacted (preflight.py, inputs.py).

Exit codes (scripts can rely on them; the same for every command; failures.py):
  0 done; 1 a job failed on the server; 2 bad arguments or input files; 3 something the command needs is
  unavailable (the server, not ComfyUI, without the pack; for eval/dataset a model or its package); 4 the
  workflow did not validate or a model file the workflow loads is missing (checked before queueing); 5 the
  likeness gate was not reached in --max-tries; 130 / 143 stopped by SIGINT / SIGTERM (rerun to resume).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..contract import WORKFLOW_SCORE
from ..tools.options import add_dataset_args, add_eval_args, add_judge_options  # argparse only: no numpy
from .console import Progress, out, report
from .exits import EXIT_FAILED, EXIT_GATE, EXIT_OK, EXIT_REJECTED, EXIT_USAGE
from .extras import DEMO_EXTRAS, missing_extras
from .failures import JsonArgumentParser, classify, emit_failure
from .inputs import read_pairs
from .journal import Journal
from .params import DEFAULT_MODE, MODES, fill, judge_choice, workflow_named
from .preflight import check_flags
from .results import new_run_id
from .runs import Gate, GraphBuilder, Pair, UsageError, finish, make_pair, plan, run_local, write_results
from .safe_names import check_name, inside, suggest_name
from .server import PACK_DIR
from .session import ServerOptions, Session, open_session
from .stops import stop_on_signals
from .weights import check_graph_models
from .workflow_format import load_workflow

log = logging.getLogger("likeness")

EXAMPLES = PACK_DIR / "demo"  # not examples/: ComfyUI would serve it in place of workflows/ as the templates


# -- inputs ------------------------------------------------------------------------------------------------
def _params(args: argparse.Namespace) -> dict:
    return {"seed": args.seed, "steps": args.steps, "denoise": args.denoise, "pulid_weight": args.weight,
            "prompt": args.prompt, "working_size": args.working_size,
            "judge": judge_choice(args.judge, args.dlib_detector, args.insightface_pack)}  # fmt: skip


def _read_pairs(args: argparse.Namespace) -> tuple[list[Pair], list[dict]]:
    """The batch's pairs (inputs.py: a bad row is reported with its row number and skipped) and the bad rows."""
    workflow = MODES[args.mode]

    def make(name, refs, target, params, refs_2, row):
        return dataclasses.replace(make_pair(name, workflow, refs, target, params, refs_2), row=row)

    return read_pairs(args.pairs, args.folder, _params(args), make)


# -- running -----------------------------------------------------------------------------------------------
def _server_options(args: argparse.Namespace, pairs: list[Pair], workers: int = 1) -> ServerOptions:
    servers = [u.strip() for u in (getattr(args, "servers", None) or args.server or "").split(",") if u.strip()]
    types = frozenset(n["class_type"] for w in {p.workflow for p in pairs} for n in load_workflow(w).values())
    return ServerOptions(servers, args.standins, args.comfyui, args.models, args.http_timeout, workers, args.upscaler,
                         args.command == "demo", types)  # fmt: skip


def _check_models(s: Session, pairs: list[Pair]) -> None:
    """Exit 4 before anything is queued when the server lacks a file a workflow loads (never on stand-ins)."""
    if s.standin or s.object_info is None:
        return
    builder = GraphBuilder(s.client(), False, {}, s.upscaler)
    for pair in {p.workflow: p for p in pairs}.values():
        judge = pair.params.get("judge")
        graph = builder.prepare({"workflow": pair.workflow, "reference_2": pair.reference_2})
        check_graph_models(fill(graph, judge=judge) if judge else graph, s.object_info, s.where)


def _run(args: argparse.Namespace, pairs: list[Pair], gate: Gate, ray: bool = False, rejected=()) -> int:
    """Every command that runs workflows: servers, the journal, the tries, the results files (always written,
    with the rejected batch rows), the summary."""
    t0 = time.monotonic()
    if ray:
        from .ray_batch import require_ray  # optional dependency, imported only with --ray

        require_ray()
    out_dir = Path(args.output).expanduser().absolute()
    with open_session(_server_options(args, pairs, args.workers if ray else 1)) as s:
        _check_models(s, pairs)
        out_dir.mkdir(parents=True, exist_ok=True)
        inside(out_dir, "jobs/x.png")  # a 'jobs' link to elsewhere is refused before anything runs
        journal = Journal(Path(args.journal).expanduser().absolute() if args.journal else out_dir / "likeness_journal.sqlite")
        if not args.json:
            where = f" on {len(s.urls)} server(s) with Ray" if ray else ""
            out(s.banner() + (f"; {len(pairs)} pair(s){where}" if args.command == "batch" else ""))
        runs = plan(pairs, gate, s.standin, journal, s.identity, s.upscaler)
        bad = [{"row": r["row"], "name": r["name"], "state": "invalid", "error": r["error"]} for r in rejected]
        header = {"standin_weights": s.standin, "server": s.where, "min_similarity": gate.min_similarity, "run": new_run_id()}
        try:
            _execute(args, s, runs, journal, out_dir / "jobs", ray)
        finally:  # Ctrl-C, a lost server: what finished is still in the results files
            result = finish(runs, out_dir)
            rows = [{**r, "run": header["run"]} for r in bad + result.rows]
            write_results(out_dir, rows, header)
    code = (EXIT_USAGE if rejected else EXIT_REJECTED if result.rejected else EXIT_FAILED if result.failed
            else EXIT_GATE if result.gate_missed else EXIT_OK)  # fmt: skip
    return report(args, rows, s.standin, out_dir, code, time.monotonic() - t0)


def _execute(args: argparse.Namespace, s: Session, runs: list, journal: Journal, jobs_dir: Path, ray: bool) -> None:
    if ray:
        from .ray_batch import run_on_ray

        run_on_ray(s.urls, s.standin, s.files, runs, journal, jobs_dir, timeout=args.timeout, http_timeout=args.http_timeout)
        return
    progress = Progress(not args.json and not args.quiet)
    run_local(s.client(), s.standin, s.files, runs, journal, jobs_dir, progress, args.timeout, args.server_wait, s.upscaler)


def cmd_enhance(args: argparse.Namespace) -> int:
    name = check_name(args.name) if args.name is not None else suggest_name(Path(args.target).stem)
    pair = make_pair(name, MODES[args.mode], args.ref, args.target, _params(args), args.ref2)
    return _run(args, [pair], Gate(args.min_similarity, args.max_tries))


def cmd_batch(args: argparse.Namespace) -> int:
    pairs, rejected = _read_pairs(args)
    return _run(args, pairs, Gate(args.min_similarity, args.max_tries), ray=args.ray, rejected=rejected)


def cmd_score(args: argparse.Namespace) -> int:
    params = {"judge": judge_choice(args.judge, args.dlib_detector, args.insightface_pack)}
    name = check_name(args.name) if args.name is not None else suggest_name(Path(args.after).stem)
    pair = make_pair(name, workflow_named(WORKFLOW_SCORE), args.ref, args.before,
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
    g.add_argument("--standins", action="store_true", help="run on tiny random stand-in weights (plumbing only; the banner says "
                   "so); with --server, the stand-in models that server has")  # fmt: skip
    g.add_argument("--upscaler", help="the ESRGAN file in upscale_models to use (default RealESRGAN_x4plus.pth, "
                   "4x-UltraSharp.pth, or the only one there)")  # fmt: skip
    g.add_argument("--comfyui", help="your own ComfyUI installation for the embedded server (default: the pinned 0.3.75)")
    g.add_argument("--models", help="a ComfyUI models folder with the real weights (default: <--comfyui>/models); "
                   "a missing file exits 4 naming it")  # fmt: skip
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
    p = JsonArgumentParser(prog="likeness", description="Likeness: keep a face's identity, through ComfyUI")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = p.add_subparsers(dest="command", required=True)
    _add_workflow_commands(sub)
    for add in (add_eval_args, add_dataset_args):
        add(sub).set_defaults(func=cmd_tool)
    return p


# -- main: every outcome is an exit code (failures.py) -------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """``likeness ...``: returns the exit code; errors are one line (a traceback only with --debug, anywhere on
    the line), with --json also one JSON object on stdout; SIGINT / SIGTERM unwind and stop embedded servers."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    as_json = "--json" in argv
    with stop_on_signals():
        return _main(argv, debug, as_json)


def _main(argv: list[str], debug: bool, as_json: bool) -> int:
    args = None
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except Exception as err:  # noqa: BLE001 - argparse errors (JsonArgumentParser) are input errors
        code, message = classify(err)
        emit_failure(code, message, as_json)
        return code
    if args.func is not cmd_tool:  # the tools set up their own logging
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s", stream=sys.stderr)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        if args.func is not cmd_tool:
            check_flags(args)
        return args.func(args)
    except (Exception, KeyboardInterrupt) as err:  # noqa: BLE001 - the one place every outcome becomes an exit code
        if debug:
            log.exception("likeness: --debug traceback")
        out_dir = getattr(args, "output", None)
        journal = getattr(args, "journal", None) or (str(Path(out_dir) / "likeness_journal.sqlite") if out_dir else None)
        code, message = classify(err, journal)
        emit_failure(code, message, as_json)
        return code


if __name__ == "__main__":
    raise SystemExit(main())
