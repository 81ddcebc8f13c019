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
import re
import time
from pathlib import Path

import numpy as np
import photos
import pytest
from editor_page import EDITOR_SETTINGS, OUTPUT_IMAGE_JS, graph_problems, new_editor, wait_history
from likeness.client.params import nodes_titled
from likeness.client.workflow_format import NOTE_TYPES, input_specs, load_workflow, ui_to_api, widget_slots
from likeness.standins.substitution import UI_WIDGET_INDEX, to_standins, ui_to_standins
from packinfo import shipped_workflows
from PIL import Image

log = logging.getLogger(__name__)
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts" / "browser"
NAMES = shipped_workflows()
STEPS, SIZE = 2, 128

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


@pytest.fixture(scope="module")
def editor(browser, frontend, comfy):
    """One editor page for the module, as a user opens one file after another (the app boots in ~5 s)."""
    context, ed = new_editor(browser, comfy)
    try:
        log.info("editor ready in %.1fs", ed.start())
        yield ed
    finally:
        if ed.console:
            log.info("browser console (%d warnings/errors):\n%s", len(ed.console), "\n".join(ed.console[-40:]))
        context.close()


def _with_images(ui: dict, images: dict[str, str]) -> dict:
    """Set LoadImage widgets by node title (the file's image names are a user's own)."""
    for node in ui["nodes"]:
        if node["type"] == "LoadImage" and node.get("title") in images:
            node["widgets_values"][0] = images[node["title"]]
    return ui


def _comparable(api: dict, object_info: dict) -> dict:
    """Node id -> (class, declared inputs with unset optional widgets at their defaults): the UI path fills them.
    Inputs the node does not declare are dropped, as the server drops them (the editor sends Preview as Text's
    display widget, "preview", which /object_info does not list)."""
    out = {}
    for nid, node in api.items():
        specs = input_specs(object_info[node["class_type"]])
        defaults = {s.name: s.options["default"] for s in specs if s.is_widget and not s.required and "default" in s.options}
        declared = {s.name for s in specs}
        out[nid] = (node["class_type"], {k: v for k, v in {**defaults, **node["inputs"]}.items() if k in declared})
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
    entry = wait_history(comfy, prompt_id)
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
    # issue 18: the caption actually used is in /history and on the canvas, in the 'Prompt used' preview
    (shown_id,) = nodes_titled(entry["prompt"][2], "Prompt used")
    (caption_id,) = nodes_titled(entry["prompt"][2], "Caption")
    (used,) = entry["outputs"][shown_id]["text"]
    assert used and [used] == entry["outputs"][caption_id]["text"]
    editor.fit(int(shown_id))
    on_canvas = editor.page.evaluate("(id) => app.graph.getNodeById(id).widgets.map(w => w.value)", int(shown_id))
    assert used in on_canvas, f"'Prompt used' shows {on_canvas}, /history has {used!r}"
    editor.screenshot(f"{name}_prompt_used")
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
