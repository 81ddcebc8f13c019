"""No write outside the output folder and no user file replaced (issue 15 items 1-3), on the client's own
helpers: the name check and its suggestion (hypothesis), never-overwrite publishing, symbolic links inside -o,
results merged across runs and processes, and the batch CSV reader (hypothesis: any table of cells gives pairs or
row-numbered rejections, never an exception)."""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from likeness.client.inputs import read_pairs
from likeness.client.problems import InputError
from likeness.client.results import merge_results
from likeness.client.safe_names import check_name, inside, replace_own, suggest_name, unique_names, write_new
from PIL import Image

ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=120)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(raw=ANY_TEXT)
def test_a_name_is_refused_or_stays_inside_the_folder_and_the_suggestion_is_always_accepted(tmp_path, raw):
    suggestion = suggest_name(raw)
    assert check_name(suggestion) == suggestion
    try:
        name = check_name(raw)
    except InputError as err:
        assert "must be a plain file name" in str(err) and repr(suggestion) in str(err)
        return
    target = (tmp_path / f"{name}_enhanced.png").resolve()
    assert target.parent == tmp_path.resolve() and name == raw


@given(names=st.lists(st.sampled_from(["a", "A", "a-2", "b", "a-3"]), max_size=12))
def test_duplicate_names_become_distinct_case_insensitively(names):
    out = unique_names(names)
    assert len({n.lower() for n in out}) == len(out) and len(out) == len(names)


def test_publishing_never_replaces_a_different_file_and_reuses_an_identical_one(tmp_path):
    user = tmp_path / "x_enhanced.png"
    user.write_bytes(b"the user's own picture")
    p = write_new(tmp_path, "x_enhanced", ".png", b"result 1")
    assert p.name == "x_enhanced-2.png" and user.read_bytes() == b"the user's own picture"
    assert write_new(tmp_path, "x_enhanced", ".png", b"result 1") == p  # a resumed run: same bytes, same file
    assert write_new(tmp_path, "x_enhanced", ".png", b"result 2").name == "x_enhanced-3.png"
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".likeness-")]  # no temporary left


def test_symbolic_links_inside_the_output_folder_are_never_written_through(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    precious = outside / "precious.png"
    precious.write_bytes(b"keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / "jobs").symlink_to(outside, target_is_directory=True)
    (out / "x_enhanced.png").symlink_to(precious)
    with pytest.raises(InputError, match="symbolic link"):
        replace_own(out, "jobs/precious.png", b"overwritten")
    with pytest.raises(InputError, match="outside the output folder"):
        inside(out, "../outside/precious.png")
    p = write_new(out, "x_enhanced", ".png", b"result")
    assert p.name == "x_enhanced-2.png" and precious.read_bytes() == b"keep me"
    replace_own(out, "likeness_results.json", b"{}")
    (out / "likeness_results.csv").symlink_to(precious)
    replace_own(out, "likeness_results.csv", b"a,b\n")  # replaces the link itself, not its target
    assert precious.read_bytes() == b"keep me" and not (out / "likeness_results.csv").is_symlink()


def _merge_many(args):
    out, i = args
    merge_results(Path(out), [{"job": f"job{i}", "name": f"n{i}", "try": 1, "state": "done"}], {"run": f"r{i}"})


def test_two_processes_merging_results_lose_no_row(tmp_path):
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map_async(_merge_many, [(str(tmp_path), i) for i in range(24)]).get(timeout=300)  # a lost worker fails
    rows = json.loads((tmp_path / "likeness_results.json").read_text())["rows"]
    assert sorted(r["job"] for r in rows) == sorted(f"job{i}" for i in range(24))
    with open(tmp_path / "likeness_results.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 24


def test_an_unreadable_results_file_is_moved_aside_not_lost(tmp_path):
    (tmp_path / "likeness_results.json").write_text("{ half a file")
    merge_results(tmp_path, [{"job": "j", "name": "n", "try": 1}], {"run": "r"})
    aside = list(tmp_path.glob("likeness_results.json.unreadable-*"))
    assert len(aside) == 1 and aside[0].read_text() == "{ half a file"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("imgs")
    Image.new("RGB", (64, 64), (90, 120, 150)).save(d / "ref.png")
    Image.new("RGB", (64, 64), (150, 120, 90)).save(d / "tgt.png")
    return d


CELL = st.one_of(st.sampled_from(["ref.png", "tgt.png", "gone.png", "", " ", "../x", "/abs", "42", "-1", "1e3", "a;b", "ref.png;tgt.png"]), ANY_TEXT)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(CELL, min_size=0, max_size=5), max_size=6), bom=st.booleans(), delim=st.sampled_from([",", ";", "\t"]))
def test_any_csv_gives_pairs_or_row_numbered_rejections_never_a_crash(images, rows, bom, delim):
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delim)
    w.writerow(["reference", "target", "name", "seed"])
    w.writerows(rows)
    path = images / "pairs.csv"
    path.write_text(("\ufeff" if bom else "") + buf.getvalue(), encoding="utf-8", errors="surrogatepass")
    try:
        pairs, rejected = read_pairs(str(path), None, {"seed": 1})
    except InputError as err:
        assert "\n" not in str(err)
        return
    for pair in pairs:
        assert (images / f"{pair['name']}_enhanced.png").resolve().parent == images.resolve()
        assert 0 <= pair["params"]["seed"] < 2**64 and isinstance(pair["row"], int)
    assert len({p["name"].lower() for p in pairs}) == len(pairs)
    assert all(r["error"].startswith(f"row {r['row']}:") for r in rejected)


def test_a_folder_of_pairs_with_one_bad_subfolder_keeps_the_good_one(images, tmp_path):
    for sub, files in {"good": ["ref_a.png", "target.png"], "bad": ["ref_a.png"]}.items():
        (tmp_path / sub).mkdir()
        for f in files:
            os.link(images / "ref.png", tmp_path / sub / f)
    pairs, rejected = read_pairs(None, str(tmp_path), {})
    assert [p["name"] for p in pairs] == ["good"] and rejected[0]["row"] == 1 and "found 0 target" in rejected[0]["error"]


FOLDER_NAME = st.text(st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=30).filter(lambda n: n not in (".", ".."))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layout=st.dictionaries(FOLDER_NAME, st.lists(st.sampled_from(["ref_a.png", "ref2_b.png", "target.png", "target_2.png", "notes.txt", "ref.gif"]), unique=True, max_size=4), max_size=5))
def test_any_folder_of_pairs_gives_safe_names_or_numbered_rejections(images, tmp_path_factory, layout):
    root = tmp_path_factory.mktemp("pairs")
    for sub, files in layout.items():
        try:
            (root / sub).mkdir()
        except OSError:  # a name the file system refuses (too long in bytes)
            continue
        for f in files:
            os.link(images / "ref.png", root / sub / f)
    try:
        pairs, rejected = read_pairs(None, str(root), {})
    except InputError as err:
        assert "\n" not in str(err)
        return
    for pair in pairs:
        assert check_name(pair["name"]) == pair["name"]
        assert (root / f"{pair['name']}_enhanced.png").resolve().parent == root.resolve()
    assert len({p["name"].lower() for p in pairs}) == len(pairs)  # 'a b' and 'a_b' get distinct outputs
    assert all(isinstance(r["row"], int) for r in rejected)
