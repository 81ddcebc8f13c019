"""The arguments of ``likeness eval`` and ``likeness dataset`` (argparse only, so that building the one
``likeness`` parser imports no numpy), and the ``--judge`` options every ``likeness`` command shares."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any  # sub: what ArgumentParser.add_subparsers() returns

from ..client.params import DLIB_DETECTORS, JUDGE_HELP, JUDGES


def add_judge_options(p: argparse.ArgumentParser, default: str | None, local: bool) -> None:
    """The --judge options of every command (one vocabulary: the backend names of face.get_judge);
    ``local``: the judge runs in this process (eval, dataset), else on the server (it names a pack there)."""
    g = p.add_argument_group("face judge (the model that scores identity)")
    shown = default or "the workflow's: insightface, pack buffalo_l"
    g.add_argument("--judge", choices=JUDGES, default=default, help=f"{JUDGE_HELP} (default {shown})")
    g.add_argument("--dlib-detector", choices=DLIB_DETECTORS, default="hog", help="dlib face detector (default hog)")
    if not local:
        g.add_argument("--insightface-pack", default="buffalo_l", metavar="NAME",
                       help="--judge insightface: a pack folder in the server's models/insightface/models (default buffalo_l)")  # fmt: skip
        return
    g.add_argument(
        "--insightface-dir",
        metavar="DIR",
        help="folder holding the pack's .onnx files, e.g. ComfyUI/models/insightface/models/buffalo_l",
    )
    g.add_argument("--upsample", type=int, default=1, help="dlib: upsample the image N times to find small faces")
    g.add_argument("--det-size", type=int, default=640, help="insightface detector input size (default 640)")
    g.add_argument("--provider", choices=("cpu", "cuda"), default="cpu", help="insightface onnxruntime provider")


def _add_tool(sub: Any, name: str, help: str, description: str, *groups) -> argparse.ArgumentParser:
    """A local (no server) command: its own argument groups, then the judge options and the output flags."""
    p = sub.add_parser(name, help=help, description=description)
    for add in groups:
        add(p)
    add_judge_options(p, default="dlib", local=True)
    _tool_output(p)
    return p


def add_eval_args(sub: Any) -> argparse.ArgumentParser:
    return _add_tool(
        sub, "eval", "score generated or before/after images against photos of the person (local, no server)",
        "Score (reference set, before, after) or (reference set, generated) items with the Face Embed Distance / "
        "Enhancement Report code; write CSV, JSON, a figure, an image grid and one HTML report.",
        _eval_inputs, _eval_scoring,
    )  # fmt: skip


def add_dataset_args(sub: Any) -> argparse.ArgumentParser:
    return _add_tool(
        sub, "dataset", "filter, crop and caption photos of one person for LoRA training (local, no server)",
        "Drop photos without a face, with several faces, tiny or blurred faces and identity outliers; crop the rest "
        "around the face to training buckets; write image + .txt captions, decisions.csv and a contact sheet. "
        "Inputs are only read.",
        _dataset_io, _dataset_filters,
    )  # fmt: skip


def _tool_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON summary on stdout instead of text")
    p.add_argument("-v", "--verbose", action="store_true", help="log every image")


def _eval_inputs(ev: argparse.ArgumentParser) -> None:
    """What to score and where the report goes."""
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


def _eval_scoring(ev: argparse.ArgumentParser) -> None:
    """How faces are picked and scored."""
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


def _dataset_io(ds: argparse.ArgumentParser) -> None:
    """Input photos, output folder, captions, crop geometry."""
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


def _dataset_filters(ds: argparse.ArgumentParser) -> None:
    """Which photos are kept."""
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
