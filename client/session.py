"""The ComfyUI servers a run talks to: given by URL, or embedded headless ones started here. The same for local
and Ray runs.

Never a silent stand-in (client/weights.py): tiny stand-in weights run only with ``--standins`` or in ``demo``
with no models folder given, and the banner says so. Otherwise the models folder (``--models``, else
``<--comfyui>/models``, else the pinned ComfyUI's) must hold every file (exit 4 naming each), and every server is
checked to be ComfyUI with this pack (exit 3) and to list the files the workflows load (exit 4, before queueing).
"""

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
from .preflight import check_server
from .provision import comfyui_dir, ensure_comfyui
from .server import IMPORT_ROOT, PACK_DIR, EmbeddedServer, ServerStartError
from .weights import check_models_folder, server_upscaler

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
    upscaler: str | None = None  # --upscaler: the ESRGAN file in upscale_models
    demo: bool = False  # likeness demo: stand-ins when no models folder is given
    class_types: frozenset = frozenset()  # the node types the run's workflows use (checked on the server)


@dataclass
class Session:
    urls: list[str]
    standin: bool
    files: dict[str, str]
    missing: list[str]
    where: str
    http_timeout: float = 30.0
    object_info: dict | None = None  # the first server's (the model-file check)
    upscaler: str | None = None
    identity: str = ""  # what job keys record about the server: its URL, or the embedded install and models

    def client(self, i: int = 0) -> ComfyClient:
        return ComfyClient(self.urls[i], timeout=self.http_timeout)

    def banner(self) -> str:
        if self.standin:
            m = self.missing
            shown = ", ".join(m[:3]) + (f" and {len(m) - 3} more" if len(m) > 3 else "")
            return f"LIKENESS ON STAND-IN RANDOM WEIGHTS ({shown}); images show plumbing, not quality"
        return f"LIKENESS ON REAL WEIGHTS via {self.where}" + (f" (upscaler {self.upscaler})" if self.upscaler else "")


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


def _models_choice(opts: ServerOptions, comfyui: Path) -> tuple[Path | None, str]:
    """The models folder a real run uses and what named it; (None, reason) means stand-ins."""
    if opts.standins:
        return None, "--standins given"
    if opts.models:
        return Path(opts.models).expanduser().absolute(), "--models"
    if opts.comfyui:
        return comfyui / "models", "--comfyui"
    if opts.demo:
        return None, "demo without --models"
    return comfyui / "models", "the pinned ComfyUI's models folder (no --models given)"


def _checked(urls: list[str], opts: ServerOptions) -> dict:
    """Each server is ComfyUI with this pack and the run's nodes (exit 3); returns the first one's /object_info."""
    infos = [check_server(ComfyClient(u, timeout=opts.http_timeout), u, set(opts.class_types)) for u in urls]
    return infos[0]


@contextmanager
def open_session(opts: ServerOptions) -> Iterator[Session]:
    """The servers of a run, checked (exit 3 / 4 before anything is queued); embedded ones are stopped on exit."""
    if opts.servers:
        info = _checked(list(opts.servers), opts)
        upscaler = None if opts.standins else server_upscaler(info, opts.upscaler, opts.servers[0])
        missing = ["--standins given"] if opts.standins else []
        yield Session(list(opts.servers), opts.standins, {}, missing, ", ".join(opts.servers), opts.http_timeout,
                      info, upscaler, ",".join(opts.servers))  # fmt: skip
        return
    comfyui = Path(opts.comfyui).expanduser().resolve() if opts.comfyui else comfyui_dir()
    models, why = _models_choice(opts, comfyui)
    standin = models is None
    upscaler = None if standin else check_models_folder(models, why, opts.upscaler)  # before any download
    comfyui = comfyui if opts.comfyui else ensure_comfyui()
    with ExitStack() as stack:
        files: dict[str, str] = {}
        extra = {}
        if standin:
            models = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="likeness-models-")))
            files = write_standin_models(models)
            extra = {"likeness_standins": STANDINS_DIR}
        urls = []
        for i in range(max(1, opts.workers)):
            env = {"CUDA_VISIBLE_DEVICES": str(i)} if opts.workers > 1 and os.environ.get("LIKENESS_RAY_GPUS") else {}
            server = stack.enter_context(EmbeddedServer(comfyui, custom_nodes=extra, models_dir=models, env=env))
            server.start()
            urls.append(server.url)
        info = _checked(urls, opts)
        where = f"embedded ComfyUI at {', '.join(urls)} ({comfyui})"
        identity = f"embedded {comfyui} " + ("stand-ins" if standin else str(models))
        yield Session(urls, standin, files, [why] if standin else [], where, opts.http_timeout, info, upscaler, identity)
