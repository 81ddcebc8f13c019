"""The SQLite job journal: idempotent adds, state moves, and a second process seeing the same state."""

import subprocess
import sys

import pytest
from likeness.client.journal import Journal, JournalError


def test_add_is_idempotent_and_refuses_a_changed_spec(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    a = j.add("b1", 0, "k1", {"seed": 1})
    again = j.add("b1", 0, "k1", {"seed": 1})
    assert a.key == again.key and again.state == "pending"
    with pytest.raises(JournalError, match="'k1' is already in .* with different settings"):
        j.add("b1", 0, "k1", {"seed": 2})
    assert len(j.jobs("b1")) == 1


def test_state_moves_and_counts(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    for i in range(3):
        j.add("b", i, f"k{i}", {"i": i})
    token = j.submitting("k0", "http://s")
    assert j.get("k0").state == "submitting" and j.get("k0").token == token and j.get("k0").attempts == 1
    j.queued("k0", "p0", "http://s")
    j.done("k0", {"files": ["a.png"]})
    j.submitting("k1", "http://s")
    j.failed("k1", "boom")
    j.submitting("k2", "http://s")
    j.queued("k2", "p2", "http://s")
    j.reset("k2")
    assert j.counts("b") == {"pending": 1, "submitting": 0, "queued": 0, "done": 1, "failed": 1}
    assert j.get("k0").result == {"files": ["a.png"]}
    assert j.get("k2").prompt_id is None and j.get("k2").attempts == 1


def test_another_process_reads_what_was_written(tmp_path):
    path = tmp_path / "j.sqlite"
    j = Journal(path)
    j.add("b", 0, "k", {"x": 1})
    j.done("k", {"ok": True})
    code = (
        "from likeness.client.journal import Journal; "
        f"print(Journal({str(path)!r}).get('k').state)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "done"
