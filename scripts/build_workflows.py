"""Write the UI workflows in workflows/ and their API copies in workflows/api/ from one declaration per graph.

Each graph is declared once in scripts/wfbuild/ (nodes by title, links by socket name, groups in reading
order; registry.py lists them); input and output sockets and the order of widget values come from a live
server's /object_info, so the files match what the ComfyUI editor saves. The API copies are ``likeness.client.workflow_format.ui_to_api`` of the UI
files against the same /object_info (tests/server/test_workflows.py repeats that conversion).

    python scripts/build_workflows.py              # starts an embedded headless ComfyUI for /object_info
    python scripts/build_workflows.py --url http://127.0.0.1:8188
    python scripts/build_workflows.py --object-info object_info.json

Then ``python scripts/render_workflow_thumbnails.py`` redraws the thumbnails.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
import importroot  # noqa: E402  (this checkout importable as ``likeness``)

importroot.ensure()

from likeness.client.workflow_format import ui_to_api  # noqa: E402
from wfbuild.blueprints import blueprint  # noqa: E402  (scripts/wfbuild, beside this script)
from wfbuild.registry import BLUEPRINTS, WORKFLOWS  # noqa: E402

log = logging.getLogger("build_workflows")
WORKFLOW_DIR = ROOT / "workflows"
SUBGRAPH_DIR = ROOT / "subgraphs"


def _object_info(args) -> dict:
    if args.object_info:
        return json.loads(Path(args.object_info).read_text())
    from likeness.client.api import ComfyClient

    if args.url:
        return ComfyClient(args.url).object_info()
    from likeness.client.provision import ensure_comfyui
    from likeness.client.server import EmbeddedServer

    with EmbeddedServer(ensure_comfyui()) as server:
        return server.start().object_info()


def _dump(obj: dict) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def write_blueprints(info: dict) -> None:
    builders = dict(WORKFLOWS)
    SUBGRAPH_DIR.mkdir(exist_ok=True)
    for name, workflow, description, outputs in BLUEPRINTS:
        g = builders[workflow](info)
        by_title = {n.title: n for n in g.nodes}
        bp = blueprint(g, name, description, [(o, by_title[t], slot) for o, t, slot in outputs])
        (SUBGRAPH_DIR / f"{name}.json").write_text(_dump(bp))
        sg = bp["definitions"]["subgraphs"][0]
        log.info("wrote subgraphs/%s.json (%d nodes inside, %d inputs)", name, len(sg["nodes"]), len(sg["inputs"]))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="a running ComfyUI with this pack (for /object_info)")
    ap.add_argument("--object-info", help="a saved /object_info JSON instead of a server")
    args = ap.parse_args(argv)
    info = _object_info(args)
    (WORKFLOW_DIR / "api").mkdir(parents=True, exist_ok=True)
    for name, build in WORKFLOWS:
        ui = build(info).to_ui()
        (WORKFLOW_DIR / f"{name}.json").write_text(_dump(ui))
        (WORKFLOW_DIR / "api" / f"{name}.json").write_text(_dump(ui_to_api(ui, info)))
        log.info("wrote workflows/%s.json (%d nodes) and workflows/api/%s.json", name, len(ui["nodes"]), name)
    write_blueprints(info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
