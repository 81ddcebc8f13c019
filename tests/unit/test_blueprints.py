"""The shipped subgraph blueprints (subgraphs/*.json, issue 18), read as files: what an artist gets on the node's face,
what stays outside, and links that agree with the sockets they name. The browser test places and runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from likeness import contract as C
from likeness.client.workflow_format import load_workflow

ROOT = Path(__file__).resolve().parents[2]
BLUEPRINTS = {
    C.BLUEPRINT_ENHANCE_WHOLE: (C.WORKFLOW_ENHANCE_WHOLE, {"identity weight", "identity start", "denoise", "steps", "seed",
                                                           "controlnet strength", "manual prompt", "reference face index"}),
    C.BLUEPRINT_ENHANCE_CROP: (C.WORKFLOW_ENHANCE_CROP, {"identity weight", "identity start", "denoise", "steps", "seed",
                                                         "controlnet strength", "manual prompt", "face order",
                                                         "first face index", "second face index", "working size"}),
    C.BLUEPRINT_SCORE: (C.WORKFLOW_SCORE, {"face index"}),
}
OUTSIDE = {"UNETLoader", "DualCLIPLoader", "VAELoader", "ControlNetLoader", "UpscaleModelLoader", "LoadImage", "Note",
           "LikenessPulidFluxLoader", "LikenessEvaClipLoader", "LikenessFaceAnalysisLoader", "LikenessFlorence2Loader",
           "LikenessFaceJudgeLoader"}


def _load(name: str) -> tuple[dict, dict]:
    data = json.loads((ROOT / "subgraphs" / f"{name}.json").read_text())
    (node,) = data["nodes"]
    (definition,) = data["definitions"]["subgraphs"]
    return node, definition


def test_the_shipped_blueprints_are_the_contracts():
    assert sorted(p.stem for p in (ROOT / "subgraphs").glob("*.json")) == sorted(BLUEPRINTS)


@pytest.mark.parametrize("name", list(BLUEPRINTS))
def test_blueprint_holds_its_workflow_minus_loaders_with_the_tuned_widgets_on_its_face(name):
    workflow, promoted = BLUEPRINTS[name]
    node, sg = _load(name)
    assert node["type"] == sg["id"] and node["title"] == name
    full = load_workflow(workflow, api=False)
    inside = sorted(n["title"] for n in sg["nodes"])
    assert inside == sorted(n["title"] for n in full["nodes"] if n["type"] not in OUTSIDE)
    widgets = [i["name"] for i in node["inputs"] if "widget" in i]
    assert set(widgets) == promoted and len(node["widgets_values"]) == len(widgets)
    sockets = {i["name"] for i in node["inputs"] if "widget" not in i}
    wanted = {n["title"] for n in full["nodes"] if n["type"] in OUTSIDE - {"Note"} and n["outputs"][0]["links"]}
    assert sockets == wanted, "every loader and image of the workflow is an input named by its title"


@pytest.mark.parametrize("name", list(BLUEPRINTS))
def test_every_link_inside_agrees_with_the_socket_it_names(name):
    _, sg = _load(name)
    nodes = {n["id"]: n for n in sg["nodes"]}
    for link in sg["links"]:
        if link["target_id"] == -20:
            assert link["id"] in sg["outputs"][link["target_slot"]]["linkIds"]
            continue
        target = nodes[link["target_id"]]["inputs"][link["target_slot"]]
        assert target["link"] == link["id"], f"{name}: link {link['id']} into {target['name']}"
        if link["origin_id"] == -10:
            assert link["id"] in sg["inputs"][link["origin_slot"]]["linkIds"]
        else:
            assert link["id"] in nodes[link["origin_id"]]["outputs"][link["origin_slot"]]["links"]
