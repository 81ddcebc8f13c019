"""The ComfyUI servers a run talks to: given by URL, or embedded headless ones started here (with tiny stand-in
weights when the real model files are absent, said loudly). The same for local and Ray runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..contract import MODEL_FILES
from .api import ComfyClient
from .provision import ensure_comfyui
from .server import IMPORT_ROOT, PACK_DIR, EmbeddedServer, ServerStartError

STANDINS_DIR = PACK_DIR / "standins" / "comfy_pack"


@dataclass(frozen=True)
class ServerOptions:
    """Where to run: ``servers`` (URLs), else ``workers`` embedded servers on ``comfyui`` with ``models``."""

    servers: list[str] = field(default_factory=list)
    standins: bool = False  # the given servers have the test stand-in pack and its tiny files
    comfyui: str | None = None
    models: str | None = None
    http_timeout: float = 30.0
    workers: int = 1


@dataclass
class Session:
    urls: list[str]
    standin: bool
    files: dict[str, str]
    missing: list[str]
    where: str
    http_timeout: float = 30.0

    def client(self, i: int = 0) -> ComfyClient:
        return ComfyClient(self.urls[i], timeout=self.http_timeout)

    def banner(self) -> str:
        if self.standin:
            m = self.missing
            shown = ", ".join(m[:3]) + (f" and {len(m) - 3} more" if len(m) > 3 else "")
            return f"LIKENESS ON STAND-IN RANDOM WEIGHTS (real model files absent: {shown}); images show plumbing, not quality"
        return f"LIKENESS ON REAL WEIGHTS via {self.where}"


def missing_real_weights(models_dir: Path | None) -> list[str]:
    """The model files of the shipped workflows (contract.MODEL_FILES) that ``models_dir`` lacks."""
    if models_dir is None:
        return list(MODEL_FILES)
    return [p for p, alts in MODEL_FILES.items() if not any((models_dir / q).exists() for q in [p, *alts])]


def helper_env() -> dict[str, str]:
    """The environment of a helper process: this copy of the pack importable as ``likeness``."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(IMPORT_ROOT), os.environ.get("PYTHONPATH")]))}


def write_standin_models(models: Path) -> dict[str, str]:
    """The tiny stand-in model files (a helper process: they are written with torch, which the client lacks)."""
    out = subprocess.run([sys.executable, "-m", "likeness.standins", str(models)], env=helper_env(),
                         capture_output=True, text=True)  # fmt: skip
    if out.returncode != 0:
        raise ServerStartError(f"could not write the stand-in model files:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


@contextmanager
def open_session(opts: ServerOptions) -> Iterator[Session]:
    """The servers of a run, checked reachable (exit 3 otherwise); embedded ones are stopped on exit."""
    if opts.servers:
        for url in opts.servers:
            ComfyClient(url, timeout=opts.http_timeout).system_stats()
        missing = ["(--standins given)"] if opts.standins else []
        yield Session(list(opts.servers), opts.standins, {}, missing, ", ".join(opts.servers), opts.http_timeout)
        return
    comfyui = Path(opts.comfyui).resolve() if opts.comfyui else ensure_comfyui()
    models = Path(opts.models).resolve() if opts.models else None
    if models is None and opts.comfyui and (comfyui / "models").is_dir():
        models = comfyui / "models"
    missing = missing_real_weights(models)
    with ExitStack() as stack:
        files: dict[str, str] = {}
        extra = {}
        if missing:
            models = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="likeness-models-")))
            files = write_standin_models(models)
            extra = {"likeness_standins": STANDINS_DIR}
        urls = []
        for i in range(max(1, opts.workers)):
            env = {"CUDA_VISIBLE_DEVICES": str(i)} if opts.workers > 1 and os.environ.get("LIKENESS_RAY_GPUS") else {}
            server = stack.enter_context(EmbeddedServer(comfyui, custom_nodes=extra, models_dir=models, env=env))
            server.start()
            urls.append(server.url)
        where = f"embedded ComfyUI at {', '.join(urls)} ({comfyui})"
        yield Session(urls, bool(missing), files, missing, where, opts.http_timeout)
