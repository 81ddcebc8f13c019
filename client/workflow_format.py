"""Convert a ComfyUI UI workflow (what the frontend saves, version 0.4) to the API format /prompt takes.

The frontend does this conversion when you press Queue; a REST client has to repeat it to run a
workflow file a user can also open in the browser. Rules (read off ComfyUI frontend 1.32's behaviour):

* Note / MarkdownNote nodes and muted nodes (mode 2) are left out; inputs fed by a muted node are dropped.
* A bypassed node (mode 4) is removed and each link from one of its outputs is rewired to what feeds the
  bypassed node's input of the same type (the input at the output's own index when its type fits, else
  the first input of the consumer's type); when that input is unlinked the consumer gets no link.
* Reroute nodes are followed to their source; a PrimitiveNode's value replaces the link it feeds.
* ``widgets_values`` are matched to the widget inputs of ``/object_info`` in input order (required,
  then optional), skipping the frontend-only values that follow some widgets: the
  "control_after_generate" mode after seed-like INT inputs and the "upload" value of image/video/audio
  upload combos. A widget converted to an input takes its link instead of its stored value.
* Output: ``{node_id: {"class_type", "inputs", "_meta": {"title"}}}``; a link is ``[node_id, slot]`` and a
  list-valued widget is sent as ``{"__value__": [...]}``.

Pure standard library (the client never imports torch or ComfyUI). Dynamic-prompt syntax in text
widgets (``{a|b}``) is passed through unchanged, where the frontend would pick one option.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..common.errors import LikenessError

MODE_ALWAYS = 0
MODE_NEVER = 2  # "muted"
MODE_BYPASS = 4

NOTE_TYPES = frozenset({"Note", "MarkdownNote"})
REROUTE = "Reroute"
PRIMITIVE = "PrimitiveNode"
FRONTEND_ONLY = NOTE_TYPES | {REROUTE, PRIMITIVE}

WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
SEED_NAMES = ("seed", "noise_seed")
UPLOAD_FLAGS = ("image_upload", "video_upload", "audio_upload", "animated_image_upload")
WORKFLOWS_DIR = Path(__file__).resolve().parent.parent / "workflows"


class WorkflowFormatError(LikenessError, ValueError):
    """A UI workflow that cannot be converted; the message names the node (id and type) and the fix."""


@dataclass(frozen=True)
class InputSpec:
    name: str
    type: str  # "COMBO" for option lists
    options: dict
    required: bool

    @property
    def is_widget(self) -> bool:
        return self.type in WIDGET_TYPES and not self.options.get("forceInput")

    @property
    def choices(self) -> list | None:
        return self.options.get("options") if self.type == "COMBO" else None

    @property
    def extra_values(self) -> int:
        """Frontend-only values stored after this widget in widgets_values (control mode, upload button)."""
        n = 0
        control = self.options.get("control_after_generate")
        if control is None:
            control = self.type == "INT" and self.name in SEED_NAMES
        if control and self.type in ("INT", "COMBO"):
            n += 1
        if self.type == "COMBO" and any(self.options.get(flag) for flag in UPLOAD_FLAGS):
            n += 1
        return n


def input_specs(info: dict) -> list[InputSpec]:
    """The inputs of one /object_info entry in the frontend's order: required, then optional."""
    out = []
    inputs = info.get("input", {})
    order = info.get("input_order") or {}
    for section in ("required", "optional"):
        specs = inputs.get(section) or {}
        for name in order.get(section) or list(specs):
            if name not in specs:
                continue
            spec = specs[name]
            kind, opts = spec[0], (spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {})
            if isinstance(kind, list):  # legacy combo: the option list itself
                opts = {**opts, "options": kind}
                kind = "COMBO"
            out.append(InputSpec(name, str(kind), dict(opts), section == "required"))
    return out


def widget_slots(info: dict) -> list[InputSpec | None]:
    """One entry per widgets_values position: the widget's InputSpec, or None for a frontend-only value."""
    slots: list[InputSpec | None] = []
    for spec in input_specs(info):
        if spec.is_widget:
            slots.append(spec)
            slots.extend([None] * spec.extra_values)
    return slots


def _where(node: dict) -> str:
    title = f" '{node['title']}'" if node.get("title") else ""
    return f"node {node.get('id')} ({node.get('type')}{title})"


def _links(ui: dict) -> dict[int, tuple[int, int, int, int, str]]:
    """link id -> (origin id, origin slot, target id, target slot, type); list or dict link records."""
    out = {}
    for rec in ui.get("links") or []:
        if isinstance(rec, dict):
            rec = [rec["id"], rec["origin_id"], rec["origin_slot"], rec["target_id"], rec["target_slot"], rec.get("type")]
        out[int(rec[0])] = (int(rec[1]), int(rec[2]), int(rec[3]), int(rec[4]), rec[5])
    return out


def _types_match(a: Any, b: Any) -> bool:
    """LiteGraph's connection rule: equal, a wildcard, or overlapping comma-separated type lists."""
    if a in (None, "*", "", 0) or b in (None, "*", "", 0):
        return True
    return bool(set(str(a).lower().split(",")) & set(str(b).lower().split(",")))


def _bypass_input(inputs: list[dict], out_type: Any, slot: int, want: Any) -> int | None:
    """Which input of a bypassed node stands in for its output ``slot`` feeding an input of type ``want``.

    The same index when its type fits, else the first input of exactly ``want``, else the first that fits.
    """
    if not inputs:
        return None
    if want in ("*", ""):
        return slot if slot < len(inputs) else 0
    if slot < len(inputs) and _types_match(inputs[slot].get("type"), out_type) and _types_match(inputs[slot].get("type"), want):
        return slot
    for i, s in enumerate(inputs):
        if s.get("type") == want:
            return i
    for i, s in enumerate(inputs):
        if _types_match(s.get("type"), out_type) and _types_match(s.get("type"), want):
            return i
    return None


def _widget_value(value: Any) -> Any:
    """The frontend wraps list values so that the server does not read them as links."""
    return {"__value__": value} if isinstance(value, list) else value


class _Converter:
    def __init__(self, ui: dict, object_info: dict):
        if not isinstance(ui, dict) or "nodes" not in ui:
            raise WorkflowFormatError(
                "not a UI workflow: expected a dict with 'nodes' and 'links' (an API-format graph is already converted)"
            )
        self.object_info = object_info
        self.nodes = {int(n["id"]): n for n in ui["nodes"]}
        self.links = _links(ui)
        subgraphs = {s.get("id") for s in (ui.get("definitions") or {}).get("subgraphs") or []}
        for node in self.nodes.values():
            if node.get("type") in subgraphs:
                raise WorkflowFormatError(f"{_where(node)} is a subgraph; unpack it in the ComfyUI editor before converting")

    def _input_link(self, node: dict, slot: int) -> int | None:
        inputs = node.get("inputs") or []
        return inputs[slot].get("link") if slot < len(inputs) else None

    def resolve(self, link_id: int, want_type: Any, seen: frozenset = frozenset()) -> tuple[str, Any] | None:
        """Follow a link through reroutes, primitives and bypassed nodes.

        Returns ("link", [id, slot]), ("value", v) for a PrimitiveNode, ("muted", None) for a muted source
        (the input is dropped), or None when nothing feeds it (a widget keeps its own value).
        """
        if link_id in seen:
            raise WorkflowFormatError(f"link {link_id} is part of a cycle through reroute/bypassed nodes")
        seen = seen | {link_id}
        if link_id not in self.links:
            raise WorkflowFormatError(f"link {link_id} is used by a node but missing from the workflow's links")
        origin_id, origin_slot, _, _, _ = self.links[link_id]
        origin = self.nodes.get(origin_id)
        if origin is None:
            raise WorkflowFormatError(f"link {link_id} starts at node {origin_id}, which is not in the workflow")
        kind, mode = origin.get("type"), origin.get("mode", MODE_ALWAYS)
        if kind == REROUTE:
            upstream = self._input_link(origin, 0)
            return None if upstream is None else self.resolve(upstream, want_type, seen)
        if kind == PRIMITIVE:
            values = origin.get("widgets_values") or []
            if not values:
                raise WorkflowFormatError(f"{_where(origin)} has no value; set it in the editor")
            return ("value", values[0])
        if mode == MODE_NEVER:
            return ("muted", None)
        if mode == MODE_BYPASS:
            inputs = origin.get("inputs") or []
            outputs = origin.get("outputs") or []
            out_type = outputs[origin_slot].get("type") if origin_slot < len(outputs) else want_type
            i = _bypass_input(inputs, out_type, origin_slot, want_type)
            upstream = None if i is None else inputs[i].get("link")
            return None if upstream is None else self.resolve(int(upstream), want_type, seen)
        return ("link", [str(origin_id), origin_slot])

    def node_inputs(self, node: dict, info: dict) -> dict:
        values = node.get("widgets_values")
        slots = widget_slots(info)
        inputs: dict[str, Any] = {}
        if isinstance(values, dict):
            for spec in slots:
                if spec is not None and spec.name in values:
                    inputs[spec.name] = _widget_value(values[spec.name])
        else:
            values = list(values or [])
            if len(values) > len(slots):
                names = [s.name if s else "(frontend value)" for s in slots]
                raise WorkflowFormatError(
                    f"{_where(node)} has {len(values)} widget values but the server's node has {len(slots)} "
                    f"widget slots {names}; the workflow was saved for a different version of this node"
                )
            for spec, value in zip(slots, values):
                if spec is not None:
                    inputs[spec.name] = _widget_value(value)
            for spec in slots[len(values):]:
                if spec is not None:
                    if "default" not in spec.options:
                        raise WorkflowFormatError(
                            f"{_where(node)} has no value for widget '{spec.name}' and the server gives no default; "
                            "open the workflow in the editor and save it again"
                        )
                    inputs[spec.name] = _widget_value(spec.options["default"])
        known = {s.name for s in input_specs(info)}
        for slot in node.get("inputs") or []:
            name = (slot.get("widget") or {}).get("name") or slot.get("name")
            link = slot.get("link")
            if link is None:
                continue
            if name not in known:
                raise WorkflowFormatError(
                    f"{_where(node)} has a link into input '{name}', which the server's {node.get('type')} does not have"
                )
            resolved = self.resolve(int(link), slot.get("type"))
            if resolved is None:  # a bypass with nothing behind it: a widget keeps its value
                continue
            if resolved[0] == "muted":
                inputs.pop(name, None)
                continue
            inputs[name] = resolved[1] if resolved[0] == "link" else _widget_value(resolved[1])
        return inputs

    def convert(self) -> dict:
        api: dict[str, dict] = {}
        for node_id in sorted(self.nodes):
            node = self.nodes[node_id]
            kind = node.get("type")
            if kind in FRONTEND_ONLY or node.get("mode", MODE_ALWAYS) in (MODE_NEVER, MODE_BYPASS):
                continue
            info = self.object_info.get(kind)
            if info is None:
                raise WorkflowFormatError(
                    f"{_where(node)}: node type {kind} is not installed on the server; install the node pack that "
                    "provides it (ComfyUI-Manager: 'Install Missing Custom Nodes') or remove the node"
                )
            title = node.get("title") or info.get("display_name") or kind
            api[str(node_id)] = {"class_type": kind, "inputs": self.node_inputs(node, info), "_meta": {"title": title}}
        return api


def ui_to_api(ui: dict, object_info: dict) -> dict:
    """Convert a UI-format workflow to an API-format graph using the server's /object_info."""
    return _Converter(ui, object_info).convert()


def is_api_format(graph: dict) -> bool:
    """True for an API graph ({id: {"class_type", "inputs"}}), False for a UI workflow."""
    return isinstance(graph, dict) and "nodes" not in graph and all(
        isinstance(v, dict) and "class_type" in v for v in graph.values()
    )


def set_mode(ui: dict, title: str, mode: int) -> dict:
    """A copy of ``ui`` with every node titled ``title`` set to ``mode`` (0 on, 2 muted, 4 bypassed).

    How a client turns on an optional node that ships bypassed (the avatar workflow's LoRA) before converting.
    """
    out = copy.deepcopy(ui)
    hits = [n for n in out["nodes"] if n.get("title") == title]
    if not hits:
        titles = sorted({n["title"] for n in out["nodes"] if n.get("title")})
        raise WorkflowFormatError(f"no node titled {title!r} in the workflow; titles present: {titles}")
    for node in hits:
        node["mode"] = mode
    return out


def _inside(node: dict, bounding: list) -> bool:
    gx, gy, gw, gh = bounding
    x, y = node["pos"]
    w, h = node["size"]
    return gx <= x and gy <= y - 30 and x + w <= gx + gw and y + h <= gy + gh  # 30: the node's title bar


def bypass_group(ui: dict, title_prefix: str) -> dict:
    """A copy of ``ui`` with every node inside the group whose title starts with ``title_prefix`` bypassed
    (mode 4), as a user does with Ctrl+B; e.g. the crop workflow's "Face 2" for a target with one face."""
    out = copy.deepcopy(ui)
    groups = [g for g in out.get("groups", []) if g.get("title", "").startswith(title_prefix)]
    if len(groups) != 1:
        titles = [g.get("title") for g in out.get("groups", [])]
        raise WorkflowFormatError(f"expected one group titled {title_prefix!r}..., found {len(groups)}; groups: {titles}")
    for node in out["nodes"]:
        if _inside(node, groups[0]["bounding"]):
            node["mode"] = 4
    return out


def load_workflow(name: str, api: bool = True) -> dict:
    """A shipped workflow by name (e.g. "likeness_enhance_whole"): its API copy, or the UI file with api=False."""
    path = (WORKFLOWS_DIR / "api" if api else WORKFLOWS_DIR) / f"{name}.json"
    if not path.is_file():
        names = sorted(p.stem for p in WORKFLOWS_DIR.glob("*.json"))
        raise WorkflowFormatError(f"no workflow named {name!r} in {WORKFLOWS_DIR}; shipped: {names}")
    return json.loads(path.read_text())
