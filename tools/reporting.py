"""Pictures and pages for ``likeness eval`` and ``likeness dataset``: a matplotlib figure, an image grid with
scores, a contact sheet, and one self-contained HTML report (images embedded as base64, so the file can be
mailed or attached to an issue on its own).

matplotlib is imported inside ``eval_figure`` only, through its object API (``Figure`` + the Agg canvas), so no
global pyplot state or GUI backend is touched.
"""

from __future__ import annotations

import base64
import html
import logging
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw

logger = logging.getLogger(__name__)

__all__ = ["contact_sheet", "eval_figure", "eval_grid", "eval_html", "pack_tiles"]

KEPT_RGB = (46, 160, 67)
DROPPED_RGB = (207, 34, 46)
_GROUP_COLOURS = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def _num(x: Any, fmt: str = ".3f") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return format(x, fmt)
    return str(x)


def _pct(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.0f}%"


def _signed(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+.4f}"


def _finite(values: Sequence[Any]) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]


# ------------------------------------------------------------------------------------------------- figure


def _pairs_panel(ax: Any, pairs: Sequence[dict[str, Any]], base: list[float], same_person_cosine: float | None) -> None:
    """Left panel: one line per pair from its before cosine to its after cosine (green when closer)."""
    for r in pairs:
        b, a = r["cosine_before"], r["cosine"]
        if not (isinstance(b, float) and isinstance(a, float) and math.isfinite(b) and math.isfinite(a)):
            continue
        colour = "#2ca02c" if a > b else ("#d62728" if a < b else "#7f7f7f")
        ax.plot([0, 1], [b, a], "-o", color=colour, alpha=0.8, lw=1.5, ms=4)
    if base:
        ax.axhspan(min(base), max(base), color="#bbbbbb", alpha=0.35, lw=0, label="real vs real range")
    if same_person_cosine is not None:
        ax.axhline(same_person_cosine, color="k", ls="--", lw=1, label="same-person threshold")
    ax.set_xticks([0, 1], ["before", "after"])
    ax.set_xlim(-0.25, 1.25)
    ax.set_ylabel("cosine similarity to the reference")
    ax.set_title(f"before -> after per pair (n={len(pairs)}; green = closer)")
    if base or same_person_cosine is not None:
        ax.legend(loc="lower right", fontsize=8)


def eval_figure(
    rows: Sequence[dict[str, Any]],
    path: Path,
    *,
    same_person_cosine: float | None = None,
    user_threshold: float | None = None,
) -> Path:
    """before -> after cosine per pair (left, when there are pairs) and a histogram of cosine per group with the
    real-vs-real baseline shaded (right). Lines: the judge's same-person cosine and the user threshold."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    pairs = [r for r in rows if r["kind"] == "pair"]
    scored = [r for r in rows if r["kind"] != "baseline"]
    base = _finite([r["cosine"] for r in rows if r["kind"] == "baseline"])
    fig = Figure(figsize=(12 if pairs else 7, 4.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2) if pairs else [fig.subplots(1, 1)]
    judge = rows[0]["judge"] if rows else "?"
    if pairs:
        _pairs_panel(axes[0], pairs, base, same_person_cosine)
    ax = axes[-1]
    groups: dict[str, list[float]] = {}
    for r in scored:
        name = f"{r['group']} (after)" if r["kind"] == "pair" else r["group"]
        groups.setdefault(name, []).extend(_finite([r["cosine"]]))
    every = [v for vs in groups.values() for v in vs] + base
    lo, hi = (min(every), max(every)) if every else (0.0, 1.0)
    if same_person_cosine is not None:
        lo, hi = min(lo, same_person_cosine), max(hi, same_person_cosine)
    pad = max(0.01, (hi - lo) * 0.05)
    bins = np.linspace(lo - pad, hi + pad, 31)
    if base:
        ax.axvspan(min(base), max(base), color="#bbbbbb", alpha=0.35, lw=0, label=f"real vs real (n={len(base)})")
        ax.axvline(float(np.mean(base)), color="#555555", lw=1, label="real vs real mean")
    for k, (g, vs) in enumerate(groups.items()):
        if vs:
            ax.hist(vs, bins=bins, alpha=0.6, color=_GROUP_COLOURS[k % len(_GROUP_COLOURS)], label=f"{g} (n={len(vs)})")
    if same_person_cosine is not None:
        ax.axvline(same_person_cosine, color="k", ls="--", lw=1, label=f"same-person {same_person_cosine:.3f}")
    if user_threshold is not None:
        ax.axvline(user_threshold, color="#d62728", ls=":", lw=1.5, label=f"user threshold {user_threshold:g}")
    ax.set_xlabel("cosine similarity to the reference (higher = closer)")
    ax.set_ylabel("images")
    ax.set_title(f"identity scores, judge {judge}")
    ax.legend(fontsize=8)
    fig.savefig(path, format="png")
    return Path(path)


# --------------------------------------------------------------------------------------------------- grids


def _fit_height(img: np.ndarray, height: int, box: Sequence[float] | None) -> tuple[np.ndarray, Any]:
    h, w = img.shape[:2]
    s = height / h
    im = Image.fromarray(img).resize((max(1, round(w * s)), height), Image.BICUBIC)
    return np.asarray(im), (None if box is None else tuple(v * s for v in box))


def _labelled(img: np.ndarray, text: str, box: Sequence[float] | None, size: int = 14) -> np.ndarray:
    """The image with its face box outlined and a caption bar BELOW it (one line per ``\\n``, cut to the width)."""
    im = Image.fromarray(np.ascontiguousarray(img))
    if box is not None:
        ImageDraw.Draw(im).rectangle([float(v) for v in box], outline=(255, 214, 0), width=2)
    font = _font(size)
    lines = []
    for line in text.split("\n"):
        while len(line) > 1 and font.getlength(line) > im.width - 8:
            line = line[:-2] + "\u2026"
        lines.append(line)
    step = size + 4
    out = Image.new("RGB", (im.width, im.height + step * len(lines) + 6), (20, 20, 20))
    out.paste(im, (0, 0))
    draw = ImageDraw.Draw(out)
    for k, line in enumerate(lines):
        draw.text((4, im.height + 3 + k * step), line, fill=(255, 255, 255), font=font)
    return np.asarray(out)


def pack_tiles(tiles: Sequence[np.ndarray], max_width: int = 1800, gap: int = 6, bg: int = 255) -> np.ndarray:
    """Tiles left to right, wrapping at ``max_width``; each row as tall as its tallest tile."""
    if not tiles:
        return np.full((32, 32, 3), bg, np.uint8)
    rows: list[list[np.ndarray]] = [[]]
    width = 0
    for t in tiles:
        if rows[-1] and width + gap + t.shape[1] > max_width:
            rows.append([])
            width = 0
        width += (gap if rows[-1] else 0) + t.shape[1]
        rows[-1].append(t)
    widths = [sum(t.shape[1] for t in r) + gap * (len(r) - 1) for r in rows]
    heights = [max(t.shape[0] for t in r) for r in rows]
    out = np.full((sum(heights) + gap * (len(rows) + 1), max(widths) + 2 * gap, 3), bg, np.uint8)
    y = gap
    for r, h in zip(rows, heights):
        x = gap
        for t in r:
            out[y : y + t.shape[0], x : x + t.shape[1]] = t
            x += t.shape[1] + gap
        y += h + gap
    return out


def eval_grid(
    rows: Sequence[dict[str, Any]],
    items: Sequence[Any],
    cache: Any,
    path: Path,
    *,
    max_items: int = 48,
    height: int = 240,
) -> Path:
    """One tile per scored row (``rows[i]`` belongs to ``items[i]``): before | after for pairs, the image alone
    otherwise, each with its face box and score; the first tile is the first reference photo."""
    tiles = []
    if items:
        ref = items[0].reference[0]
        rec = cache.record(ref)
        img, box = _fit_height(cache.image(ref), height, None if rec is None else rec.box)
        tiles.append(_labelled(img, f"reference\n1 of {len(items[0].reference)} photos", box))
    for row, item in list(zip(rows, items))[:max_items]:
        panels = []
        if item.before is not None:
            rec = cache.record(item.before)
            img, box = _fit_height(cache.image(item.before), height, None if rec is None else rec.box)
            text = "before\n" + ("no face" if row["no_face_before"] else f"cos {_num(row['cosine_before'])}")
            panels.append(_labelled(img, text, box))
        rec = cache.record(item.image)
        img, box = _fit_height(cache.image(item.image), height, None if rec is None else rec.box)
        label = f"{row['group']}/{row['name']}"
        if row["no_face"]:
            text = f"{label}\nno face"
        elif item.before is not None:
            text = f"{label}\ncos {_num(row['cosine'])}  dID {_num(row['delta_id'], '+.3f')}"
        else:
            text = f"{label}\ncos {_num(row['cosine'])}  FED {_num(row['normalized'], '.2f')}"
        panels.append(_labelled(img, text, box))
        tiles.append(np.concatenate(panels, axis=1))
    if len(rows) > max_items:
        logger.info("grid shows the first %d of %d rows (raise --grid-max for more)", max_items, len(rows))
    Image.fromarray(pack_tiles(tiles)).save(path)
    return Path(path)


def contact_sheet(decisions: Sequence[Any], path: Path, *, columns: int = 6, thumb: int = 192) -> Path:
    """Every input as a thumbnail: green frame = kept, red = dropped, with the face box and the reason."""
    font = _font(13)
    label_h = 44
    tiles = []
    for d in decisions:
        cell = Image.new("RGB", (thumb + 8, thumb + 8 + label_h), (255, 255, 255))
        draw = ImageDraw.Draw(cell)
        colour = KEPT_RGB if d.status == "kept" else DROPPED_RGB
        draw.rectangle([0, 0, thumb + 7, thumb + 7], fill=colour)
        if d._thumb is not None:
            t = Image.fromarray(d._thumb)
            ox, oy = 4 + (thumb - t.width) // 2, 4 + (thumb - t.height) // 2
            inner = Image.new("RGB", (thumb, thumb), (235, 235, 235))
            inner.paste(t, (ox - 4, oy - 4))
            cell.paste(inner, (4, 4))
            if d._box is not None and d.width:
                s = t.width / d.width
                x0, y0, x1, y1 = (v * s for v in d._box)
                draw.rectangle([ox + x0, oy + y0, ox + x1, oy + y1], outline=(255, 214, 0), width=2)
                if d.crop_box and d.status == "kept":  # where the training crop was cut
                    cx0, cy0, cx1, cy1 = (float(v) * s for v in d.crop_box.split())
                    draw.rectangle([ox + cx0, oy + cy0, ox + cx1 - 1, oy + cy1 - 1], outline=(0, 170, 255), width=1)
        else:
            draw.rectangle([4, 4, thumb + 3, thumb + 3], fill=(235, 235, 235))
        name = d.file if len(d.file) <= 28 else d.file[:25] + "..."
        if d.status == "kept":
            status = f"KEPT {d.bucket} cos {_num(d.cosine_to_centre)}"
        else:
            extra = f" ({_num(d.cosine_to_centre)})" if d.reason == "identity outlier" else ""
            status = f"DROP: {d.reason}{extra}"
        draw.text((4, thumb + 10), name, fill=(0, 0, 0), font=font)
        draw.text((4, thumb + 26), status, fill=colour, font=font)
        tiles.append(np.asarray(cell))
    cell_w = thumb + 8
    Image.fromarray(pack_tiles(tiles, max_width=columns * (cell_w + 6) + 6)).save(path)
    return Path(path)


# ---------------------------------------------------------------------------------------------------- html


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _table(header: Sequence[str], body: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    lines = []
    for r in body:
        lines.append("<tr>" + "".join(f"<td>{html.escape(_num(v))}</td>" for v in r) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def _summary_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    header = [
        "group", "n", "no-face rate", "cosine mean", "median", "std", "min", "max", "normalised mean",
        "same-person share", "share >= user thr.", "share >= real-vs-real min",
        "pairs: cos before mean", "dID mean", "dID median", "improved share", "SSIM outside mean", "PSNR outside median",
    ]  # fmt: skip
    groups = dict(summary["groups"])
    if summary.get("all") is not None and len(groups) > 1:
        groups["all"] = summary["all"]
    if summary.get("baseline") is not None:
        groups["real vs real (baseline)"] = summary["baseline"]
    body = []
    for g, s in groups.items():
        c, p = s["cosine"], s.get("pairs")
        body.append(
            [g, s["n"], _pct(s["no_face_rate"]), c["mean"], c["median"], c["std"], c["min"], c["max"],
             s["normalized"]["mean"], _pct(s["same_person_rate"]), _pct(s["above_user_threshold_rate"]),
             _pct(s["within_baseline_rate"]),
             p["cosine_before"]["mean"] if p else None, _signed(p["delta_id"]["mean"]) if p else None,
             _signed(p["delta_id"]["median"]) if p else None, _pct(p["improved_rate"]) if p else None,
             p["ssim_outside"]["mean"] if p else None, p["psnr_outside_median"] if p else None]
        )  # fmt: skip
    return header, body


def eval_html(
    path: Path,
    summary: dict[str, Any],
    rows: Sequence[dict[str, Any]],
    cols: Sequence[str],
    *,
    figure: Path | None,
    grid: Path,
    links: dict[str, str],
    definitions: dict[str, str],
) -> Path:
    """One HTML file: summary table, the figure and the grid embedded as base64 PNG, every row, definitions,
    and relative links to the CSV/JSON next to it."""
    sh, sb = _summary_rows(summary)
    region_cols = [c for c in cols if c.startswith("region_")]
    if region_cols and summary.get("all") and summary["all"].get("regions"):
        regions = {g: s.get("regions", {}) for g, s in summary["groups"].items()}
        if summary.get("baseline"):
            regions["real vs real (baseline)"] = summary["baseline"].get("regions", {})
        names = list(next(iter(regions.values())).keys())
        region_table = _table(["group", *names], [[g, *[r.get(n) for n in names]] for g, r in regions.items()])
    else:
        region_table = "<p>Region scores were not computed (pass --parsing with facexlib's parsing_bisenet.pth).</p>"
    shown = [c for c in cols if c not in ("reference", "judge", "metric", "threshold")]
    link_html = " &middot; ".join(f'<a href="{html.escape(v)}">{html.escape(k)}</a>' for k, v in links.items())
    defs = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in definitions.items())
    refs = sorted({r["reference"] for r in rows if r["kind"] != "baseline"})
    if figure is None:
        figure_html = "<p>The figure was skipped: matplotlib is not installed (pip install matplotlib).</p>"
    else:
        figure_html = f'<img alt="before/after and histogram" src="{_data_uri(figure)}">'
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Likeness evaluation</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; margin: 0.5em 0 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 3px 6px; text-align: right; }}
th {{ background: #f2f2f2; }} td:first-child, th:first-child {{ text-align: left; }}
img {{ max-width: 100%; border: 1px solid #ddd; }} dt {{ font-weight: 600; margin-top: 0.4em; }}
.meta {{ color: #555; }}
</style></head><body>
<h1>Likeness evaluation</h1>
<p class="meta">Judge: <b>{html.escape(str(summary.get("judge")))}</b> &middot; metric {html.escape(str(summary.get("metric")))},
same-person threshold {html.escape(_num(summary.get("threshold"), "g"))} &middot; user threshold (cosine)
{html.escape(_num(summary.get("user_threshold"), "g"))} &middot; files: {link_html}</p>
<p class="meta">Reference set(s): {html.escape(" | ".join(refs))}</p>
<h2>Summary</h2>{_table(sh, sb)}
<h2>Region scores (mean masked-region SSIM per group)</h2>{region_table}
<h2>Scores</h2>{figure_html}
<h2>Images</h2><img alt="image grid with scores" src="{_data_uri(grid)}">
<h2>Every row</h2>{_table(shown, [[r.get(c) for c in shown] for r in rows])}
<h2>Definitions</h2><dl>{defs}</dl>
</body></html>
"""
    Path(path).write_text(page, encoding="utf-8")
    return Path(path)
