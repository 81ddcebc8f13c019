"""The real ComfyUI editor in headless Chromium, against the live test server (issue 6).

ComfyUI 0.3.75 serves the editor from ``comfyui-frontend-package`` (the version its requirements pin). Each shipped
workflow is opened the way a user opens a file: the editor's "Open" command clicks its hidden
``#comfy-file-input``, and Playwright hands that same input the file. The checks: no dialog (the "missing nodes"
one included) and no error or warning toast, every node type registered in LiteGraph, every Likeness node with the
widgets /object_info declares, holding the file's values, and no uncaught exception or console error naming the
pack. The enhance-whole and score workflows, switched to the test stand-ins (standins.substitution.ui_to_standins), are
then queued with the editor's Run button; the test waits for /history and for the output image on the canvas.

Chromium is Debian's ``/usr/bin/chromium`` (``LIKENESS_CHROMIUM`` overrides), installed by scripts/bootstrap.sh and
driven by Python Playwright. Without it these tests fail, naming that step, unless ``LIKENESS_NO_BROWSER=1`` is set
(they are then skipped). Screenshots land in tests/artifacts/browser/.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import photos
import pytest
from likeness.client.params import nodes_titled
from likeness.client.workflow_format import NOTE_TYPES, input_specs, load_workflow, ui_to_api, widget_slots
from likeness.standins.substitution import UI_WIDGET_INDEX, to_standins, ui_to_standins
from PIL import Image

log = logging.getLogger(__name__)
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts" / "browser"
NAMES = [
    "likeness_enhance_whole",
    "likeness_enhance_crop",
    "likeness_avatar",
    "likeness_score",
    "likeness_enhance_kontext",
    "likeness_enhance_flux2",
]
STEPS, SIZE = 2, 128

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
    const found = added.matches('.p-toast-message, .p-dialog') ? [added] : [];
    found.push(...added.querySelectorAll('.p-toast-message, .p-dialog'));
    window.__likenessPopups.push(...found);
  }
}).observe(document, {childList: true, subtree: true});
"""
READY_JS = """() => !!(window.app && app.vueAppReady && app.graph && window.LiteGraph && app.extensionManager
  && document.querySelector('#graph-canvas') && document.querySelector('#comfy-file-input')
  && document.querySelector('[data-testid="queue-button"]'))"""
POPUPS_JS = """(start) => window.__likenessPopups.slice(start).map(el => ({
  cls: String(el.className), text: (el.textContent || '').replace(/\\s+/g, ' ').trim().slice(0, 500)}))"""
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


def _chromium() -> str:
    return os.environ.get("LIKENESS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module."""
    if os.environ.get("LIKENESS_NO_BROWSER") == "1":
        pytest.skip(os.environ.get("LIKENESS_NO_BROWSER_REASON") or "LIKENESS_NO_BROWSER=1: browser tests skipped")
    exe = _chromium()
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


@pytest.fixture(scope="module")
def frontend(comfy) -> dict:
    """What the pages need from the server, prepared before the first page loads (the editor reads the input
    folder's file list and the settings once, at start)."""
    comfy.client.post_json("/settings", EDITOR_SETTINGS)
    face = np.asarray(Image.fromarray(photos.astronaut()).resize((252, 252), Image.BICUBIC))
    images = {
        "reference": comfy.upload(face, "browser_reference.png"),
        "target": comfy.upload(photos.degraded(face), "browser_target.png"),
    }
    return {"object_info": comfy.client.object_info(), "images": images, "size": face.shape[1::-1]}


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


@pytest.fixture(scope="module")
def editor(browser, frontend, comfy):
    """One editor page for the module, as a user opens one file after another (the app boots in ~5 s)."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(INIT_JS)
    # The closed network: anything but the test server fails at once instead of waiting on DNS.
    context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), lambda route: route.abort())
    page = context.new_page()
    ed = Editor(page, comfy)
    try:
        log.info("editor ready in %.1fs", ed.start())
        yield ed
    finally:
        if ed.console:
            log.info("browser console (%d warnings/errors):\n%s", len(ed.console), "\n".join(ed.console[-40:]))
        context.close()


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


def _with_images(ui: dict, images: dict[str, str]) -> dict:
    """Set LoadImage widgets by node title (the file's image names are a user's own)."""
    for node in ui["nodes"]:
        if node["type"] == "LoadImage" and node.get("title") in images:
            node["widgets_values"][0] = images[node["title"]]
    return ui


def _wait_history(comfy, prompt_id: str, timeout: float = 180.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = comfy.client.history(prompt_id)
        status = entry.get("status") or {}
        if status.get("completed") or status.get("status_str") == "error":
            return entry
        time.sleep(0.25)
    raise AssertionError(f"prompt {prompt_id} not finished after {timeout:.0f}s; queue: {comfy.client.queue()}")


def _comparable(api: dict, object_info: dict) -> dict:
    """Node id -> (class, inputs with unset optional widgets at their defaults): the UI path fills them."""
    out = {}
    for nid, node in api.items():
        defaults = {
            s.name: s.options["default"]
            for s in input_specs(object_info[node["class_type"]])
            if s.is_widget and not s.required and "default" in s.options
        }
        out[nid] = (node["class_type"], {**defaults, **node["inputs"]})
    return out


# -- without a browser: the UI stand-in switch against the live /object_info ----------------------------------------
def test_ui_widget_indexes_match_the_live_node_specs(comfy, frontend):
    for (cls, name), index in UI_WIDGET_INDEX.items():
        slots = widget_slots(frontend["object_info"][cls])
        assert index < len(slots) and slots[index] is not None and slots[index].name == name, (
            f"{cls}.{name}: widgets_values[{index}] is {slots[index] if index < len(slots) else 'past the end'}"
        )


@pytest.mark.parametrize("name", NAMES)
def test_ui_to_standins_converts_to_what_to_standins_gives(comfy, frontend, name):
    info, ui = frontend["object_info"], load_workflow(name, api=False)
    via_ui = ui_to_api(ui_to_standins(ui, comfy.files, steps=STEPS, size=SIZE), info)
    via_api = to_standins(ui_to_api(ui, info), comfy.files, steps=STEPS, size=SIZE)
    assert _comparable(via_ui, info) == _comparable(via_api, info)


# -- in the browser ----------------------------------------------------------------------------------------------------
def test_the_served_editor_is_the_frontend_comfyui_pins(editor, comfy):
    pinned = re.search(
        r"^comfyui-frontend-package==(\S+)", (comfy.server.comfyui_dir / "requirements.txt").read_text(), re.M
    )
    assert pinned, "ComfyUI's requirements.txt no longer pins comfyui-frontend-package"
    served = editor.page.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__")
    log.info("ComfyUI editor (comfyui-frontend-package) %s", served)
    assert served == pinned.group(1)


@pytest.mark.parametrize("name", NAMES)
def test_workflow_opens_in_the_editor_with_every_node_and_widget(editor, frontend, name):
    ui = load_workflow(name, api=False)
    editor.open(ui, f"{name}.json")
    nodes = editor.nodes()
    problems = graph_problems(nodes, ui, frontend["object_info"], editor.popups())
    editor.screenshot(name)  # the view the file was saved with
    if name == "likeness_enhance_whole":  # the README's picture: models and the PuLID chain, readable
        editor.fit(groups=["1.", "2."])
        editor.screenshot(f"{name}_models_and_pulid")
    assert not problems, "\n".join(problems)
    assert [n for n in nodes if n["type"].startswith("Likeness")], "none of our nodes on the canvas"
    assert not [n for n in nodes if n["type"] not in NOTE_TYPES and n["mode"] not in (0, 2, 4)]
    assert not editor.our_errors(), "\n".join(editor.our_errors())


def test_a_missing_node_type_is_reported(editor, frontend):
    """The checks above can fail: a node type no pack provides raises the editor's missing-nodes dialog."""
    ui = load_workflow("likeness_score", api=False)
    bogus = dict(ui["nodes"][0], id=ui["last_node_id"] + 1, type="NoSuchNodeInAnyPack", title="Bogus", pos=[0, -300])
    bogus.update(inputs=[], outputs=[], widgets_values=[])
    ui["nodes"].append(bogus)
    ui["last_node_id"] = bogus["id"]
    editor.open(ui, "missing_node_type.json")
    problems = graph_problems(editor.nodes(), ui, frontend["object_info"], editor.popups())
    editor.screenshot("missing_node_type")
    assert any("NoSuchNodeInAnyPack" in p and "missing node type" in p for p in problems), problems
    assert any(p.startswith("the editor showed") and "NoSuchNodeInAnyPack" in p for p in problems), problems
    # and the widget check fires when the editor's widgets differ from the node's spec
    info = json.loads(json.dumps(frontend["object_info"]))
    info["LikenessFaceEmbedDistance"]["input"]["required"]["extra_widget"] = ["INT", {"default": 1}]
    info["LikenessFaceEmbedDistance"]["input_order"]["required"].append("extra_widget")
    assert any("extra_widget" in p for p in graph_problems(editor.nodes(), ui, info, []))
    editor.page.keyboard.press("Escape")  # the user closes the dialog; the next workflow opens as usual
    editor.page.wait_for_selector(".p-dialog", state="detached", timeout=10_000)


def _queue_on_standins(editor, frontend, comfy, name: str, images: dict[str, str]) -> tuple[dict, dict]:
    """Open the stand-in version of a workflow, press Run, wait for the server; returns (ui, history entry)."""
    ui = _with_images(ui_to_standins(load_workflow(name, api=False), comfy.files, steps=STEPS, size=SIZE), images)
    editor.open(ui, f"{name}_standins.json")
    problems = graph_problems(editor.nodes(), ui, frontend["object_info"], editor.popups())
    assert not problems, "\n".join(problems)
    t0 = time.monotonic()
    prompt_id = editor.queue()
    entry = _wait_history(comfy, prompt_id)
    log.info("%s on the stand-ins: queued from the editor, done in %.1fs", name, time.monotonic() - t0)
    assert entry["status"].get("status_str") == "success", entry["status"]
    # The editor's own UI -> API conversion sent what client.workflow_format gives for the same file.
    sent = entry["prompt"][2]
    assert _comparable(sent, frontend["object_info"]) == _comparable(ui_to_api(ui, frontend["object_info"]), frontend["object_info"])
    return ui, entry


def _shown_output(editor, ui: dict, entry: dict, title: str) -> tuple[dict, str]:
    """The node's first output image in /history and the src of the same image drawn on the canvas."""
    (node_id,) = [n["id"] for n in ui["nodes"] if n.get("title") == title]
    (record, *_) = entry["outputs"][str(node_id)]["images"]
    editor.fit(node_id)
    src = editor.page.wait_for_function(OUTPUT_IMAGE_JS, arg=node_id, timeout=30_000).json_value()
    assert f"filename={record['filename']}" in src, src
    # every node showing an image has grown to fit it (on the next frames): fit again for the screenshot
    editor.page.wait_for_function("() => app.graph.nodes.every(n => !n.imgs || n.imgs.every(i => i.complete))")
    editor.page.wait_for_timeout(300)
    editor.fit(node_id)
    return record, src


def test_enhance_whole_queued_from_the_editor_shows_the_result(editor, frontend, comfy):
    name = "likeness_enhance_whole"
    images = {"Reference image": frontend["images"]["reference"], "Target image": frontend["images"]["target"]}
    ui, entry = _queue_on_standins(editor, frontend, comfy, name, images)
    record, _ = _shown_output(editor, ui, entry, "Save result")
    assert record["type"] == "output"
    assert comfy.image(record).size == tuple(frontend["size"])
    (before_id,) = nodes_titled(entry["prompt"][2], "Distance before")
    (before,) = entry["outputs"][before_id]["likeness_face_distance"]
    assert before["no_face"] is False and 0 < before["distance"] < 1, before
    editor.screenshot(f"{name}_standins_run")
    assert not editor.our_errors(), "\n".join(editor.our_errors())


def test_score_queued_from_the_editor_shows_the_report(editor, frontend, comfy):
    name = "likeness_score"
    ref, target = frontend["images"]["reference"], frontend["images"]["target"]
    images = {"Reference image": ref, "Target image": target, "Enhanced image": ref}
    ui, entry = _queue_on_standins(editor, frontend, comfy, name, images)
    record, _ = _shown_output(editor, ui, entry, "Enhancement report")
    assert comfy.image(record).width > 0
    (report_id,) = nodes_titled(entry["prompt"][2], "Enhancement report")
    (report,) = entry["outputs"][report_id]["likeness_report"]
    assert report["cos_after"] == pytest.approx(1.0, abs=1e-6), "the reference scored against itself"
    editor.screenshot(f"{name}_standins_run")
    assert not editor.our_errors(), "\n".join(editor.our_errors())
