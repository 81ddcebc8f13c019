"""The hostile-input table (tests/hostile.py) through the real ``likeness`` command in a subprocess: each case
exits with the README's code and one line naming the value, never a traceback, prints exactly one JSON object
with --json, and leaves every file of the user as it was. Fake HTTP servers stand for the wrong servers a user
points --server at (no ComfyUI is started here, so the table stays fast)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fake_comfy import FakeServer, object_info
from hostile import CASES, TOOL_CASES, fill_argv, json_objects, make_sandbox, snapshot

ROOT = Path(__file__).resolve().parents[2]
WHOLE_TYPES = {
    "UNETLoader", "DualCLIPLoader", "VAELoader", "ControlNetLoader", "LikenessPulidFluxLoader", "LikenessEvaClipLoader",
    "LikenessFaceAnalysisLoader", "UpscaleModelLoader", "LikenessFlorence2Loader", "LikenessFaceJudgeLoader",
}  # fmt: skip


def _workflow_types() -> set[str]:
    import json

    types = set()
    for name in ("likeness_enhance_whole", "likeness_enhance_crop", "likeness_score"):
        types |= {n["class_type"] for n in json.loads((ROOT / "workflows" / "api" / f"{name}.json").read_text()).values()}
    return types | WHOLE_TYPES


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("user")
    make_sandbox(d)
    types = _workflow_types()
    servers = {
        "html": FakeServer("html"),
        "http404": FakeServer("404"),
        "nopack": FakeServer("nopack"),
        "nomodels": FakeServer("comfy", object_info(types, {("UNETLoader", "unet_name"): ["sdxl.safetensors"]})),
        "altmodels": FakeServer("comfy", object_info(types, {("UpscaleModelLoader", "model_name"): ["4x-UltraSharp.pth"]})),
    }
    values = {"d": str(d), "ref": str(d / "ref.png"), "tgt": str(d / "tgt.png"), "out": str(d / "out")}
    values.update({k: s.url for k, s in servers.items()})
    yield d, values, servers
    for s in servers.values():
        s.close()


def likeness(argv: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / ".importroot")}
    return subprocess.run([sys.executable, "-m", "likeness.client", *argv], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def assert_untouched(before: dict, after: dict) -> None:
    """No file of the user changed or vanished, and nothing new appeared outside the output folder ``out/``."""
    changed = sorted(k for k in before if after.get(k) != before[k])
    new_outside = sorted(k for k in after if k not in before and not k.startswith("out/"))
    assert not changed and not new_outside, (changed, new_outside)


def _message_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("likeness: ") and "(skipped; the other rows still run)" not in ln]


def check_case(world, argv, code, pattern, json_too=True):
    d, values, _ = world
    before = snapshot(d)
    p = likeness(fill_argv(argv, values), d)
    assert "Traceback" not in p.stderr, p.stderr[-2000:]
    assert p.returncode == code, (p.returncode, p.stderr[-2000:])
    lines = _message_lines(p.stderr)
    assert len(lines) == 1, p.stderr[-2000:]
    assert re.search(pattern, lines[0]), lines[0]
    assert_untouched(before, snapshot(d))
    if json_too:
        pj = likeness([*fill_argv(argv, values), "--json"], d)
        objs = json_objects(pj.stdout)
        assert pj.returncode == code and len(objs) == 1 and objs[0]["exit_code"] == code, (pj.stdout, pj.stderr[-1500:])
        assert re.search(pattern, objs[0]["error"]), objs[0]
        assert_untouched(before, snapshot(d))


@pytest.mark.parametrize("argv, code, pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_input_exits_with_one_line_and_changes_nothing(world, argv, code, pattern):
    check_case(world, argv, code, pattern)


@pytest.mark.slow
@pytest.mark.parametrize("argv, code, pattern", [c[1:] for c in TOOL_CASES], ids=[c[0] for c in TOOL_CASES])
def test_hostile_input_to_the_local_tools(world, argv, code, pattern):
    d, values, _ = world
    before = snapshot(d)
    p = likeness(fill_argv(argv, values), d, timeout=300)
    assert "Traceback" not in p.stderr and p.returncode == code, (p.returncode, p.stderr[-2000:])
    assert re.search(pattern, p.stderr)
    assert_untouched(before, snapshot(d))


def test_a_server_with_only_the_documented_upscaler_alternative_gets_it_queued(world):
    """README: '4x-UltraSharp.pth or RealESRGAN_x4plus.pth'. With only the alternative on the server, the client
    queues the workflow with it (the fake answers /prompt 400, so the run ends with exit 4 after queueing)."""
    d, values, servers = world
    argv = ["enhance", "--ref", values["ref"], "--target", values["tgt"], "-o", values["out"], "--server", values["altmodels"], "--json"]
    p = likeness(argv, d)
    assert p.returncode == 4 and "fake server stops here" in p.stderr, p.stderr[-2000:]
    graph = servers["altmodels"].prompts[-1]["prompt"]
    assert [n["inputs"]["model_name"] for n in graph.values() if n["class_type"] == "UpscaleModelLoader"] == ["4x-UltraSharp.pth"]
    objs = json_objects(p.stdout)
    assert len(objs) == 1 and objs[0]["exit_code"] == 4


def test_a_models_folder_with_every_documented_alternative_name_passes_the_check(world):
    """unet/, clip/, clip_vision/ and 4x-UltraSharp.pth are accepted; the check returns the upscaler to use."""
    from likeness.client.weights import check_models_folder

    d, _, _ = world
    assert check_models_folder(d / "models_full_alt", "--models", None) == "4x-UltraSharp.pth"
    assert check_models_folder(d / "models_two_esrgan", "--models", "b.pth") == "b.pth"


def test_the_table_is_big_enough():
    assert len(CASES) + len(TOOL_CASES) >= 60
