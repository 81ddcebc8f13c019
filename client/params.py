"""Fill a shipped API workflow by node title.

Title contract (``workflows/*.json`` and their ``workflows/api/`` copies keep these titles; a client sets
parameters through them and never needs node ids). A node matches title T when its title is T or starts
with "T (" — so "Sampler (face 1)" and "Sampler (face 2)" both take ``seed``.

=================  =============================  ==========================================================
parameter          node title                     input (node class)
=================  =============================  ==========================================================
reference          Reference image                image (LoadImage); a list of names is batched (ImageBatch)
reference_2        Reference image 2              image (LoadImage): the second face's references (crop)
target             Target image                   image (LoadImage): the image to enhance / "before"
enhanced           Enhanced image                 image (LoadImage): "after" (score workflow)
pose               Pose image                     image (LoadImage): OpenPose skeleton (avatar)
prompt             Caption / Prompt               manual_prompt (LikenessCaption) / text (CLIPTextEncode)
seed, steps,       Sampler                        seed, steps, denoise (KSampler)
denoise
pulid_weight,      Apply PuLID-Flux               weight, start_at, end_at (LikenessApplyPulidFlux)
pulid_start,
pulid_end
control_strength,  Apply Union ControlNet         strength, start_percent, end_percent
control_start,                                    (ControlNetApplyAdvanced)
control_end
width, height      Latent size                    width, height (EmptySD3LatentImage, avatar)
working_size       Crop target                    working_size (LikenessAutoCropFace, crop workflow)
judge              Face judge                     model (LikenessFaceJudgeLoader), e.g. "dlib (hog)"
lora,              LoRA                           lora_name, strength_model (LoraLoaderModelOnly); it ships
lora_strength                                     bypassed, so the API copy has no LoRA node: enable it in the
                                                  UI workflow (workflow_format.set_mode) and convert
output_prefix      Save result                    filename_prefix (SaveImage)
=================  =============================  ==========================================================
"""

from __future__ import annotations

import copy
from typing import Any

from ..contract import IMAGE_PARAMETERS, PARAMETERS
from .workflow_format import WorkflowFormatError

# The parameters, their titles and inputs: written once, in contract.py.


class WorkflowParameterError(WorkflowFormatError):
    """fill() was given a parameter the workflow cannot take; the message names it and the titles present."""


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
        (nid, key)
        for nid, node in api.items()
        for key, value in node["inputs"].items()
        if value == [node_id, 0]
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
            hint = " (the LoRA ships bypassed: enable it with set_mode on the UI workflow)" if param.startswith("lora") else ""
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
