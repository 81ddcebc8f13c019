"""The offline tools' commands, ``likeness eval`` and ``likeness dataset``: parsed by the one ``likeness`` parser
(likeness.client.cli, arguments in tools/options.py) and run in its process, locally on the CPU, no ComfyUI server.

Exit codes (the table of client/exits.py): 0 done; 2 bad arguments or inputs (the message names the value and
the fix); 3 a model or the package that runs it is missing. Logs go to stderr; stdout carries a short summary,
or with ``--json`` one JSON object and nothing else.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

from ..client.exits import EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE
from ..common.errors import LikenessError
from ..face.errors import FaceError, FaceModelMissingError, JudgeUnavailableError

logger = logging.getLogger("likeness.cli")


# Shown in the HTML report and the README: what each number is.
DEFINITIONS = {
    "cosine": "cosine similarity of the image's face embedding to the reference embedding (the normalised mean of "
    "the references' unit embeddings), in [-1, 1]; higher = closer. Same number as the Face Embed Distance node.",
    "distance / normalized": "the Face Embed Distance for the chosen metric, and min(1, distance / threshold) "
    "with the judge's same-person threshold; normalised < 1 reads as the same person.",
    "same_person": "distance < threshold. Shares in the summary count images without a face as failures.",
    "delta_id": "cos_after - cos_before (Enhancement Report node): > 0 means the identity moved toward the reference.",
    "ssim_outside / psnr_outside": "SSIM and PSNR of before vs after over the pixels outside the face boxes scaled "
    "1.3x (the Enhancement Report node's default mask); 1.0 / inf = untouched.",
    "baseline (real vs real)": "each reference photo scored against the other references (leave one out): the "
    "person's own spread, to read generated scores against.",
    "region_<part>": "masked-region structural similarity: both faces aligned to the FFHQ 512 template by their "
    "5 landmarks and parsed with BiSeNet; the image's luma matched to the reference's mean/std over the face; the "
    "mean SSIM (11x11 Gaussian window) over the pixels of that part (eyes, brows, nose, mouth, skin; face = all "
    "five) in either face, averaged over the references. A pixel measure, not an identity model: pose, expression "
    "and light move it too. region_<part>_iou: overlap of the two part masks.",
}


class MissingPackageError(FaceError):
    """A Python package an optional model needs is not installed (exit code 3, like a missing model)."""


# --------------------------------------------------------------------------------------------- helpers


def make_judge(args: argparse.Namespace) -> Any:
    """The judge the arguments ask for; its ``name`` is recorded next to every number."""
    from ..face.judge import get_judge

    if args.judge == "insightface":
        if not args.insightface_dir:
            raise FaceError("--judge insightface needs --insightface-dir DIR (the folder with the pack's .onnx files)")
        providers = (
            ["CUDAExecutionProvider", "CPUExecutionProvider"] if args.provider == "cuda" else ["CPUExecutionProvider"]
        )
        return get_judge(
            "insightface", model_dir=args.insightface_dir, det_size=(args.det_size, args.det_size), providers=providers
        )
    if args.insightface_dir:
        logger.warning("--insightface-dir is ignored with --judge dlib")
    return get_judge("dlib", detector=args.dlib_detector, upsample=args.upsample)


def _jsonable(x: Any) -> Any:
    if isinstance(x, float):
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    return x


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _pct(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.0f}%"


def _f(x: Any, fmt: str = ".3f") -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def _display_fn(root: Path | None):
    base = None if root is None else (root if root.is_dir() else root.parent).resolve()

    def display(p: Path) -> str:
        p = Path(p)
        if base is not None:
            try:
                return str(p.resolve().relative_to(base))
            except ValueError:
                pass
        return str(p)

    return display


# ------------------------------------------------------------------------------------------------ eval


def _eval_items(args: argparse.Namespace, ev: Any) -> tuple[list, Any]:
    """The items to score (from INPUT or the explicit folders) and how their paths are shown."""
    explicit = bool(args.reference or args.before or args.after or args.generated)
    if args.input is not None and explicit:
        raise FaceError(
            "give either INPUT (a folder or CSV) or --reference with --before/--after/--generated, not both"
        )
    if args.input is None and not explicit:
        raise FaceError("nothing to evaluate: give INPUT (a folder or CSV) or --reference and --generated/--after")
    if args.input is not None:
        return ev.discover(args.input), _display_fn(args.input)
    if not args.reference:
        raise FaceError("--before/--after/--generated need --reference (photos of the person)")
    return ev.build_items(args.reference, before=args.before, after=args.after, generated=args.generated), _display_fn(None)


def _eval_baseline(args: argparse.Namespace, ev: Any, items: list, cache: Any, display: Any) -> list[dict]:
    """Real-vs-real rows: each reference set's photos scored against each other (leave one out)."""
    base_rows: list[dict] = []
    if args.baseline == "off":
        return base_rows
    for refs in dict.fromkeys(item.reference for item in items):
        if len(refs) < 2 and args.baseline == "auto":
            continue
        got = ev.baseline_rows(refs, cache, metric=args.metric, threshold=args.threshold or None, display=display)
        if not got and args.baseline == "on":
            raise FaceError(
                f"--baseline on needs at least 2 reference photos with a face; {len(refs)} given: add more "
                "photos of the person"
            )
        base_rows += got
    return base_rows


def _eval_report(args: argparse.Namespace, ev: Any, rows: list, all_rows: list, items: list, cache: Any,
                 summary: dict, cols: list, same_person_cosine: float, t0: float) -> dict:  # fmt: skip
    """scores.csv, figure.png (with matplotlib), grid.png, summary.json (with the timing since ``t0``) and
    report.html; returns the files written."""
    from . import reporting

    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    files = {"csv": out / "scores.csv", "summary": out / "summary.json", "figure": out / "figure.png",
             "grid": out / "grid.png", "html": out / "report.html"}  # fmt: skip
    ev.write_rows_csv(all_rows, files["csv"], cols)
    try:
        reporting.eval_figure(all_rows, files["figure"], same_person_cosine=same_person_cosine, user_threshold=args.user_threshold)
        figure: Path | None = files["figure"]
    except ImportError as exc:  # matplotlib is optional (ComfyUI does not ship it)
        logger.warning("no figure: matplotlib is not installed (%s); pip install matplotlib", exc)
        figure = None
        del files["figure"]
    reporting.eval_grid(rows, items, cache, files["grid"], max_items=args.grid_max)
    elapsed, n_images = time.perf_counter() - t0, cache.n_images
    summary["timing"] = {"seconds": elapsed, "images": n_images, "seconds_per_image": elapsed / max(1, n_images)}
    summary["files"] = {k: str(v) for k, v in files.items()}
    files["summary"].write_text(json.dumps(_jsonable(summary), indent=2) + "\n", encoding="utf-8")
    reporting.eval_html(files["html"], summary, all_rows, cols, figure=figure, grid=files["grid"],
                        links={f.name: f.name for k, f in files.items() if k != "html"}, definitions=DEFINITIONS)  # fmt: skip
    return files


def _eval_text(args: argparse.Namespace, judge: Any, summary: dict, report: Path, elapsed: float, n_images: int) -> str:
    lines = [f"judge: {judge.name} (metric {args.metric}, same-person threshold {summary['threshold']:g})"]
    named = list(summary["groups"].items()) + (
        [("baseline (real vs real)", summary["baseline"])] if summary["baseline"] else []
    )
    for g, s in named:
        c = s["cosine"]
        line = (
            f"{g}: n={s['n']}, no face {_pct(s['no_face_rate'])}, cosine mean {_f(c['mean'])} median {_f(c['median'])} "
            f"std {_f(c['std'])} [min {_f(c['min'])}, max {_f(c['max'])}], same person {_pct(s['same_person_rate'])}"
        )
        if args.user_threshold is not None and g != "baseline (real vs real)":
            line += f", >= {args.user_threshold:g}: {_pct(s['above_user_threshold_rate'])}"
        if "pairs" in s:
            p = s["pairs"]
            line += f", dID mean {_f(p['delta_id']['mean'], '+.4f')} (improved {_pct(p['improved_rate'])})"
        lines.append(line)
    lines.append(f"report: {report}  ({elapsed:.1f} s, {n_images} images)")
    return "\n".join(lines) + "\n"


def cmd_eval(args: argparse.Namespace) -> int:
    from . import evaluation as ev

    t0 = time.perf_counter()
    items, display = _eval_items(args, ev)
    if args.face_index < 0:
        raise FaceError(f"--face-index {args.face_index} must be >= 0")
    parser_model = None
    if args.parsing is not None:
        from ..face.parsing import load_bisenet

        parser_model = load_bisenet(args.parsing)
    judge = make_judge(args)
    logger.info("judge: %s; %d item(s) to score", judge.name, len(items))
    cache = ev.FaceCache(judge, args.face_order, args.face_index, parser=parser_model)

    def progress(i: int, n: int, item: ev.EvalItem) -> None:
        logger.log(logging.INFO if args.verbose else logging.DEBUG, "[%d/%d] %s/%s", i + 1, n, item.group, item.name)

    rows = ev.score_items(items, cache, metric=args.metric, threshold=args.threshold or None,
                          reference_without_face=args.reference_without_face, display=display, progress=progress)  # fmt: skip
    all_rows = rows + _eval_baseline(args, ev, items, cache, display)
    summary = ev.summarize(all_rows, user_threshold=args.user_threshold)
    sp_cos = ev.same_person_cosine(args.metric, float(summary["threshold"]), judge.normalize_embeddings)
    cols = ev.columns(parser_model is not None)
    files = _eval_report(args, ev, rows, all_rows, items, cache, summary, cols, sp_cos, t0)
    if args.json:
        _write(json.dumps(_jsonable(summary)) + "\n")
        return EXIT_OK
    timing = summary["timing"]
    _write(_eval_text(args, judge, summary, files["html"], timing["seconds"], timing["images"]))
    return EXIT_OK


# --------------------------------------------------------------------------------------------- dataset


def _dataset_options(args: argparse.Namespace) -> Any:
    """DatasetOptions from the parsed flags: every field is the flag of the same name (buckets parsed)."""
    from dataclasses import fields

    from .dataset import DatasetOptions, parse_buckets

    values = {f.name: getattr(args, f.name) for f in fields(DatasetOptions)}
    return DatasetOptions(**{**values, "buckets": parse_buckets(args.buckets)})


def _captioner(args: argparse.Namespace) -> Any:
    """The Florence-2 captioner of --caption florence2 (None for template captions)."""
    captioner = None
    if args.caption == "florence2":
        if args.florence2 is None:
            raise FaceError("--caption florence2 needs --florence2 DIR (the Florence-2 model folder)")
        try:
            from ..caption import florence2 as florence

            captioner = florence.load_florence2(args.florence2)
        except ImportError as exc:
            raise MissingPackageError(
                f"Florence-2 captions need transformers >= 4.56 ({exc}): pip install -U transformers"
            ) from exc
    return captioner


def _dataset_summary(args: argparse.Namespace, result: Any, t0: float) -> dict:
    """summary.json: the decisions, the files and the timing since ``t0``."""
    elapsed = time.perf_counter() - t0
    summary = result.summary()
    summary["timing"] = {
        "seconds": elapsed,
        "images": len(result.decisions),
        "seconds_per_image": elapsed / max(1, len(result.decisions)),
    }
    summary["decisions"] = [
        {k: d.row()[k] for k in ("file", "status", "reason", "detail", "cosine_to_centre", "output")}
        for d in result.decisions
    ]
    summary["files"] = {
        "decisions": str(args.output / "decisions.csv"),
        "contact_sheet": str(args.output / "contact_sheet.png"),
        "train": str(result.train_dir),
    }
    (args.output / "summary.json").write_text(json.dumps(_jsonable(summary), indent=2) + "\n", encoding="utf-8")
    return summary


def _dataset_text(judge: Any, result: Any, summary: dict) -> str:
    lines = [f"judge: {judge.name} (identity outlier below cosine {result.min_similarity:.3f} to the centre)"]
    for d in result.decisions:
        if d.status == "kept":
            lines.append(
                f"  kept     {d.file}: cos {_f(d.cosine_to_centre)} -> {d.output} ({d.bucket}, x{d.scale:.2f})"
            )
        else:
            lines.append(f"  dropped  {d.file}: {d.reason} ({d.detail})")
    dropped = ", ".join(f"{k} {v}" for k, v in summary["dropped"].items()) or "none"
    lines.append(f"kept {summary['kept']} of {summary['inputs']}; dropped: {dropped}")
    lines.append(f"training folder: {result.train_dir}  decisions: {summary['files']['decisions']}  ({summary['timing']['seconds']:.1f} s)")
    return "\n".join(lines) + "\n"


def cmd_dataset(args: argparse.Namespace) -> int:
    from .dataset import check_output, check_template, default_template, prepare_dataset

    t0 = time.perf_counter()
    if args.florence2 is not None and args.caption != "florence2":
        raise FaceError("--florence2 DIR is only used with --caption florence2")
    opts = _dataset_options(args)
    opts.check()
    if not args.input.is_dir():
        raise FaceError(f"input {args.input} is not a folder: give the folder of photos of the person")
    check_template(opts.template or default_template(args.caption == "florence2"), args.caption == "florence2")
    check_output(args.input, args.output, args.overwrite)  # fail before any model is loaded
    captioner = _captioner(args)
    judge = make_judge(args)
    logger.info("judge: %s", judge.name)

    def progress(i: int, n: int, d: Any) -> None:
        what = "usable face" if d.status == "candidate" else f"dropped: {d.reason} ({d.detail})"
        logger.log(logging.INFO if args.verbose else logging.DEBUG, "[%d/%d] %s: %s", i + 1, n, d.file, what)

    result = prepare_dataset(
        args.input, args.output, judge, opts, captioner=captioner, overwrite=args.overwrite, progress=progress
    )
    summary = _dataset_summary(args, result, t0)
    if not summary["kept"]:  # exit 0 with an empty training folder would look like success
        dropped = ", ".join(f"{k} {v}" for k, v in summary["dropped"].items()) or "none"
        raise FaceError(f"no photo was kept of {summary['inputs']} (dropped: {dropped}): see {args.output / 'decisions.csv'}")
    _write(json.dumps(_jsonable(summary)) + "\n" if args.json else _dataset_text(judge, result, summary))
    return EXIT_OK


# ------------------------------------------------------------------------------------------------ main


def run(args: argparse.Namespace) -> int:
    """Run ``likeness eval`` / ``likeness dataset`` (parsed by likeness.client.cli, arguments from
    tools/options.py); returns the exit code of the one table in client/exits.py."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING if args.json else logging.INFO,
            format="%(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
    command = {"eval": cmd_eval, "dataset": cmd_dataset}[args.command]
    try:
        return command(args)
    except (FaceModelMissingError, JudgeUnavailableError, MissingPackageError) as exc:
        logger.error("missing model: %s", exc)
        return _failed(args, EXIT_UNAVAILABLE, f"missing model: {exc}")
    except LikenessError as exc:  # every typed error of the pack (face, caption, weights files)
        logger.error("%s", exc)
        return _failed(args, EXIT_USAGE, str(exc))
    except OSError as exc:  # a folder that cannot be written, a full disk: one line, no traceback
        logger.error("%s: %s", exc.filename or "", exc.strerror or exc)
        return _failed(args, EXIT_USAGE, f"{exc.filename or ''}: {exc.strerror or exc}")


def _failed(args: argparse.Namespace, code: int, message: str) -> int:
    """With --json, one JSON object on stdout for every exit code (the README's promise)."""
    if getattr(args, "json", False):
        _write(json.dumps({"exit_code": code, "error": message}) + "\n")
    return code
