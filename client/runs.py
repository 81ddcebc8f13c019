"""The job model of every run, local or on Ray: a pair of inputs, its tries (the likeness gate), the graph one
try queues, the record its outputs give, and the one result row per try.

A try is a journaled job whose spec (inputs by path and content hash, parameters, seed) is hashed into its key,
so a rerun finds every finished try in the journal and runs only what is left. Local runs (``run_local``) and
Ray runs (``ray_batch.run_on_ray``) drive the same ``PairRun`` objects and build graphs with the same
``GraphBuilder``; rows are assembled only in ``result_row`` and ``PairRun.finish``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..common.errors import LikenessError
from ..contract import DISTANCE_AFTER, DISTANCE_BEFORE, HISTORY_FACE_DISTANCE, HISTORY_REPORT, REPORT_FIELDS
from .api import ComfyClient, PromptRejected
from .filelock import job_lock_path, locked
from .inputs import ImageFile, upload_bytes
from .jobs import JobRunner, job_key, output_prefix, safe_upload_name
from .journal import JobRow, Journal
from .params import Workflow, fill, titles, workflow_named
from .problems import InputError
from .results import CSV_COLUMNS, merge_results
from .safe_names import replace_own, write_new
from .weights import set_upscaler
from .workflow_format import bypass_group, load_workflow, ui_to_api

log = logging.getLogger(__name__)

__all__ = ["CSV_COLUMNS", "ImageFile", "UsageError"]


class UsageError(InputError, LikenessError):
    """A bad argument or input file (exit 2); the message names the value and the fix."""


# -- inputs ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pair:
    """One unit of work: the workflow, its checked input files (absolute paths) and its parameters."""

    name: str
    workflow: str
    reference: list[str]
    target: str
    sha: list[str]
    params: dict
    reference_2: list[str] | None = None
    enhanced: str | None = None
    row: int | None = None  # the batch CSV row / folder it came from (1-based), for the results

    @property
    def inputs(self) -> list[str]:
        return [*self.reference, *(self.reference_2 or []), self.target, *([self.enhanced] if self.enhanced else [])]


def make_pair(name: str, workflow: Workflow, refs: list[str], target: str, params: dict,
              refs_2: list[str] | None = None, enhanced: str | None = None) -> Pair:  # fmt: skip
    """A pair with every input file checked (exit 2 naming the file) before a server is touched."""
    if not refs:
        raise UsageError(f"{name}: give at least one --ref image")
    problem = workflow.check(has_ref2=bool(refs_2))
    if problem:
        raise UsageError(f"{name}: {problem}")
    ref_files = [ImageFile.check(r, "reference") for r in refs]
    ref2_files = [ImageFile.check(r, "reference (face 2)") for r in refs_2 or []]
    tgt = ImageFile.check(target, "before" if enhanced else "target")
    after = [ImageFile.check(enhanced, "after")] if enhanced else []
    return Pair(name, workflow.name, [str(f.path) for f in ref_files], str(tgt.path),
                [f.sha for f in [*ref_files, *ref2_files, tgt, *after]], params,
                [str(f.path) for f in ref2_files] or None, str(after[0].path) if after else None)  # fmt: skip


# -- graphs ------------------------------------------------------------------------------------------------
class GraphBuilder:
    """The API graph of one job spec on one server: the workflow (a crop of a one-face target bypasses its
    second-face group), the stand-ins when the server runs them, the uploaded inputs and the parameters."""

    def __init__(self, client: ComfyClient, standin: bool, files: dict[str, str], upscaler: str | None = None):
        self.client = client
        self.standin = standin
        self.files = files
        self.upscaler = upscaler
        self.graphs: dict[str, dict] = {}  # job key -> the graph queued for it (progress titles, scores)
        self._object_info: dict | None = None

    def prepare(self, spec: dict) -> dict:
        """The workflow of ``spec`` before its inputs are set (its node titles are final)."""
        wf = workflow_named(spec["workflow"])
        if wf.second_face_group and not spec.get("reference_2"):
            if self._object_info is None:
                self._object_info = self.client.object_info()
            graph = ui_to_api(bypass_group(load_workflow(wf.name, api=False), wf.second_face_group), self._object_info)
        else:
            graph = load_workflow(wf.name)
        if self.standin:
            from ..standins.substitution import to_standins  # stand-in runs only: never on a real-weights path

            graph = to_standins(graph, self.files)
        else:
            graph = set_upscaler(graph, self.upscaler)
        return graph

    def build(self, spec: dict, key: str, read: Callable[[str], bytes] | None = None) -> dict:
        """The graph to queue: inputs uploaded (bytes from ``read(path)``, default the local file), parameters set."""
        read = read or upload_bytes  # the file, or its 8-bit RGB working copy when it needed changes
        params = dict(spec["params"])
        for role in ("reference", "reference_2"):
            if spec.get(role):
                params[role] = [self._upload(p, read(p)) for p in spec[role]]
        for role in ("target", "enhanced"):
            if spec.get(role):
                params[role] = self._upload(spec[role], read(spec[role]))
        if workflow_named(spec["workflow"]).saves_result:
            params["output_prefix"] = output_prefix(key)
        graph = fill(self.prepare(spec), **params)
        self.graphs[key] = graph
        return graph

    def titles(self, key: str, spec: dict) -> dict[str, str]:
        """Node titles of a job's graph (rebuilt without uploads when the job was queued by an earlier run)."""
        return titles(self.graphs.get(key) or self.prepare(spec))

    def _upload(self, path: str, data: bytes) -> str:
        return self.client.upload_image(data, safe_upload_name(data, Path(path).name))["name"]


# -- results -----------------------------------------------------------------------------------------------
def _number(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def scores_from_outputs(outputs: dict, node_titles: dict[str, str]) -> tuple[dict, dict | None]:
    """The scores of a workflow's /history outputs (Face Embed Distance records keyed by their node's title:
    before / after / identity; the Enhancement Report's fields) and the report preview's image record."""
    row: dict[str, Any] = {"judge": None}
    report_image = None
    for nid, out in outputs.items():
        title = node_titles.get(nid, "")
        for rec in out.get(HISTORY_FACE_DISTANCE, [])[:1]:
            key = "after" if title == DISTANCE_AFTER else "before" if title == DISTANCE_BEFORE else "identity"
            row[f"distance_{key}"] = _number(rec.get("distance"))
            row[f"similarity_{key}"] = _number(rec.get("cosine_similarity"))
            row["judge"] = rec.get("judge", row["judge"])
        for rep in out.get(HISTORY_REPORT, [])[:1]:
            for k in REPORT_FIELDS:
                row[k] = _number(rep.get(k))
            row["judge"] = rep.get("judge", row["judge"])
            report_image = (out.get("images") or [None])[0]
    return row, report_image


def scores_record(scores: dict, report: bytes | None, jobs_dir: Path, key: str) -> dict:
    """A job's scores with its report preview saved beside its outputs (``report``: the preview's bytes)."""
    record = dict(scores)
    if report is not None:
        record["report_image"] = str(replace_own(jobs_dir, f"{key}_report.png", report))
    return record


def fetch_image(client: ComfyClient, rec: dict) -> bytes:
    return client.view(rec["filename"], rec.get("subfolder", ""), rec.get("type", "temp"))


def score_of(row: dict) -> float:
    """What the likeness gate compares: the after-similarity (score workflow: the identity similarity)."""
    v = row.get("cos_after", row.get("similarity_identity"))
    return -math.inf if v is None else float(v)


def result_row(name: str, job: JobRow, seconds: float, row: int | None = None) -> dict:
    """THE result row of one try (CSV and JSON), the same for local and Ray runs."""
    return {"row": row, "name": name, "try": job.spec["try"] + 1, "seed": job.spec["params"].get("seed"), "job": job.key,
            "state": job.state, "error": job.error, "seconds": round(seconds, 2), "server": job.server,
            **(job.result or {})}  # fmt: skip


# -- one pair's tries (the likeness gate) -----------------------------------------------------------------
@dataclass(frozen=True)
class Gate:
    """Re-run with the next seed until the score reaches ``min_similarity`` or ``max_tries`` were run."""

    min_similarity: float | None = None
    max_tries: int = 1

    def reached(self, row: dict) -> bool:
        return self.min_similarity is None or score_of(row) >= self.min_similarity


class PairRun:
    """One pair's tries on the journal: ``next_job()`` gives the key of the try to run (None when finished);
    ``record(job, seconds)`` takes its outcome; ``finish(out_dir)`` marks the best try and copies its files."""

    def __init__(self, index: int, pair: Pair, gate: Gate, standin: bool, journal: Journal, batch: str,
                 server: str = "", upscaler: str | None = None):  # fmt: skip
        self.index, self.pair, self.gate, self.standin = index, pair, gate, standin
        self.journal, self.batch = journal, batch
        self.server, self.upscaler = server, upscaler
        self.rows: list[dict] = []
        self.failed = False
        self.rejected = False  # the server refused the prompt (exit 4)
        self.finished = False

    @property
    def label(self) -> str:
        return f"{self.pair.name} try {len(self.rows) + 1}" if self.gate.max_tries > 1 else self.pair.name

    def spec(self, t: int) -> dict:
        params = {k: v for k, v in self.pair.params.items() if v is not None}
        if params.get("seed") is not None:
            params["seed"] += t
        p = self.pair
        # everything that changes the result is in the key: inputs, options, the workflow's content, the server
        return {"workflow": p.workflow, "workflow_sha": workflow_sha(p.workflow), "server": self.server,
                "upscaler": self.upscaler, "reference": p.reference, "reference_2": p.reference_2, "target": p.target,
                "enhanced": p.enhanced, "sha": p.sha, "params": params, "standin": self.standin, "try": t}  # fmt: skip

    def next_job(self) -> str | None:
        if self.finished:
            return None
        t = len(self.rows)
        spec = self.spec(t)
        key = job_key(spec)
        self.journal.add(self.batch, self.index * 1000 + t, key, spec)
        return key

    def record(self, job: JobRow, seconds: float) -> None:
        self.rows.append(result_row(self.pair.name, job, seconds, self.pair.row))
        if job.state != "done":
            log.error("%s: %s", self.pair.name, job.error)
            self.failed = self.finished = True
        elif self.gate.reached(self.rows[-1]) or len(self.rows) >= max(1, self.gate.max_tries):
            self.finished = True

    def finish(self, out_dir: Path) -> bool:
        """Mark the best try, copy its image and report to ``<name>_enhanced.png`` / ``_report.png``; returns
        whether the best try reached the gate."""
        done = [r for r in self.rows if r["state"] == "done"]
        best = max(done, key=score_of) if done else None
        for r in self.rows:
            r["best"] = r is best
        if best is None:
            return True
        files = best.get("files") or []
        if files:  # never over a different file: the next free <name>_enhanced-N.png (safe_names)
            kind = "scored" if self.pair.enhanced else "enhanced"
            best["output"] = str(write_new(out_dir, f"{self.pair.name}_{kind}", ".png", Path(files[0]).read_bytes()))
        if best.get("report_image"):
            data = Path(best["report_image"]).read_bytes()
            best["report_image"] = str(write_new(out_dir, f"{self.pair.name}_report", ".png", data))
        return self.gate.reached(best)


def plan(pairs: list[Pair], gate: Gate, standin: bool, journal: Journal, server: str = "",
         upscaler: str | None = None) -> list[PairRun]:  # fmt: skip
    batch = job_key([p.name for p in pairs], gate.min_similarity, gate.max_tries)
    return [PairRun(i, pair, gate, standin, journal, batch, server, upscaler) for i, pair in enumerate(pairs)]


def workflow_sha(name: str) -> str:
    return hashlib.sha256(json.dumps(load_workflow(name), sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Outcome:
    rows: list[dict]
    failed: bool  # a job failed on the server
    gate_missed: bool  # some pair's best try is below --min-similarity
    rejected: bool = False  # some pair's prompt did not validate


def finish(runs: list[PairRun], out_dir: Path) -> Outcome:
    reached = [r.finish(out_dir) for r in runs]
    return Outcome([row for r in runs for row in r.rows], any(r.failed for r in runs), not all(reached),
                   any(r.rejected for r in runs))  # fmt: skip


def write_results(out_dir: Path, rows: list[dict], header: dict) -> None:
    """Merge this run's rows into likeness_results.json / .csv (results.py: every earlier run's rows survive)."""
    merge_results(out_dir, rows, header)


# -- local runs --------------------------------------------------------------------------------------------
def run_local(client: ComfyClient, standin: bool, files: dict[str, str], runs: list[PairRun], journal: Journal,
              jobs_dir: Path, progress: Any = None, job_timeout: float = 3600.0, server_wait: float = 300.0,
              upscaler: str | None = None) -> None:  # fmt: skip
    """Run every pair's tries one job at a time on one server (JobRunner: resumable, never twice; a job another
    process on the same journal is running is waited for, then found done). A rejected prompt fails its pair only."""
    builder = GraphBuilder(client, standin, files, upscaler)

    def collect(job: JobRow, outputs: dict) -> dict:
        scores, img = scores_from_outputs(outputs, builder.titles(job.key, job.spec))
        return scores_record(scores, None if img is None else fetch_image(client, img), jobs_dir, job.key)

    runner = JobRunner(client, journal, jobs_dir, lambda job, _client: builder.build(job.spec, job.key), collect,
                       on_event=progress, job_timeout=job_timeout, server_wait=server_wait)  # fmt: skip
    for run in runs:
        while (key := run.next_job()) is not None:
            if progress is not None:
                progress.start(key, run.label, builder.graphs)
            t0 = time.monotonic()
            try:
                with locked(job_lock_path(journal.path, key)):
                    job = runner.run(key).job
            except PromptRejected:
                job = journal.get(key)  # the runner recorded it failed, with the server's message
                run.rejected = True
            if progress is not None:
                progress.done()
            run.record(job, time.monotonic() - t0)
