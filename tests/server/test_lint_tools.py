"""The ecosystem's workflow linters on the shipped files (issue 18): comfy-lint on every API copy, comfy-draftsman's
lint on every UI workflow.

Both run from their own virtualenvs (scripts/bootstrap.sh, step "workflow linters": ``comfy-lint==0.1.0`` and
``comfy-draftsman==0.25.3`` under ~/.cache/likeness/tools/; ``LIKENESS_LINT_TOOLS`` points elsewhere), against the
live server's /object_info. The shipped files name the README's model files, which this server does not have, so
the schema given to comfy-lint lists them as a user's installed files (only those user-file inputs are widened).

The one exception, reasoned: comfy-lint 0.1.0 reports ``type-mismatch`` when an output of type T feeds an input
declared as the union "T,U" (Auto-crop's ``detector`` takes LIKENESS_FACE_ANALYSIS or LIKENESS_FACE_JUDGE). ComfyUI
accepts exactly this: ``comfy_execution.validation.validate_node_input`` treats "T1,T2,..." as a union and passes
when the types overlap, and tests/server/test_workflows.py queues these graphs through /prompt and they run; the
test below also posts one to /prompt and checks the server raised no node error for that input.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import photos
import pytest
from likeness.client.params import fill, nodes_titled
from likeness.client.workflow_format import load_workflow
from likeness.standins.substitution import USER_FILE_INPUTS, to_standins
from packinfo import shipped_workflows

ROOT = Path(__file__).resolve().parents[2]
NAMES = shipped_workflows()  # every shipped UI workflow
TOOLS = Path(os.environ.get("LIKENESS_LINT_TOOLS") or Path.home() / ".cache" / "likeness" / "tools")
DRAFTSMAN_LINT = """
import json, sys
from comfy_draftsman.graph.lint import lint
from comfy_draftsman.graph.model import Workflow
info = json.load(open(sys.argv[1]))
print(json.dumps({p: lint(Workflow.from_ui(json.load(open(p))), info) for p in sys.argv[2:]}))
"""


def _tool(*parts: str) -> Path:
    path = TOOLS.joinpath(*parts)
    if not path.is_file():
        if os.environ.get("LIKENESS_NO_LINT_TOOLS") == "1":
            pytest.skip("LIKENESS_NO_LINT_TOOLS=1: the workflow linters are not installed")
        pytest.fail(f"no {path}: run `bash scripts/bootstrap.sh` (step 'workflow linters'), point LIKENESS_LINT_TOOLS "
                    "at a folder with comfy-lint/ and comfy-draftsman/ virtualenvs, or set LIKENESS_NO_LINT_TOOLS=1",
                    pytrace=False)
    return path


def _is_union_detector(finding: dict, api: dict) -> bool:
    """The reasoned exception: an output whose type is one member of the input's declared union type."""
    if finding.get("rule") != "type-mismatch" or finding.get("field") != "detector":
        return False
    node = api.get(str(finding.get("node_id"))) or {}
    declared = "expects LIKENESS_FACE_ANALYSIS,LIKENESS_FACE_JUDGE but"
    return node.get("class_type") == "LikenessAutoCropFace" and declared in finding["message"]


def _schema_with_user_files(object_info: dict, apis: list[dict]) -> dict:
    """/object_info as on a machine with the README's model files and the workflows' images in place."""
    info = copy.deepcopy(object_info)
    for api in apis:
        for node in api.values():
            for name, value in node["inputs"].items():
                if (node["class_type"], name) in USER_FILE_INPUTS or node["class_type"] == "LoadImage":
                    spec = info[node["class_type"]]["input"]["required"].get(name) or info[node["class_type"]]["input"]["optional"][name]
                    if isinstance(value, str) and isinstance(spec[0], list) and value not in spec[0]:
                        spec[0].append(value)
                    elif isinstance(value, str) and spec[0] == "COMBO" and value not in spec[1].setdefault("options", []):
                        spec[1]["options"].append(value)
    return info


def test_comfy_lint_passes_on_every_api_workflow_but_the_union_socket(comfy, tmp_path):
    exe = _tool("comfy-lint", "bin", "comfy-lint")
    apis = {name: load_workflow(name) for name in NAMES}
    schema = tmp_path / "object_info.json"
    schema.write_text(json.dumps(_schema_with_user_files(comfy.client.object_info(), list(apis.values()))))
    files = [str(ROOT / "workflows" / "api" / f"{name}.json") for name in NAMES]
    run = subprocess.run([str(exe), "--schema-cache", str(schema), "--json", "--color", "never", *files],
                         capture_output=True, text=True, timeout=120)
    report = json.loads(run.stdout)
    assert report["summary"]["files"] == len(NAMES) and not report["summary"]["unreadable"], report["summary"]
    findings = [(Path(f["path"]).stem, d) for f in report["files"] for d in f["diagnostics"]]
    excepted = [f for stem, f in findings if _is_union_detector(f, apis[stem])]
    others = [f for stem, f in findings if not _is_union_detector(f, apis[stem])]
    assert not others, "comfy-lint:\n" + "\n".join(json.dumps(f) for f in others)
    assert excepted, "the union-socket exception no longer fires: drop it from this test"
    # ComfyUI itself takes the graph comfy-lint flags: /prompt validates every link's type and the job runs
    two_faces = comfy.upload(np.ascontiguousarray(photos.group_t1()[200:480, 0:640]), "lint_two_faces.png")
    face = comfy.upload(photos.astronaut(), "lint_reference.png")
    api = fill(apis["likeness_enhance_crop"], reference=face, reference_2=face, target=two_faces)
    result = comfy.run(to_standins(api, files=comfy.files, steps=1, size=64))
    assert [nid for nid in nodes_titled(api, "Save result") if nid in result.outputs]


def test_comfy_draftsman_lint_is_clean_on_every_ui_workflow(comfy, tmp_path):
    python = _tool("comfy-draftsman", "bin", "python")
    schema = tmp_path / "object_info.json"
    schema.write_text(json.dumps(comfy.client.object_info()))
    files = [str(ROOT / "workflows" / f"{name}.json") for name in NAMES]
    run = subprocess.run([str(python), "-c", DRAFTSMAN_LINT, str(schema), *files], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    findings = json.loads(run.stdout)
    assert set(findings) == set(files)
    assert not {Path(p).name: f for p, f in findings.items() if f}, json.dumps(findings, indent=1)
