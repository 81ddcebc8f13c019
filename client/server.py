"""Start and stop a headless ComfyUI with this pack in its custom_nodes (tests, demo, CLI).

The server runs in its own process from a temporary base directory; it is stopped by its PID.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .api import ComfyClient

log = logging.getLogger(__name__)

PACK_DIR = Path(__file__).resolve().parent.parent
# The folder that holds this package as ``likeness`` (site-packages, or a checkout's .importroot/ whose
# ``likeness`` links to the checkout); helper processes get it on PYTHONPATH. Symlinks are kept on purpose.
IMPORT_ROOT = Path(os.path.abspath(__file__)).parent.parent.parent
PACK_NAME = "likeness"


class ServerStartError(RuntimeError):
    """ComfyUI did not come up, or came up without this pack."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedServer:
    """A ComfyUI subprocess on 127.0.0.1 with a private base directory.

    ``custom_nodes`` maps folder names to pack directories linked into ``custom_nodes/``; this pack
    is always linked as ``likeness``. ``models_dir`` (optional) is linked as ``models/`` so user
    weights are used in place; otherwise an empty models tree is created.
    """

    def __init__(
        self,
        comfyui_dir: str | os.PathLike,
        base_dir: str | os.PathLike | None = None,
        custom_nodes: dict[str, os.PathLike] | None = None,
        models_dir: str | os.PathLike | None = None,
        extra_args: list[str] | None = None,
        python: str | None = None,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ):
        self.comfyui_dir = Path(comfyui_dir)
        self._own_base = base_dir is None
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="likeness-comfy-"))
        self.custom_nodes = {PACK_NAME: PACK_DIR, **(custom_nodes or {})}
        self.models_dir = Path(models_dir) if models_dir else None
        self.extra_args = list(extra_args or [])
        self.python = python or sys.executable
        self.port = port or free_port()
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.log_path = self.base_dir / "server.log"
        self._log_file = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def input_dir(self) -> Path:
        return self.base_dir / "input"

    @property
    def output_dir(self) -> Path:
        return self.base_dir / "output"

    @property
    def models(self) -> Path:
        return self.base_dir / "models"

    def prepare(self) -> None:
        for sub in ("custom_nodes", "input", "output", "temp", "user"):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        if self.models_dir is not None and not self.models.exists():
            self.models.symlink_to(self.models_dir, target_is_directory=True)
        else:
            self.models.mkdir(exist_ok=True)
        for name, path in self.custom_nodes.items():
            link = self.base_dir / "custom_nodes" / name
            if not link.exists():
                link.symlink_to(Path(path).resolve(), target_is_directory=True)

    def start(self, timeout: float = 180.0) -> ComfyClient:
        self.prepare()
        cmd = [
            self.python,
            str(self.comfyui_dir / "main.py"),
            "--cpu",
            "--listen",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--base-directory",
            str(self.base_dir),
            "--database-url",
            "sqlite:///:memory:",
            "--disable-auto-launch",
            *self.extra_args,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self._log_file = open(self.log_path, "ab")
        log.info("starting ComfyUI: %s", " ".join(cmd))
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.comfyui_dir,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        client = ComfyClient(self.url, timeout=10.0, retries=0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerStartError(f"ComfyUI exited with {self.proc.returncode} during start-up:\n{self.log_tail()}")
            try:
                client.system_stats()
                break
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.25)
        else:
            self.stop()
            raise ServerStartError(f"ComfyUI did not answer /system_stats within {timeout:.0f}s:\n{self.log_tail()}")
        return ComfyClient(self.url)

    def check_pack_loaded(self, client: ComfyClient, node_ids: list[str]) -> None:
        """ComfyUI only logs 'IMPORT FAILED'; turn that (or missing nodes) into an error."""
        text = self.log_text()
        for name in self.custom_nodes:
            link = str(self.base_dir / "custom_nodes" / name)
            for line in text.splitlines():
                if "IMPORT FAILED" in line and line.rstrip().endswith(link):
                    raise ServerStartError(f"ComfyUI failed to import the pack {name!r}:\n{self.log_tail(120)}")
        info = client.object_info()
        missing = [n for n in node_ids if n not in info]
        if missing:
            raise ServerStartError(f"/object_info lacks nodes {missing}:\n{self.log_tail(120)}")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def rss_bytes(self) -> int:
        """Resident memory of the server process (Linux /proc)."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def kill(self) -> None:
        """SIGKILL the server at once (fault tests: no shutdown handlers run)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(15.0)

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def cleanup(self) -> None:
        self.stop()
        if self._own_base:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedServer:
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()
