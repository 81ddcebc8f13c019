"""The ComfyUI editor in headless Chromium: one page per module, opened workflows, popups and console seen.

Shared by tests/server/test_browser.py (the pinned frontend) and tests/server/test_browser_blueprints.py (the
pinned one and comfyui-frontend-package 1.58.1). Chromium is Debian's ``/usr/bin/chromium``
(``LIKENESS_CHROMIUM`` overrides), driven by Python Playwright.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from pathlib import Path

import pytest
from likeness.client.workflow_format import input_specs

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts" / "browser"

# Flags for a machine without a display or outside network: without the background-networking ones Chromium
# keeps dialling Google's hosts.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1600, "height": 1000}
# A returning user's settings: a first start opens the template browser over the canvas; full-detail nodes at any
# zoom and no minimap, for screenshots of a whole graph.
EDITOR_SETTINGS = {
    "Comfy.TutorialCompleted": True,
    "LiteGraph.Canvas.MinFontSizeForLOD": 0,
    "Comfy.Minimap.Visible": False,
}
# Widgets the editor adds on its own (not in /object_info): a seed's control mode, an image combo's upload button.
EDITOR_WIDGETS = frozenset({"control_after_generate", "control_filter_list", "upload"})

# Before any page script: no "Nodes 2.0" banner over the canvas, and every toast and dialog the editor ever
# adds is remembered (a toast can vanish before a check looks for it).
INIT_JS = """
localStorage.setItem('vueNodesBannerDismissed', 'true');
window.__likenessPopups = [];
new MutationObserver((records) => {
  for (const record of records) for (const added of record.addedNodes) {
    if (added.nodeType !== 1) continue;
    // 1.32.9 (PrimeVue): .p-toast-message / .p-dialog; 1.58.1 renders its toasts with role="alert"
    const wanted = '.p-toast-message, .p-dialog, [role="alert"]';
    const found = added.matches(wanted) ? [added] : [];
    found.push(...added.querySelectorAll(wanted));
    window.__likenessPopups.push(...found);
  }
}).observe(document, {childList: true, subtree: true});
"""
READY_JS = """() => !!(window.app && app.vueAppReady && app.graph && window.LiteGraph && app.extensionManager
  && document.querySelector('#graph-canvas') && document.querySelector('#comfy-file-input')
  && document.querySelector('[data-testid="queue-button"]'))"""
POPUPS_JS = """(start) => window.__likenessPopups.slice(start).map(el => ({
  cls: String(el.className), role: el.getAttribute('role') || '', text: (el.textContent || '').replace(/\\s+/g, ' ').trim().slice(0, 500)}))"""
GRAPH_JS = """() => app.graph.nodes.map(n => ({
  id: n.id, type: n.type, title: n.title, mode: n.mode, has_errors: !!n.has_errors,
  registered: n.type in LiteGraph.registered_node_types,
  widgets: (n.widgets || []).map(w => ({name: w.name, value: w.value}))}))"""
OUTPUT_IMAGE_JS = """(id) => {
  const node = app.graph.getNodeById(id);
  const img = node && node.imgs && node.imgs[0];
  return img && img.complete && img.naturalWidth > 0 ? img.src : null;
}"""

# Fit the canvas to the groups whose titles start with one of ``groups``, or to the group holding node ``node``,
# with every node inside (a node that shows an image outgrows its group). Not animated, unlike the editor's own
# "Fit view" command, so a screenshot right after it shows the final view.
FIT_JS = """({node, groups}) => {
  const inside = (g, [px, py]) => { const [gx, gy, gw, gh] = g.getBounding();
    return px >= gx && py >= gy && px <= gx + gw && py <= gy + gh; };
  let chosen = [], nodes = app.graph.nodes;
  if (groups) chosen = app.graph.groups.filter(g => groups.some(prefix => g.title.startsWith(prefix)));
  else if (node !== null) {
    const target = app.graph.getNodeById(node);
    chosen = app.graph.groups.filter(g => inside(g, target.pos)).slice(0, 1);
    if (!chosen.length) nodes = [target];
  }
  if (chosen.length) nodes = nodes.filter(n => chosen.some(g => inside(g, n.pos)));
  // a node's cached bounding lags behind its size (an image just shown): use pos and size
  const title = LiteGraph.NODE_TITLE_HEIGHT;
  const boxes = chosen.map(g => Array.from(g.getBounding()))
    .concat(nodes.map(n => [n.pos[0], n.pos[1] - title, n.size[0], n.size[1] + title]));
  const x0 = Math.min(...boxes.map(b => b[0])), y0 = Math.min(...boxes.map(b => b[1]));
  const x1 = Math.max(...boxes.map(b => b[0] + b[2])), y1 = Math.max(...boxes.map(b => b[1] + b[3]));
  app.canvas.ds.fitToBounds([x0 - 30, y0 - 30, x1 - x0 + 60, y1 - y0 + 60], {zoom: 0.95});
  app.canvas.setDirty(true, true);
}"""


def chromium_path() -> str:
    return os.environ.get("LIKENESS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module."""
    if os.environ.get("LIKENESS_NO_BROWSER") == "1":
        pytest.skip(os.environ.get("LIKENESS_NO_BROWSER_REASON") or "LIKENESS_NO_BROWSER=1: browser tests skipped")
    exe = chromium_path()
    if not Path(exe).is_file():
        pytest.fail(
            f"no Chromium at {exe}: run `bash scripts/bootstrap.sh` (its step 'Chromium for "
            "tests/server/test_browser.py' runs `apt-get install chromium`), set LIKENESS_CHROMIUM to a Chromium "
            "binary, or set LIKENESS_NO_BROWSER=1 to skip the browser tests",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.fail(f"Python playwright is missing ({exc}): run `bash scripts/bootstrap.sh` (pyproject's test extra)", pytrace=False)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        log.info("Chromium %s at %s", chromium.version, exe)
        try:
            yield chromium
        finally:
            chromium.close()


class Editor:
    """One page of the ComfyUI editor, with what it logged and showed since the last workflow was opened."""

    def __init__(self, page, comfy):
        self.page = page
        self.comfy = comfy
        self.uncaught: list[str] = []
        self.console: list[str] = []
        self._popup_mark = 0
        self._uncaught_mark = 0
        page.on("pageerror", lambda exc: self.uncaught.append(f"{exc.name}: {exc.message}\n{exc.stack or ''}"))
        page.on("console", self._on_console)

    def _on_console(self, msg) -> None:
        url = msg.location.get("url", "")
        if msg.type not in ("error", "warning"):
            return
        if msg.text.startswith("Failed to load resource") and not url.startswith(self.comfy.server.url):
            return  # the editor asks api.comfy.org about installed packs; this machine has no outside network
        self.console.append(f"{msg.type}: {msg.text} ({url})")

    def start(self) -> float:
        t0 = time.monotonic()
        self.page.goto(self.comfy.server.url)
        self.page.wait_for_function(READY_JS, timeout=90_000)
        return time.monotonic() - t0

    def open(self, ui: dict, filename: str) -> None:
        """Open a workflow file through the editor's own file input (what Workflow > Open uses)."""
        self._popup_mark = self.page.evaluate("() => window.__likenessPopups.length")
        self._uncaught_mark = len(self.uncaught)
        self.page.set_input_files(
            "#comfy-file-input",
            files=[{"name": filename, "mimeType": "application/json", "buffer": json.dumps(ui).encode()}],
        )
        self.page.wait_for_function(
            "([stem, n]) => app.extensionManager.workflow.activeWorkflow?.filename === stem && app.graph.nodes.length === n",
            arg=[filename.rsplit(".", 1)[0], len(ui["nodes"])],
            timeout=30_000,
        )
        self.page.wait_for_timeout(500)  # dialogs and toasts raised while loading render on the next frames

    def nodes(self) -> list[dict]:
        return self.page.evaluate(GRAPH_JS)

    def popups(self) -> list[dict]:
        return self.page.evaluate(POPUPS_JS, self._popup_mark)

    def our_errors(self) -> list[str]:
        """Uncaught exceptions since the workflow was opened, and console errors naming the pack at any time."""
        named = [c for c in self.console if c.startswith("error") and "likeness" in c.lower()]
        return self.uncaught[self._uncaught_mark:] + named

    def queue(self) -> str:
        """Press Run; returns the prompt id the server gave the editor (a rejected prompt fails here)."""
        with self.page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/prompt")) as info:
            self.page.click('[data-testid="queue-button"]')
        response = info.value
        body = response.json()
        assert response.ok and not body.get("node_errors"), f"the server rejected the editor's prompt: {body}"
        return body["prompt_id"]

    def fit(self, node_id: int | None = None, groups: list[str] | None = None) -> None:
        """Show the group holding ``node_id`` (its image loads once the node is drawn), or the named groups."""
        self.page.evaluate(FIT_JS, {"node": node_id, "groups": groups})
        self.page.wait_for_timeout(300)

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path


def graph_problems(nodes: list[dict], ui: dict, object_info: dict, popups: list[dict]) -> list[str]:
    """Everything wrong with a workflow as the editor shows it (empty = what a user should see)."""
    problems = []
    for popup in popups:
        if "p-dialog" in popup["cls"] or re.search(r"p-toast-message-(error|warn)", popup["cls"]):
            problems.append(f"the editor showed: {popup['text']!r}")
    if len(nodes) != len(ui["nodes"]):
        problems.append(f"{len(nodes)} nodes on the canvas, {len(ui['nodes'])} in the file")
    in_file = {n["id"]: n for n in ui["nodes"]}
    for node in nodes:
        where = f"node {node['id']} {node['type']} '{node['title']}'"
        if not node["registered"]:
            problems.append(f"{where}: node type not registered in the editor (missing node type)")
            continue
        if node["has_errors"]:
            problems.append(f"{where}: the editor marks the node with errors")
        if not node["type"].startswith("Likeness"):
            continue
        info = object_info.get(node["type"])
        if info is None:
            problems.append(f"{where}: not in the server's /object_info")
            continue
        want = [s.name for s in input_specs(info) if s.is_widget]
        got = [w["name"] for w in node["widgets"] if w["name"] not in EDITOR_WIDGETS]
        if got != want:
            problems.append(f"{where}: widgets {got}, /object_info declares {want}")
        saved = (in_file.get(node["id"]) or {}).get("widgets_values") or []
        shown = [w["value"] for w in node["widgets"]][: len(saved)]
        if shown != saved:
            problems.append(f"{where}: widgets show {shown}, the file holds {saved}")
    return problems



def wait_history(comfy, prompt_id: str, timeout: float = 180.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = comfy.client.history(prompt_id)
        status = entry.get("status") or {}
        if status.get("completed") or status.get("status_str") == "error":
            return entry
        time.sleep(0.25)
    raise AssertionError(f"prompt {prompt_id} not finished after {timeout:.0f}s; queue: {comfy.client.queue()}")


def new_editor(browser, comfy, viewport: dict | None = None):
    """A fresh page of the editor served by ``comfy.server`` (with the closed network and INIT_JS)."""
    context = browser.new_context(viewport=viewport or VIEWPORT)
    context.add_init_script(INIT_JS)
    # The closed network: anything but the test server fails at once instead of waiting on DNS.
    context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), lambda route: route.abort())
    return context, Editor(context.new_page(), comfy)
