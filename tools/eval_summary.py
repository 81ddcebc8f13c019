"""Summaries of scored evaluation rows: per group statistics, rates and the same-person threshold."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..face.regions import REGION_NAMES

# ---------------------------------------------------------------------------------------------- summary


def _stats(values: Sequence[float]) -> dict[str, float]:
    """mean, median, std (population, ddof=0: the spread of these scores, not an estimate), min, max."""
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=np.float64)
    if v.size == 0:
        return {k: math.nan for k in ("mean", "median", "std", "min", "max")}
    return {
        "mean": float(v.mean()),
        "median": float(np.median(v)),
        "std": float(v.std()),
        "min": float(v.min()),
        "max": float(v.max()),
    }


def _rate(flags: Sequence[bool], n: int) -> float:
    return float(sum(bool(f) for f in flags)) / n if n else math.nan


def _group_summary(
    rows: Sequence[dict[str, Any]], user_threshold: float | None, baseline_min: float | None
) -> dict[str, Any]:
    n = len(rows)
    faced = [r for r in rows if not r["no_face"]]
    cos = [r["cosine"] for r in faced]
    out: dict[str, Any] = {
        "n": n,
        "n_face": len(faced),
        "no_face_rate": _rate([r["no_face"] for r in rows], n),
        "cosine": _stats(cos),
        "normalized": _stats([r["normalized"] for r in faced]),
        # shares are over ALL rows: an image without a face does not count as a match
        "same_person_rate": _rate([r["same_person"] for r in rows], n),
        "above_user_threshold_rate": (
            math.nan if user_threshold is None else _rate([r["cosine"] >= user_threshold for r in faced], n)
        ),
        "within_baseline_rate": (
            math.nan if baseline_min is None else _rate([r["cosine"] >= baseline_min for r in faced], n)
        ),
    }
    pairs = [r for r in rows if r["kind"] == "pair"]
    if pairs:
        both = [r for r in pairs if not r["no_face"] and not r["no_face_before"]]
        out["pairs"] = {
            "n": len(pairs),
            "no_face_before_rate": _rate([r["no_face_before"] for r in pairs], len(pairs)),
            "cosine_before": _stats([r["cosine_before"] for r in pairs if not r["no_face_before"]]),
            "delta_id": _stats([r["delta_id"] for r in both]),
            # improved = delta_id > 0 among pairs with a face on both sides
            "improved_rate": _rate([r["delta_id"] > 0 for r in both], len(both)),
            "ssim_outside": _stats([r["ssim_outside"] for r in pairs]),
            "psnr_outside_median": float(
                np.median([r["psnr_outside"] for r in pairs if not math.isnan(r["psnr_outside"])])
            )
            if any(not math.isnan(r["psnr_outside"]) for r in pairs)
            else math.nan,
        }
    if rows and "region_face" in rows[0]:
        out["regions"] = {name: _stats([r[f"region_{name}"] for r in faced])["mean"] for name in REGION_NAMES}
    return out


def summarize(rows: Sequence[dict[str, Any]], *, user_threshold: float | None = None) -> dict[str, Any]:
    """Summary per group, over all scored rows ("all") and for the real-vs-real baseline.

    Per group: n, no-face rate, cosine mean/median/std/min/max and normalised distance over the images WITH a
    face; shares over ALL images (a missing face never counts as a pass): same-person (distance < threshold),
    cosine >= ``user_threshold``, and cosine >= the baseline's lowest real-vs-real cosine. Pairs add the before
    cosine, delta ID (mean/median/std, share improved) and outside-mask SSIM/PSNR.
    """
    scored = [r for r in rows if r["kind"] != "baseline"]
    base = [r for r in rows if r["kind"] == "baseline"]
    base_cos = [r["cosine"] for r in base if not r["no_face"]]
    baseline_min = min(base_cos) if base_cos else None
    groups: dict[str, list] = {}
    for r in scored:
        groups.setdefault(r["group"], []).append(r)
    first = rows[0] if rows else {}
    summary: dict[str, Any] = {
        "judge": first.get("judge"),
        "metric": first.get("metric"),
        "threshold": first.get("threshold"),
        "user_threshold": user_threshold,
        "groups": {g: _group_summary(rs, user_threshold, baseline_min) for g, rs in groups.items()},
        "all": _group_summary(scored, user_threshold, baseline_min) if scored else None,
        "baseline": _group_summary(base, user_threshold, None) if base else None,
    }
    return summary


