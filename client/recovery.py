"""Jobs are never stuck: what a rerun does with a job the journal already finished.

A failed job is tried again (its cause - a server without the pack, a missing model, a bad flag - may be
fixed), and the log says what failed last time. A done job whose images were deleted, or whose output folder
was copied elsewhere, is relocated to the images under this output folder, or regenerated when they are gone.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .journal import JobRow, Journal

log = logging.getLogger("likeness")


def _relocate(path: str, jobs_dir: Path) -> str | None:
    p = Path(path)
    if p.is_file():
        return str(p)
    here = jobs_dir / p.name
    return str(here) if here.is_file() else None


def recheck(journal: Journal, job: JobRow, jobs_dir: Path) -> JobRow:
    """``job`` as it should be run now: still done (paths fixed) or reset to pending."""
    if job.state == "failed":
        log.warning("likeness: job %s failed last time (%s); trying it again", job.key, (job.error or "").splitlines()[0][:300])
        journal.reset(job.key)
        return journal.get(job.key)
    if job.state != "done":
        return job
    result = dict(job.result or {})
    files = [_relocate(f, jobs_dir) for f in result.get("files") or []]
    report = result.get("report_image")
    new_report = _relocate(report, jobs_dir) if report else None
    if None in files or (report and new_report is None):
        log.warning("likeness: the images of finished job %s are gone (deleted or the folder was moved); running it again", job.key)
        journal.reset(job.key)
        return journal.get(job.key)
    if files != result.get("files") or new_report != report:
        journal.done(job.key, {**result, "files": files, **({"report_image": new_report} if report else {})})
        return journal.get(job.key)
    return job
