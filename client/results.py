"""``likeness_results.json`` / ``.csv``: append-and-merge, so every run's rows survive later runs.

Each run gets a ``run`` id (UTC time + pid). Rows are keyed by (job, name): a rerun of the same job replaces its
own row, other runs' rows are kept. The merge happens under a file lock and each file is replaced atomically,
so two processes on one output folder never lose a row. A results file that is not valid JSON is moved aside
(``likeness_results.json.unreadable-<time>``) and named in a warning, never deleted.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import time
from pathlib import Path

from .filelock import locked
from .safe_names import inside, replace_own

log = logging.getLogger("likeness")

CSV_COLUMNS = [
    "run", "row", "name", "try", "best", "seed", "state", "cos_before", "cos_after", "delta_id", "ssim_outside",
    "psnr_outside", "lpips_outside", "no_face_before", "no_face_after", "similarity_identity", "judge", "output",
    "report_image", "seconds", "resumed", "job", "error",
]  # fmt: skip


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"


def _load(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and isinstance(data.get("rows"), list):
            return data
    except (ValueError, UnicodeDecodeError):
        pass
    aside = path.with_name(f"{path.name}.unreadable-{int(time.time())}")
    os.replace(path, aside)
    log.warning("likeness: %s was not a results file; moved aside to %s (its rows are not merged)", path, aside)
    return {}


def _key(row: dict) -> tuple:
    return (row.get("job") or f"row {row.get('row')}", row.get("name"), row.get("try"))


def merge_results(out_dir: Path, rows: list[dict], summary: dict) -> list[dict]:
    """Merge this run's ``rows`` into the folder's results files; returns every row now in them."""
    out_dir = Path(out_dir)
    with locked(out_dir / ".likeness-results.lock"):
        old = _load(inside(out_dir, "likeness_results.json"))
        mine = {_key(r) for r in rows}
        merged = [r for r in old.get("rows", []) if _key(r) not in mine] + rows
        runs = [*old.get("runs", []), {k: v for k, v in summary.items() if k != "rows"}]
        data = {**summary, "runs": runs, "rows": merged}
        replace_own(out_dir, "likeness_results.json", json.dumps(data, indent=2, default=str).encode())
        buf = io.StringIO()
        w = csv.DictWriter(buf, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(merged)
        replace_own(out_dir, "likeness_results.csv", buf.getvalue().encode())
    return merged
