"""Subgraph blueprints made of a shipped workflow: its nodes minus the loaders, images and notes, in one node.

ComfyUI 0.3.75 serves ``<pack>/subgraphs/*.json`` at /global_subgraphs (app/subgraph_manager.py); the editor
(comfyui-frontend-package 1.32.9 and 1.58.1) registers each file as the node "SubgraphBlueprint.<file stem>"
titled by the file stem. A blueprint file is a workflow whose single node is an instance of the subgraph in
``definitions.subgraphs`` (the format the editor's "Publish subgraph" writes, read off its
``ExportedSubgraph`` serialisation). Every link from an outside node becomes one input of the subgraph, named by
the outside node's title; each widget an artist tunes becomes an input linked to the inner widget(s)
(``Graph.promote``), which the editor shows as a widget on the blueprint node and sends to the inner nodes.
"""

from __future__ import annotations

import uuid
from typing import Any

from likeness.client.workflow_format import input_specs

from .graph import Graph

INPUT_NODE, OUTPUT_NODE = -10, -20  # the subgraph's own input and output nodes


def _uid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "likeness/subgraphs/" + "/".join(parts)))


def _io(name: str, type_: str, link_ids: list[int], key: str, y: float) -> dict[str, Any]:
    return {"id": _uid(key, name), "name": name, "type": type_, "linkIds": link_ids, "localized_name": name,
            "label": name, "pos": [0, y]}


class _Builder:
    """Collects the subgraph's inputs, outputs and links from the full workflow's UI form."""

    def __init__(self, g: Graph, name: str):
        self.g, self.name = g, name
        self.ui = g.to_ui()
        self.inner = {n["id"]: n for n in self.ui["nodes"] if n["id"] not in g.outside}
        self.slot_of = {nid: self._canonical_inputs(node) for nid, node in self.inner.items()}
        self.inputs: list[dict] = []
        self.outputs: list[dict] = []
        self.links: list[dict] = []
        self.next_link = max(link[0] for link in self.ui["links"]) + 1

    def _canonical_inputs(self, node: dict) -> dict[str, int]:
        """Inputs in the order the editor builds them inside a subgraph (1.32.9 and 1.58.1): sockets, then one
        input per widget in /object_info order; returns input name -> slot (a link's target_slot indexes this)."""
        specs = input_specs(self.g.info[node["type"]])
        old = {i["name"]: i for i in node["inputs"]}
        sockets = [old[s.name] for s in specs if not s.is_widget and s.name in old]
        widgets = [{"name": s.name, "type": s.type, "widget": {"name": s.name}, "link": old.get(s.name, {}).get("link")}
                   for s in specs if s.is_widget]
        node["inputs"] = sockets + widgets
        return {i["name"]: k for k, i in enumerate(node["inputs"])}

    def _link(self, lid: int, src: int, s_slot: int, dst: int, d_slot: int, kind: str) -> None:
        self.links.append({"id": lid, "origin_id": src, "origin_slot": s_slot, "target_id": dst, "target_slot": d_slot,
                           "type": kind})

    def wire(self) -> None:
        """Inner links stay; a link from outside comes from the subgraph input named by its source's title."""
        titles = {n["id"]: n.get("title") or n["type"] for n in self.ui["nodes"]}
        old_names = {n["id"]: [i["name"] for i in n["inputs"]] for n in self.g.to_ui()["nodes"]}
        types = {n["id"]: n["type"] for n in self.ui["nodes"]}
        boundary = sorted({(src, s_slot, kind) for _, src, s_slot, dst, _, kind in self.ui["links"]
                           if dst in self.inner and src not in self.inner},
                          key=lambda s: (types[s[0]] != "LoadImage", s[0], s[1]))  # the images first
        by_source = {}
        for src, s_slot, kind in boundary:
            by_source[(src, s_slot)] = len(self.inputs)
            self.inputs.append(_io(titles[src], kind, [], self.name, 20 * len(self.inputs)))
        for lid, src, s_slot, dst, d_slot, kind in self.ui["links"]:
            if dst not in self.inner:
                continue
            d_slot = self.slot_of[dst][old_names[dst][d_slot]]
            if src in self.inner:
                self._link(lid, src, s_slot, dst, d_slot, kind)
                continue
            slot = by_source[(src, s_slot)]
            self.inputs[slot]["linkIds"].append(lid)
            self._link(lid, INPUT_NODE, slot, dst, d_slot, kind)

    def promote(self) -> list[Any]:
        """Each promoted widget: a subgraph input linked to the inner widget inputs; returns the values."""
        values = []
        for label, targets in self.g.promote:
            slot = len(self.inputs)
            node0, widget0 = targets[0]
            spec = next(s for s in input_specs(self.g.info[node0.type]) if s.name == widget0)
            io = _io(label, spec.type, [], self.name, 20 * slot)
            self.inputs.append(io)
            for node, widget in targets:
                lid, self.next_link = self.next_link, self.next_link + 1
                target = self.slot_of[node.id][widget]
                self.inner[node.id]["inputs"][target]["link"] = lid
                io["linkIds"].append(lid)
                self._link(lid, INPUT_NODE, slot, node.id, target, spec.type)
            values.append(node0.widgets.get(widget0, spec.options.get("default")))
        return values

    def expose(self, outputs: list[tuple[str, Any, int]]) -> None:
        for name, node, slot in outputs:
            lid, self.next_link = self.next_link, self.next_link + 1
            out = self.inner[node.id]["outputs"][slot]
            out["links"].append(lid)
            self.outputs.append(_io(name, out["type"], [lid], self.name + "/out", 20 * len(self.outputs)))
            self._link(lid, node.id, slot, OUTPUT_NODE, len(self.outputs) - 1, out["type"])


def blueprint(g: Graph, name: str, description: str, outputs: list[tuple[str, Any, int]]) -> dict:
    """The blueprint file for ``g``: one instance node of a subgraph holding every node not in ``g.outside``."""
    b = _Builder(g, name)
    b.wire()
    values = b.promote()
    b.expose(outputs)
    xs = [n["pos"][0] for n in b.inner.values()]
    ys = [n["pos"][1] for n in b.inner.values()]
    x0, x1, y0 = min(xs), max(xs) + 400, min(ys)
    sg_id = _uid(name)
    definition = {
        "id": sg_id, "version": 1,
        "state": {"lastGroupId": 0, "lastNodeId": max(b.inner), "lastLinkId": b.next_link - 1, "lastRerouteId": 0},
        "revision": 0, "config": {}, "name": name,
        "inputNode": {"id": INPUT_NODE, "bounding": [x0 - 300, y0, 160, 30 + 20 * len(b.inputs)]},
        "outputNode": {"id": OUTPUT_NODE, "bounding": [x1 + 100, y0, 160, 30 + 20 * len(b.outputs)]},
        "inputs": b.inputs, "outputs": b.outputs, "widgets": [],
        "nodes": sorted(b.inner.values(), key=lambda n: n["id"]), "groups": [], "links": b.links, "extra": {},
    }
    node = {
        "id": 1, "type": sg_id, "title": name, "pos": [0, 0], "size": [400, 60 + 24 * len(b.inputs)], "flags": {},
        "order": 0, "mode": 0,
        "inputs": [{"name": io["name"], "localized_name": io["name"], "label": io["name"], "type": io["type"],
                    "link": None, **({"widget": {"name": io["name"]}} if k >= len(b.inputs) - len(values) else {})}
                   for k, io in enumerate(b.inputs)],
        "outputs": [{"name": io["name"], "localized_name": io["name"], "label": io["name"], "type": io["type"],
                     "links": []} for io in b.outputs],
        "properties": {}, "widgets_values": values,
    }
    return {
        "id": _uid(name, "file"), "revision": 0, "last_node_id": 1, "last_link_id": 0, "nodes": [node], "links": [],
        "groups": [], "definitions": {"subgraphs": [definition]}, "config": {},
        "extra": {"BlueprintDescription": description}, "version": 0.4,
    }
