"""``likeness batch --ray``: one Ray actor per ComfyUI server, the same journal, nothing lost or run twice.

The driver (this process) owns the journal. Before a job is dispatched it is marked "submitting" with a
token; the actor queues the prompt with that token in ``extra_data``. Actors are created with
``max_restarts`` and ``max_task_retries``, so when an actor dies mid-job Ray restarts it and re-runs the task,
and the task first looks for its token on its server (queue, then history) and waits for that prompt instead
of queuing a second one. A rerun of the same command resumes a job left "submitting" on the server it was
sent to. Servers are given as URLs (``--servers``) or started here, one embedded ComfyUI per worker (set
``CUDA_VISIBLE_DEVICES`` per GPU).

Multi-node: start a Ray cluster (``ray start --head`` on one machine, ``ray start --address=HEAD:6379`` on the
others), install this pack at the same path on every node, run ComfyUI with Likeness on each GPU machine,
then ``RAY_ADDRESS=HEAD:6379 likeness batch --ray --servers http://gpu1:8188,http://gpu2:8188 ...``. Output
files travel back to the driver as bytes, so no shared file system is needed.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

from .api import ComfyClient, ExecutionFailed, ServerUnavailable
from .jobs import JOB_KEY, OUTPUT_SUBFOLDER, TOKEN_KEY, find_prompt_by_token, job_key
from .journal import Journal
from .server import IMPORT_ROOT

log = logging.getLogger(__name__)


class ServerWorker:
    """Runs jobs on one ComfyUI server (a Ray actor; plain class so it can be tested without Ray)."""

    def __init__(self, url: str, standin: bool, files: dict[str, str]):
        self.url = url
        self.standin = standin
        self.files = files
        self.client = ComfyClient(url)

    def ping(self) -> str:
        self.client.system_stats()
        return self.url

    def execute(self, key: str, spec: dict, token: str, timeout: float = 3600.0) -> dict:
        from .cli import ImageFile, _upload
        from .params import fill
        from .workflow_format import load_workflow

        graph = load_workflow(spec["workflow"])
        if self.standin:
            from ..standins.substitution import to_standins  # stand-in runs only

            graph = to_standins(graph, self.files)
        resumed = True
        prompt_id = find_prompt_by_token(self.client, token)
        if prompt_id is None:
            resumed = False
            params = dict(spec["params"])
            params["reference"] = [_upload(self.client, ImageFile(Path(p), "")) for p in spec["reference"]]
            params["target"] = _upload(self.client, ImageFile(Path(spec["target"]), ""))
            params["output_prefix"] = f"{OUTPUT_SUBFOLDER}/{key}"
            graph = fill(graph, **params)
            prompt_id = self.client.queue_prompt(graph, extra_data={TOKEN_KEY: token, JOB_KEY: key})
        try:
            result = self.client.wait(prompt_id, timeout)
        except ExecutionFailed as err:
            return {"state": "failed", "error": str(err), "prompt_id": prompt_id, "server": self.url}
        files = {}
        for rec in result.images():
            if rec.get("type") == "output":
                files[rec["filename"]] = self.client.view(rec["filename"], rec.get("subfolder", ""), "output")
        from .cli import _titles, scores_from_outputs

        titles = _titles(graph)
        _, img = scores_from_outputs(result.outputs, titles)
        report = None if img is None else self.client.view(img["filename"], img.get("subfolder", ""), img.get("type", "temp"))
        return {
            "state": "done",
            "prompt_id": prompt_id,
            "server": self.url,
            "outputs": result.outputs,
            "titles": titles,
            "files": files,
            "report": report,
            "resumed_by_token": resumed,
        }


def run_jobs_on_ray(
    journal: Journal,
    batch: str,
    pairs: list[dict],
    servers: list[str],
    out_dir: Path,
    standin: bool,
    files: dict[str, str],
    on_actors: Callable[[dict], None] | None = None,
    timeout: float = 3600.0,
) -> list[dict]:
    """Dispatch every pair as a journaled job over one actor per server; returns one row per pair."""
    import ray

    if not ray.is_initialized():
        env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(IMPORT_ROOT), os.environ.get("PYTHONPATH")]))}
        ray.init(
            address=os.environ.get("RAY_ADDRESS") or None,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": env},
        )
    remote = ray.remote(max_restarts=3, max_task_retries=3, num_cpus=0)(ServerWorker)
    actors = {url: remote.remote(url, standin, files) for url in servers}
    ray.get([a.ping.remote() for a in actors.values()])
    if on_actors:
        on_actors(actors)
    keys = []
    for i, pair in enumerate(pairs):
        spec = {"workflow": pair["workflow"], "reference": pair["reference"], "target": pair["target"],
                "sha": pair["sha"], "params": {k: v for k, v in pair["params"].items() if v is not None}, "standin": standin}  # fmt: skip
        key = job_key(spec)
        journal.add(batch, i, key, spec)
        keys.append(key)
    todo = [k for k in keys if journal.get(k).state not in ("done",)]
    free = list(servers)
    running: dict[Any, tuple[str, str]] = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    while todo or running:
        if todo and not free and not running:
            raise ServerUnavailable(f"every server is unreachable ({', '.join(servers)}); rerun the same command to resume")
        while todo and free:
            key = todo.pop(0)
            job = journal.get(key)
            if job.state == "submitting" and job.token and job.server in actors:
                url, token = job.server, job.token  # resume where it was sent, by its token
                if url not in free:
                    todo.append(key)
                    break
            else:
                url, token = free[0], journal.submitting(key, free[0])
            free.remove(url)
            running[actors[url].execute.remote(key, job.spec, token, timeout)] = (key, url)
        ready, _ = ray.wait(list(running), num_returns=1)
        for ref in ready:
            key, url = running.pop(ref)
            try:
                res = ray.get(ref)
            except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as err:
                text = str(err)
                if "ServerUnavailable" in text:
                    log.warning("job %s: server %s is unreachable; it gets no more jobs, the job goes elsewhere", key, url)
                    journal.reset(key)
                    todo.append(key)
                    continue
                free.append(url)
                if "PromptLost" in text:
                    log.warning("job %s: server %s lost it (restarted); queuing it again", key, url)
                    journal.reset(key)
                    todo.append(key)
                    continue
                journal.failed(key, text[:2000])
                continue
            free.append(url)
            if res["state"] != "done":
                journal.failed(key, res["error"], {"prompt_id": res["prompt_id"], "server": res["server"]})
                continue
            paths = []
            for name, data in res["files"].items():
                path = out_dir / name
                path.write_bytes(data)
                paths.append(str(path))
            from .cli import scores_from_outputs

            row, _ = scores_from_outputs(res["outputs"], res["titles"])
            if res["report"]:
                rp = out_dir / f"{key}_report.png"
                rp.write_bytes(res["report"])
                row["report_image"] = str(rp)
            row.update(prompt_id=res["prompt_id"], server=res["server"], files=paths,
                       resumed="token" if res["resumed_by_token"] else None)  # fmt: skip
            journal.done(key, row)
    rows = []
    for pair, key in zip(pairs, keys):
        job = journal.get(key)
        rows.append({"name": pair["name"], "try": 1, "best": job.state == "done", "seed": job.spec["params"].get("seed"),
                     "state": job.state, "error": job.error, "job": key, **(job.result or {})})  # fmt: skip
    return rows


def run_on_ray(args: argparse.Namespace, pairs: list[dict]) -> int:
    """The CLI entry: servers from --servers or embedded ones, then run_jobs_on_ray."""
    from .cli import (
        EXIT_FAILED,
        EXIT_OK,
        STANDINS_DIR,
        WORKFLOWS,
        Session,
        UsageError,
        _banner,
        _out,
        _report,
        _write_results,
        _write_standin_models,
        missing_real_weights,
    )
    from .provision import ensure_comfyui
    from .server import EmbeddedServer

    try:
        import ray  # noqa: F401
    except ImportError:
        raise UsageError("--ray needs Ray: pip install 'ray>=2.40' (or likeness[ray])") from None
    if args.min_similarity is not None or args.max_tries > 1:
        raise UsageError("the likeness gate (--min-similarity/--max-tries) is not available with --ray; run without --ray")
    t0 = time.monotonic()
    for p in pairs:
        p["workflow"] = WORKFLOWS[args.mode]
        if p.get("reference_2"):
            raise UsageError(f"{p['name']}: second-face references are not supported with --ray")
    out_dir = Path(args.output).resolve()
    journal = Journal(Path(args.journal).resolve() if args.journal else out_dir / "likeness_journal.sqlite")
    batch = job_key("ray", [p["name"] for p in pairs])
    with ExitStack() as stack:
        if args.servers:
            servers = [u.strip() for u in args.servers.split(",") if u.strip()]
            standin, files, missing = args.standins, {}, ["(--standins given)"] if args.standins else []
        else:
            comfyui = Path(args.comfyui).resolve() if args.comfyui else ensure_comfyui()
            models = Path(args.models).resolve() if args.models else None
            missing = missing_real_weights(models)
            standin, files, extra = bool(missing), {}, {}
            if standin:
                import tempfile

                models = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="likeness-models-")))
                files = _write_standin_models(models)
                extra = {"likeness_standins": STANDINS_DIR}
            servers = []
            for i in range(max(1, args.workers)):
                env = {"CUDA_VISIBLE_DEVICES": str(i)} if os.environ.get("LIKENESS_RAY_GPUS") else {}
                srv = stack.enter_context(EmbeddedServer(comfyui, custom_nodes=extra, models_dir=models, env=env))
                srv.start()
                servers.append(srv.url)
        s = Session(ComfyClient(servers[0]), standin, files, missing, where=", ".join(servers))
        if not args.json:
            _out(_banner(s) + f"; {len(pairs)} pair(s) on {len(servers)} server(s) with Ray")
        rows = run_jobs_on_ray(journal, batch, pairs, servers, out_dir / "jobs", standin, files, timeout=args.timeout)
        for r in rows:
            if r["state"] == "done" and r.get("files"):
                dest = out_dir / f"{r['name']}_enhanced.png"
                dest.write_bytes(Path(r["files"][0]).read_bytes())
                r["output"] = str(dest)
        _write_results(out_dir, rows, s, args)
        code = EXIT_OK if all(r["state"] == "done" for r in rows) else EXIT_FAILED
        return _report(rows, s, args, code, t0)
