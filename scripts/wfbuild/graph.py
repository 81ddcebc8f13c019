"""The UI-workflow graph the builders declare: nodes by title, links by socket name, groups in reading order.

Input and output sockets and the order of widget values come from a live server's /object_info, so the files
match what the ComfyUI editor saves. ``Graph.layout`` places groups in rows of columns, left to right, and
``Graph.to_ui`` saves a view (``extra.ds``) that shows every group title and note at the default window size.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from likeness.client.workflow_format import UPLOAD_FLAGS, input_specs, widget_slots

# LiteGraph metrics (px): title bar above pos, one row per socket, one per widget.
TITLE_H, SLOT_H, WIDGET_H, MULTILINE_H, IMAGE_PREVIEW_H = 30, 20, 24, 100, 260
GAP_Y, GAP_X, GROUP_PAD, GROUP_HEAD = 36, 70, 14, 46
BLUE, GREEN, BROWN, PURPLE, YELLOW, CYAN, GREY = "#3f789e", "#8A8", "#b06634", "#a1309b", "#b58b2a", "#88A", "#444"
INPUT_COLORS = {"color": "#232", "bgcolor": "#353"}  # images the user sets: green
NOTE_COLORS = {"color": "#432", "bgcolor": "#653"}
OUR_PREFIX = "Likeness"
# The default window the saved view is fitted to (a 1280x720 browser viewport, Playwright's default too) and what
# the editor covers of it: comfyui-frontend-package 1.58.1's top bar and icon sidebar (measured by
# tests/server/test_browser.py, which fails when a group title lies under either); margins keep titles clear.
VIEW_W, VIEW_H = 1280, 720
VIEW_LEFT, VIEW_TOP, VIEW_RIGHT, VIEW_BOTTOM = 70, 100, 20, 30
VIEW_MAX_SCALE = 1.0


@dataclass
class Node:
    id: int
    type: str
    title: str | None
    widgets: dict[str, Any]
    mode: int = 0
    width: int = 320
    colors: dict[str, str] = field(default_factory=dict)
    note: str | None = None
    pos: tuple[float, float] = (0.0, 0.0)
    inputs: list[dict] = field(default_factory=list)
    outputs: list[dict] = field(default_factory=list)
    widgets_values: list = field(default_factory=list)
    height: int = 0


class Graph:
    """Builds one UI workflow: nodes, links by socket name, then a column layout with groups."""

    def __init__(self, name: str, object_info: dict):
        self.name = name
        self.info = object_info
        self.nodes: list[Node] = []
        self.links: list[list] = []
        self.groups: list[dict] = []
        # for a blueprint (blueprints.py): widgets promoted to its face, [(label, [(node, widget), ...])] in order
        self.promote: list[tuple[str, list[tuple[Node, str]]]] = []
        self.outside: set[int] = set()  # ids of nodes that stay outside a blueprint (loaders, images, notes)

    # -- nodes and links ----------------------------------------------------------------------------
    def add(self, type_: str, title: str | None = None, *, node_mode: int = 0, box_w: int = 320, colors=None, **widgets) -> Node:
        """A node of ``type_``; keyword widgets by input name (node_mode/box_w are the editor's mode and box width)."""
        info = self.info.get(type_)
        if info is None:
            raise SystemExit(f"node type {type_} is not in /object_info: start the server with this pack loaded")
        node = Node(len(self.nodes) + 1, type_, title, widgets, node_mode, box_w, dict(colors or {}))
        specs = input_specs(info)
        names = {s.name for s in specs}
        unknown = set(widgets) - names
        if unknown:
            raise SystemExit(f"{type_} has no inputs {sorted(unknown)}; it has {sorted(names)}")
        node.inputs = [{"name": s.name, "type": s.type, "link": None} for s in specs if not s.is_widget]
        node.outputs = [
            {"name": n, "type": t, "links": [], "slot_index": i}
            for i, (t, n) in enumerate(zip(info["output"], info.get("output_name") or info["output"]))
        ]
        for spec in specs:
            if not spec.is_widget:
                continue
            if spec.name in widgets:
                node.widgets_values.append(widgets[spec.name])
            elif "default" in spec.options:
                node.widgets_values.append(spec.options["default"])
            elif spec.choices:
                node.widgets_values.append(spec.choices[0])
            else:
                raise SystemExit(f"{type_}.{spec.name} has no default: give a value")
            # frontend-only values: the control_after_generate mode, then the upload button's "image"
            extra = ["fixed"] * spec.extra_values
            if spec.type == "COMBO" and any(spec.options.get(f) for f in UPLOAD_FLAGS):
                extra[-1] = "image"
            node.widgets_values.extend(extra)
        n_widgets = len(widget_slots(info))
        multiline = sum(1 for s in specs if s.is_widget and s.options.get("multiline"))
        rows = max(len(node.inputs), len(node.outputs))
        node.height = rows * SLOT_H + 8 + n_widgets * WIDGET_H + multiline * MULTILINE_H
        if type_ == "LoadImage":
            node.height += IMAGE_PREVIEW_H
        self.nodes.append(node)
        return node

    def note(self, text: str, title: str = "Note", width: int = 320, height: int = 160) -> Node:
        node = Node(len(self.nodes) + 1, "Note", title, {}, 0, width, dict(NOTE_COLORS), note=text)
        node.widgets_values = [text]
        node.height = height
        self.nodes.append(node)
        return node

    def link(self, src: Node, output: str | int, dst: Node, input_name: str) -> None:
        if isinstance(output, str):
            idx = [o["name"] for o in src.outputs].index(output)
        else:
            idx = output
        out = src.outputs[idx]
        slot = next((i for i, s in enumerate(dst.inputs) if s["name"] == input_name), None)
        if slot is None:  # a widget converted to an input
            spec = next((s for s in input_specs(self.info[dst.type]) if s.name == input_name), None)
            if spec is None:
                raise SystemExit(f"{dst.type} has no input {input_name}")
            dst.inputs.append({"name": input_name, "type": spec.type, "widget": {"name": input_name}, "link": None})
            slot = len(dst.inputs) - 1
        if dst.inputs[slot]["link"] is not None:
            raise SystemExit(f"{dst.type}.{input_name} is already linked")
        link_id = len(self.links) + 1
        dst.inputs[slot]["link"] = link_id
        out["links"].append(link_id)
        self.links.append([link_id, src.id, idx, dst.id, slot, out["type"]])


    # -- layout ---------------------------------------------------------------------------------------
    def layout(self, *rows: list[list[tuple[str, str, list[list[Node]]]]]) -> None:
        """Each row: columns left to right; a column: groups top-down (title, color, stacks); a stack: nodes
        top-down. Rows read top to bottom, so a long graph wraps to fit a window instead of one long strip."""
        y = 0.0
        for columns in rows:
            x, bottom = 0.0, y
            for column in columns:
                col_w, gy = 0.0, y
                for title, color, stacks in column:
                    width, height = self._place_group(x, gy, stacks)
                    if title:
                        self.groups.append({"title": title, "bounding": [x, gy, width, height], "color": color,
                                            "font_size": 24, "flags": {}})
                    col_w = max(col_w, width)
                    gy += height + 50
                bottom = max(bottom, gy)
                x += col_w + 90
            y = bottom + 40

    def _place_group(self, x: float, y: float, stacks: list[list[Node]]) -> tuple[float, float]:
        gx = x + GROUP_PAD
        top = y + GROUP_HEAD + TITLE_H
        bottom = top
        for stack in stacks:
            ny = top
            for n in stack:
                n.pos = (gx, ny)
                ny += n.height + TITLE_H + GAP_Y
            bottom = max(bottom, ny - GAP_Y - TITLE_H)
            gx += max(n.width for n in stack) + GAP_X
        return gx - GAP_X + GROUP_PAD - x, bottom - y + GROUP_PAD

    def bounds(self) -> tuple[float, float, float, float]:
        """x0, y0, x1, y1 of every group and node (title bars included)."""
        boxes = [g["bounding"] for g in self.groups]
        boxes += [[n.pos[0], n.pos[1] - TITLE_H, n.width, n.height + TITLE_H] for n in self.nodes]
        return (min(b[0] for b in boxes), min(b[1] for b in boxes),
                max(b[0] + b[2] for b in boxes), max(b[1] + b[3] for b in boxes))

    def view(self) -> dict:
        """The editor's saved view (screen = (canvas + offset) * scale): the whole graph inside the part of the
        default window that the top bar and sidebar leave free, centred."""
        x0, y0, x1, y1 = self.bounds()
        free_w, free_h = VIEW_W - VIEW_LEFT - VIEW_RIGHT, VIEW_H - VIEW_TOP - VIEW_BOTTOM
        scale = min(free_w / (x1 - x0), free_h / (y1 - y0), VIEW_MAX_SCALE)
        left = VIEW_LEFT + (free_w - (x1 - x0) * scale) / 2
        top = VIEW_TOP + (free_h - (y1 - y0) * scale) / 2
        return {"scale": round(scale, 4), "offset": [round(left / scale - x0, 1), round(top / scale - y0, 1)]}

    # -- output -----------------------------------------------------------------------------------------
    def _order(self) -> dict[int, int]:
        deps = {n.id: set() for n in self.nodes}
        for _, src, _, dst, _, _ in self.links:
            deps[dst].add(src)
        order, done = {}, set()
        while len(done) < len(deps):
            ready = sorted(i for i, d in deps.items() if i not in done and d <= done)
            for i in ready:
                order[i] = len(order)
            done.update(ready)
        return order

    def node_ui(self, n: Node, order: int) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": n.id, "type": n.type, "pos": [float(n.pos[0]), float(n.pos[1])],
            "size": [float(n.width), float(n.height)], "flags": {}, "order": order, "mode": n.mode,
            "inputs": n.inputs, "outputs": n.outputs,
        }
        if n.title:
            d["title"] = n.title
        props = {} if n.type == "Note" else {"Node name for S&R": n.type}
        if n.type.startswith(OUR_PREFIX):
            props["cnr_id"] = "likeness"
        elif n.type != "Note":
            props["cnr_id"] = "comfy-core"
        d["properties"] = props
        d["widgets_values"] = n.widgets_values
        d.update(n.colors)
        return d

    def to_ui(self) -> dict:
        order = self._order()
        return {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"likeness/workflows/{self.name}")),  # the editor wants a UUID
            "revision": 0,
            "last_node_id": len(self.nodes),
            "last_link_id": len(self.links),
            "nodes": [self.node_ui(n, order[n.id]) for n in self.nodes],
            "links": self.links,
            "groups": self.groups,
            "config": {},
            "extra": {"ds": self.view(), "likeness": {"workflow": self.name}},
            "version": 0.4,
        }
