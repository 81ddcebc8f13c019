"""The shipped workflows keep the titles, parameters and file names that contract.py writes down.

A client fills workflows by title (client/params.py reads contract.PARAMETERS); these tests fail when a
workflow in workflows/ or workflows/api/ drifts from the contract (a renamed node, a title the client can no
longer find, a parameter a workflow lost), and when a title or file name is spelled outside contract.py.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from likeness import contract as C
from likeness.client.params import fill, nodes_titled

ROOT = Path(__file__).resolve().parents[2]
API = ROOT / "workflows" / "api"

# What the client sets on each workflow (likeness enhance / score / the avatar workflow's documented inputs).
FILLED = {
    C.WORKFLOW_ENHANCE_WHOLE: dict(reference="r.png", target="t.png", seed=1, steps=2, denoise=0.5, prompt="p",
                                   pulid_weight=0.7, pulid_start=0.1, pulid_end=0.9, control_strength=0.8,
                                   control_start=0.1, control_end=0.8, judge="dlib (hog)", output_prefix="x"),
    C.WORKFLOW_ENHANCE_CROP: dict(reference="r.png", reference_2="r2.png", target="t.png", seed=1, steps=2,
                                  denoise=0.5, prompt="p", pulid_weight=0.7, working_size=512, judge="dlib (hog)",
                                  output_prefix="x"),
    C.WORKFLOW_SCORE: dict(reference="r.png", target="t.png", enhanced="e.png", judge="dlib (hog)"),
    C.WORKFLOW_AVATAR: dict(reference="r.png", pose="p.png", prompt="p", seed=1, steps=2, width=512, height=512,
                            pulid_weight=0.4, control_strength=0.8, output_prefix="x"),
    C.WORKFLOW_MULTI_ID: dict(reference="r.png", reference_2="r2.png", prompt="p", seed=1, steps=2, width=512,
                              height=512, pulid_weight=0.9, pulid_start=0.0, pulid_end=1.0, output_prefix="x"),
    C.WORKFLOW_ENHANCE_KONTEXT: dict(reference="r.png", target="t.png", seed=1, steps=2, denoise=1.0, prompt="p",
                                     pulid_weight=0.7, pulid_start=0.1, pulid_end=0.9, judge="dlib (hog)",
                                     output_prefix="x"),
    C.WORKFLOW_ENHANCE_KONTEXT_CROP: dict(reference="r.png", target="t.png", seed=1, steps=2, denoise=1.0, prompt="p",
                                          pulid_weight=0.7, pulid_start=0.1, pulid_end=0.9, working_size=512,
                                          judge="dlib (hog)", output_prefix="x"),
    C.WORKFLOW_ENHANCE_FLUX2: dict(reference="r.png", target="t.png", seed=1, steps=2, denoise=0.7, prompt="p",
                                   working_size=512, judge="dlib (hog)", output_prefix="x"),
}  # fmt: skip


def _api(name: str) -> dict:
    return json.loads((API / f"{name}.json").read_text())


def _ui_titles(name: str) -> set[str]:
    ui = json.loads((ROOT / "workflows" / f"{name}.json").read_text())
    return {n.get("title") or "" for n in ui["nodes"]}


def test_every_shipped_workflow_is_named_in_the_contract():
    shipped = {p.stem for p in API.glob("*.json")}
    assert shipped == set(FILLED) and shipped == {p.stem for p in (ROOT / "workflows").glob("*.json")}


@pytest.mark.parametrize("name", sorted(FILLED))
def test_the_client_can_fill_every_parameter_it_uses(name):
    filled = fill(_api(name), **FILLED[name])  # raises WorkflowParameterError naming the missing title
    for param, value in FILLED[name].items():
        hits = [(nid, inp) for title, inp in C.PARAMETERS[param] for nid in nodes_titled(filled, title)]
        assert hits and all(filled[nid]["inputs"][inp] == value for nid, inp in hits), param


@pytest.mark.parametrize("name", sorted(FILLED))
def test_ui_and_api_copies_carry_the_same_contract_titles(name):
    titles = {t for t in (C.__dict__[k] for k in dir(C) if k.isupper()) if isinstance(t, str)}
    api_titles = {(n.get("_meta") or {}).get("title", "") for n in _api(name).values()}
    contract_in_api = {t for t in titles if any(a == t or a.startswith(t + " (") for a in api_titles)}
    contract_in_ui = {t for t in titles if any(a == t or a.startswith(t + " (") for a in _ui_titles(name))}
    assert contract_in_api <= contract_in_ui  # the UI copy may hold the bypassed LoRA the API copy drops


def test_every_contract_title_is_used_by_a_shipped_workflow():
    used = set().union(*(_ui_titles(n) for n in FILLED))
    wanted = {t for pairs in C.PARAMETERS.values() for t, _ in pairs}
    wanted |= {C.DISTANCE_BEFORE, C.DISTANCE_AFTER, C.IDENTITY_DISTANCE}
    assert [t for t in wanted if not any(u == t or u.startswith(t + " (") for u in used)] == []


def test_scored_workflows_name_their_distances_as_the_client_reads_them():
    for name in (C.WORKFLOW_ENHANCE_WHOLE, C.WORKFLOW_ENHANCE_CROP, C.WORKFLOW_SCORE):
        titles = sorted(n["_meta"]["title"] for n in _api(name).values() if n["class_type"] == "LikenessFaceEmbedDistance")
        assert titles == [C.DISTANCE_AFTER, C.DISTANCE_BEFORE], (name, titles)


def test_workflows_load_the_contract_file_names():
    text = "".join((API / f"{n}.json").read_text() for n in FILLED)
    for name in (C.FLUX_DEV, C.T5XXL, C.CLIP_L, C.FLUX_VAE, C.UNION_PRO, C.PULID_FLUX, C.EVA_CLIP, C.PARSING):
        assert f'"{name}"' in text, name


def test_titles_history_keys_and_file_names_are_written_only_in_the_contract():
    """No other runtime module spells them as string literals (docstrings and tooltips aside)."""
    spelled = {C.HISTORY_FACE_DISTANCE, C.HISTORY_REPORT, C.FLUX_DEV, C.PULID_FLUX, C.EVA_CLIP, C.T5XXL, C.UNION_PRO,
               C.DISTANCE_BEFORE, C.DISTANCE_AFTER, C.REFERENCE, C.TARGET, C.SAMPLER, C.APPLY_PULID}
    offenders = []
    for d in ("client", "nodes", "tools", "face", "caption", "common"):
        for p in sorted((ROOT / d).rglob("*.py")):
            tree = ast.parse(p.read_text())
            # a preview file's prefix may coincide with a key ("likeness_report"); it is not the contract
            prefixes = {id(a) for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "save_preview" for a in n.args}
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and node.value in spelled and id(node) not in prefixes:
                    offenders.append(f"{p.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert offenders == []
