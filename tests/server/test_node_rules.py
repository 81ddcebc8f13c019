"""Every node the pack registers follows the pack's rules, read from the live server's /object_info."""

import re

import pytest

CORE_TYPES_HINT = "types that some core node also uses are shared ComfyUI types (MODEL, IMAGE, ...)"


@pytest.fixture(scope="module")
def object_info(comfy):
    return comfy.client.object_info()


def _ours(object_info):
    return {k: v for k, v in object_info.items() if v.get("python_module") == "custom_nodes.likeness"}


def _core_types(object_info):
    types = set()
    for info in object_info.values():
        if not str(info.get("python_module", "")).startswith("custom_nodes"):
            for section in ("required", "optional"):
                for spec in (info.get("input", {}).get(section) or {}).values():
                    if isinstance(spec[0], str):
                        types.add(spec[0])
            types.update(t for t in info.get("output", []) if isinstance(t, str))
    return types


def test_pack_registers_nodes(object_info):
    from packinfo import pack_node_ids

    ours = _ours(object_info)
    assert sorted(ours) == sorted(pack_node_ids())


def test_every_node_follows_the_rules(object_info):
    core = _core_types(object_info)
    problems = []
    for node_id, info in _ours(object_info).items():
        if not node_id.startswith("Likeness"):
            problems.append(f"{node_id}: id must start with 'Likeness'")
        cat = info.get("category", "")
        if not (cat == "Likeness" or cat.startswith("Likeness/")):
            problems.append(f"{node_id}: category {cat!r} not under 'Likeness/'")
        if len(info.get("description", "").strip()) < 20:
            problems.append(f"{node_id}: needs a description")
        name = info.get("display_name", "")
        if not name or name == node_id or "_" in name or not re.match(r"^[A-Z]", name):
            problems.append(f"{node_id}: display name {name!r} is not plain English")
        for section in ("required", "optional"):
            for inp, spec in (info.get("input", {}).get(section) or {}).items():
                opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                if not opts.get("tooltip"):
                    problems.append(f"{node_id}: input {inp!r} has no tooltip")
                t = spec[0]
                if isinstance(t, str) and t not in core and not t.startswith("LIKENESS_") and t.isupper():
                    problems.append(f"{node_id}: input type {t} is neither a core type nor LIKENESS_-prefixed")
        for t in info.get("output", []):
            if isinstance(t, str) and t not in core and not t.startswith("LIKENESS_"):
                problems.append(f"{node_id}: output type {t} is neither a core type nor LIKENESS_-prefixed")
    assert not problems, "\n".join(problems)
