"""`likeness demo` without one of the extras it needs: one line naming the pip command, exit 2, nothing started."""

import subprocess
import sys

import pytest
from likeness.client.server import IMPORT_ROOT

# sys.modules[name] = None makes the module absent for import and for importlib.util.find_spec alike.
RUN = "import sys; sys.modules.update(dict.fromkeys({hidden!r})); from likeness.client.cli import main; raise SystemExit(main(['demo', '-o', {out!r}]))"


@pytest.mark.parametrize(
    "hidden, named",
    [(["dlib"], "dlib"), (["onnxruntime"], "onnxruntime"), (["insightface", "face_recognition_models"], "insightface, face_recognition_models")],
)
def test_demo_names_the_missing_extra_in_one_line(tmp_path, hidden, named):
    out = tmp_path / "outputs"
    p = subprocess.run(
        [sys.executable, "-c", RUN.format(hidden=hidden, out=str(out))],
        env={"PYTHONPATH": str(IMPORT_ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2, p.stderr
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, p.stderr
    assert "Traceback" not in p.stderr
    assert f"lacks {named}:" in lines[0]
    assert 'pip install "likeness[insightface,dlib]"' in lines[0]
    assert not out.exists()  # checked before anything was started or written
