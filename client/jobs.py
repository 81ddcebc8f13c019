"""Run journaled jobs on a ComfyUI server: resume after a killed client or server, never run a job twice.

A job's outputs are saved by the workflow under ``output/likeness/<job key>_NNNNN_.png`` (its SaveImage
``filename_prefix`` is set to ``likeness/<key>``), so even when a restarted server has forgotten its
history, the runner can tell "finished, outputs on disk" from "lost, queue again".

Where a job stands on the server is found in this order: /history by prompt id, /queue by prompt id, the
job's token in the extra_data of /queue and /history items (the client died right after POST /prompt), its
output files by prefix. Only when all four say nothing is it queued again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..common.images import IMAGE_SUFFIXES
from .api import ComfyClient, ComfyError, ExecutionFailed, PromptLost, PromptRejected, PromptResult, ServerUnavailable
from .journal import JobRow, Journal
from .recovery import recheck
from .safe_names import replace_own

log = logging.getLogger(__name__)

OUTPUT_SUBFOLDER = "likeness"
TOKEN_KEY = "likeness_job_token"
JOB_KEY = "likeness_job"


def job_key(*parts: Any) -> str:
    """A stable key from the job's inputs (file contents hashed by the caller) and settings."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def output_prefix(key: str) -> str:
    """The SaveImage ``filename_prefix`` of a job: its outputs are ``output/likeness/<key>_NNNNN_.png``."""
    return f"{OUTPUT_SUBFOLDER}/{key}"


def finished_record(record: dict, prompt_id: str, files: list[str], resumed: str | None) -> dict:
    """A finished job's journal record: its scores plus where it ran and the paths of its downloaded images."""
    return {**record, "prompt_id": prompt_id, "files": files, "resumed": resumed or None}


def safe_upload_name(data: bytes, original: str) -> str:
    """A content-addressed file name: the same bytes always map to one name, different bytes never collide,
    and nothing from the user's path reaches the server's file system but a sanitised stem."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(original).stem)[:40].strip("_") or "image"
    ext = Path(original).suffix.lower()
    ext = ext if ext in IMAGE_SUFFIXES else ".png"
    return f"likeness_{stem}_{hashlib.sha256(data).hexdigest()[:16]}{ext}"


def find_prompt_by_token(client: ComfyClient, token: str) -> str | None:
    """The prompt id whose extra_data carries ``token``, in the server's queue or history (None if neither)."""
    q = client.queue()
    for item in q.get("queue_running", []) + q.get("queue_pending", []):
        if len(item) > 3 and isinstance(item[3], dict) and item[3].get(TOKEN_KEY) == token:
            return item[1]
    for pid, entry in client.history_all().items():
        prompt = entry.get("prompt") or []
        if len(prompt) > 3 and isinstance(prompt[3], dict) and prompt[3].get(TOKEN_KEY) == token:
            return pid
    return None


@dataclass
class JobOutcome:
    job: JobRow
    result: PromptResult | None
    files: list[Path]
    resumed: str  # "", "history", "queue", "token", "outputs", "done before"


class JobRunner:
    """Queues one journaled job at a time on one server and waits for it.

    ``build(job, client) -> graph``: uploads the job's inputs and returns the API graph; it must save images
    with ``filename_prefix = prefix(job)``. ``collect(job, outputs) -> dict``: the job's result record from
    the prompt's /history outputs (the runner adds the downloaded file paths).
    """

    def __init__(
        self,
        client: ComfyClient,
        journal: Journal,
        out_dir: str | Path,
        build: Callable[[JobRow, ComfyClient], dict],
        collect: Callable[[JobRow, dict], dict],
        on_event: Callable[[dict], None] | None = None,
        job_timeout: float = 3600.0,
        server_wait: float = 300.0,
    ):
        self.client = client
        self.journal = journal
        self.out_dir = Path(out_dir)
        self.build = build
        self.collect = collect
        self.on_event = on_event
        self.job_timeout = job_timeout
        self.server_wait = server_wait

    @staticmethod
    def prefix(job: JobRow) -> str:
        return output_prefix(job.key)

    # -- where is the job? ---------------------------------------------------------------------
    def _outputs_on_disk(self, job: JobRow) -> list[dict]:
        found = []
        for i in range(1, 1000):
            name = f"{job.key}_{i:05}_.png"
            if self.client.find_output(name, OUTPUT_SUBFOLDER) is None:
                break
            found.append({"filename": name, "subfolder": OUTPUT_SUBFOLDER, "type": "output"})
        return found

    def _locate(self, job: JobRow) -> tuple[str, str | None]:
        """('finished' | 'waiting' | 'outputs' | 'lost', prompt_id)."""
        pid = job.prompt_id
        how = "history"
        if pid is None and job.token:
            pid = find_prompt_by_token(self.client, job.token)
            how = "token"
        if pid is not None:
            entry = self.client.history(pid)
            if entry.get("status", {}).get("status_str") in ("success", "error"):
                return "finished:" + how, pid
            if self.client.is_queued(pid) or entry:
                return "waiting:" + how, pid
        if self._outputs_on_disk(job):
            return "outputs", None
        return "lost", None

    # -- running -------------------------------------------------------------------------------
    def _download(self, job: JobRow, records: list[dict]) -> list[Path]:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for rec in records:
            if rec.get("type") != "output":
                continue
            data = self.client.view(rec["filename"], rec.get("subfolder", ""), "output")
            # only the base name of what the server reports: a hostile server cannot steer the write
            paths.append(replace_own(self.out_dir, Path(str(rec["filename"])).name, data))
        return paths

    def _finish(self, job: JobRow, result: PromptResult, resumed: str) -> JobOutcome:
        record = self.collect(job, result.outputs)
        files = self._download(job, result.images())
        self.journal.done(job.key, finished_record(record, result.prompt_id, [str(p) for p in files], resumed))
        return JobOutcome(self.journal.get(job.key), result, files, resumed)

    def _wait(self, job: JobRow, prompt_id: str, resumed: str) -> JobOutcome:
        try:
            result = self.client.wait(prompt_id, self.job_timeout, self.on_event, self.client.open_ws())
        except ExecutionFailed as err:
            self.journal.failed(job.key, str(err), {"prompt_id": prompt_id})
            return JobOutcome(self.journal.get(job.key), None, [], resumed)
        return self._finish(job, result, resumed)

    def _attempt(self, key: str) -> JobOutcome:
        job = recheck(self.journal, self.journal.get(key), self.out_dir)
        if job.state == "done":
            return JobOutcome(job, None, [Path(p) for p in (job.result or {}).get("files", [])], "done before")
        if job.state in ("submitting", "queued"):
            where, pid = self._locate(job)
            if pid is not None:
                if job.prompt_id != pid:
                    self.journal.queued(key, pid, self.client.base_url)
                log.info("job %s: resuming prompt %s (%s)", key, pid, where)
                return self._wait(self.journal.get(key), pid, where.split(":")[1])
            if where == "outputs":
                files = self._download(job, self._outputs_on_disk(job))
                record = {"files": [str(p) for p in files], "resumed": "outputs", "scores": None,
                          "note": "the server restarted after this job finished; its images were recovered, its scores were lost with the server's history"}  # fmt: skip
                self.journal.done(key, record)
                return JobOutcome(self.journal.get(key), None, files, "outputs")
            log.info("job %s: the server has no trace of it (restarted before finishing it); queuing it again", key)
            self.journal.reset(key)
            job = self.journal.get(key)
        graph = self.build(job, self.client)
        token = self.journal.submitting(key, self.client.base_url)
        ws = self.client.open_ws()
        try:
            prompt_id = self.client.queue_prompt(graph, extra_data={TOKEN_KEY: token, JOB_KEY: key})
        except PromptRejected as err:
            self.journal.failed(key, str(err))
            raise
        self.journal.queued(key, prompt_id, self.client.base_url)
        try:
            result = self.client.wait(prompt_id, self.job_timeout, self.on_event, ws)
        except ExecutionFailed as err:
            self.journal.failed(key, str(err), {"prompt_id": prompt_id})
            return JobOutcome(self.journal.get(key), None, [], "")
        return self._finish(self.journal.get(key), result, "")

    def _wait_for_server(self) -> None:
        deadline = time.monotonic() + self.server_wait
        while True:
            try:
                self.client.system_stats()
                return
            except ComfyError:
                if time.monotonic() > deadline:
                    raise ServerUnavailable(
                        f"{self.client.base_url} did not come back within {self.server_wait:.0f} s; run the same command "
                        "again to resume (the journal keeps every job's state)"
                    ) from None
                time.sleep(1.0)

    def run(self, key: str) -> JobOutcome:
        """Run (or resume) one job; waits for a lost server up to ``server_wait`` seconds, then resumes."""
        while True:
            try:
                return self._attempt(key)
            except PromptLost as err:
                log.warning("job %s: %s; looking for it again", key, err)
            except (ServerUnavailable, ConnectionError) as err:
                log.warning("job %s: server unreachable (%s); waiting for it to come back", key, err)
                self._wait_for_server()
