"""``likeness batch --ray``: one Ray actor per ComfyUI server, the same journal and job model as a local run,
nothing lost or run twice.

The driver (this process) owns the journal and the pairs' tries (``runs.PairRun``: the likeness gate, one
result row per try); the actors only build and run graphs (``runs.GraphBuilder``, as a local run does). Before
a job is dispatched it is marked "submitting" with a token; the actor queues the prompt with that token in
``extra_data``. Actors are created with ``max_restarts`` and ``max_task_retries``, so when an actor dies mid-job
Ray restarts it and re-runs the task, and the task first looks for its token on its server (queue, then
history) and waits for that prompt instead of queuing a second one. A rerun of the same command resumes a job
left "submitting" on the server it was sent to.

Multi-node: start a Ray cluster (``ray start --head`` on one machine, ``ray start --address=HEAD:6379`` on the
others), install this pack on every node, run ComfyUI with Likeness on each GPU machine, then
``RAY_ADDRESS=HEAD:6379 likeness batch --ray --servers http://gpu1:8188,http://gpu2:8188 ...``. Input images
travel to the actors and output files back to the driver as bytes, so no shared file system is needed.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

from .api import ComfyClient, ExecutionFailed, ServerUnavailable
from .jobs import JOB_KEY, TOKEN_KEY, find_prompt_by_token, finished_record
from .journal import Journal
from .runs import GraphBuilder, PairRun, UsageError, fetch_image, scores_from_outputs, scores_record
from .server import IMPORT_ROOT

log = logging.getLogger(__name__)


class RayMissing(UsageError):
    """--ray without Ray installed."""


def require_ray() -> None:
    """Checked before any server is started: --ray needs the optional dependency."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise RayMissing("--ray needs Ray: pip install 'likeness[ray]' (or 'ray>=2.40')") from None


class ServerWorker:
    """Runs jobs on one ComfyUI server (a Ray actor; a plain class so it can be tested without Ray)."""

    def __init__(self, url: str, standin: bool, files: dict[str, str], http_timeout: float = 30.0):
        self.url = url
        self.client = ComfyClient(url, timeout=http_timeout)
        self.builder = GraphBuilder(self.client, standin, files)

    def ping(self) -> str:
        self.client.system_stats()
        return self.url

    def execute(self, key: str, spec: dict, token: str, inputs: dict[str, bytes], timeout: float = 3600.0) -> dict:
        """Queue the job (unless its token shows it already queued) and return its outputs as bytes."""
        prompt_id = find_prompt_by_token(self.client, token)
        resumed = "token" if prompt_id is not None else None
        if prompt_id is None:
            graph = self.builder.build(spec, key, read=inputs.__getitem__)
            prompt_id = self.client.queue_prompt(graph, extra_data={TOKEN_KEY: token, JOB_KEY: key})
        try:
            result = self.client.wait(prompt_id, timeout)
        except ExecutionFailed as err:
            return {"state": "failed", "error": str(err), "prompt_id": prompt_id}
        scores, img = scores_from_outputs(result.outputs, self.builder.titles(key, spec))
        files = {r["filename"]: self.client.view(r["filename"], r.get("subfolder", ""), "output")
                 for r in result.images() if r.get("type") == "output"}  # fmt: skip
        report = None if img is None else fetch_image(self.client, img)
        return {"state": "done", "prompt_id": prompt_id, "scores": scores, "files": files, "report": report,
                "resumed": resumed}  # fmt: skip


class _Dispatcher:
    """Keeps every server busy with the next try of some pair; the journal says where each job stands."""

    def __init__(self, ray: Any, actors: dict[str, Any], journal: Journal, jobs_dir: Path, timeout: float):
        self.ray, self.actors, self.journal = ray, actors, journal
        self.jobs_dir, self.timeout = jobs_dir, timeout
        self.free = list(actors)
        self.running: dict[Any, tuple[str, str, float]] = {}
        self.todo: deque[str] = deque()
        self.owner: dict[str, PairRun] = {}

    def add(self, run: PairRun) -> None:
        key = run.next_job()
        if key is None:
            return
        self.owner[key] = run
        job = self.journal.get(key)
        if job.state in ("done", "failed"):  # finished by an earlier run of the same command
            run.record(job, 0.0)
            self.add(run)
        else:
            self.todo.append(key)

    def run(self, runs: list[PairRun]) -> None:
        for run in runs:
            self.add(run)
        while self.todo or self.running:
            if self.todo and not self.free and not self.running:
                raise ServerUnavailable(f"every server is unreachable ({', '.join(self.actors)}); "
                                        "rerun the same command to resume")  # fmt: skip
            self._dispatch()
            ready, _ = self.ray.wait(list(self.running), num_returns=1)
            for ref in ready:
                self._collect(ref)

    def _dispatch(self) -> None:
        while self.todo and self.free:
            key = self.todo.popleft()
            job = self.journal.get(key)
            if job.state == "submitting" and job.token and job.server in self.actors:
                url, token = job.server, job.token  # resume where it was sent, by its token
                if url not in self.free:
                    self.todo.append(key)
                    return
            else:
                url, token = self.free[0], self.journal.submitting(key, self.free[0])
            self.free.remove(url)
            inputs = {p: Path(p).read_bytes() for p in _input_paths(job.spec)}
            ref = self.actors[url].execute.remote(key, job.spec, token, inputs, self.timeout)
            self.running[ref] = (key, url, time.monotonic())

    def _collect(self, ref: Any) -> None:
        key, url, t0 = self.running.pop(ref)
        try:
            res = self.ray.get(ref)
        except (self.ray.exceptions.RayActorError, self.ray.exceptions.RayTaskError) as err:
            self._task_error(key, url, str(err))
            return
        self.free.append(url)
        if res["state"] != "done":
            self.journal.failed(key, res["error"], {"prompt_id": res["prompt_id"]})
        else:
            self.journal.done(key, self._store(key, res))
        run = self.owner[key]
        run.record(self.journal.get(key), time.monotonic() - t0)
        self.add(run)

    def _task_error(self, key: str, url: str, text: str) -> None:
        if "ServerUnavailable" in text:
            log.warning("job %s: server %s is unreachable; it gets no more jobs, the job goes elsewhere", key, url)
            self.journal.reset(key)
            self.todo.append(key)
            return
        self.free.append(url)
        if "PromptLost" in text:
            log.warning("job %s: server %s lost it (restarted); queuing it again", key, url)
            self.journal.reset(key)
            self.todo.append(key)
            return
        self.journal.failed(key, text[:2000])
        run = self.owner[key]
        run.record(self.journal.get(key), 0.0)
        self.add(run)

    def _store(self, key: str, res: dict) -> dict:
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, data in res["files"].items():
            (self.jobs_dir / name).write_bytes(data)
            paths.append(str(self.jobs_dir / name))
        record = scores_record(res["scores"], res["report"], self.jobs_dir, key)
        return finished_record(record, res["prompt_id"], paths, res["resumed"])


def _input_paths(spec: dict) -> list[str]:
    return [*(spec.get("reference") or []), *(spec.get("reference_2") or []),
            *[spec[r] for r in ("target", "enhanced") if spec.get(r)]]  # fmt: skip


def run_on_ray(servers: list[str], standin: bool, files: dict[str, str], runs: list[PairRun], journal: Journal,
               jobs_dir: Path, timeout: float = 3600.0, http_timeout: float = 30.0,
               on_actors: Callable[[dict], None] | None = None) -> None:  # fmt: skip
    """Run every pair's tries over one actor per server (tries of different pairs run side by side)."""
    require_ray()
    import ray

    if not ray.is_initialized():
        env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(IMPORT_ROOT), os.environ.get("PYTHONPATH")]))}
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": env})  # fmt: skip
    remote = ray.remote(max_restarts=3, max_task_retries=3, num_cpus=0)(ServerWorker)
    actors = {url: remote.remote(url, standin, files, http_timeout) for url in servers}
    ray.get([a.ping.remote() for a in actors.values()])
    if on_actors:
        on_actors(actors)
    _Dispatcher(ray, actors, journal, jobs_dir, timeout).run(runs)
