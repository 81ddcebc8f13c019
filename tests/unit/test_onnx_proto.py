"""Our own ONNX encoder (standins/onnx_proto.py) against the ``onnx`` package, and the demo's writer without onnx.

The stand-in insightface graphs are built once (standins/insightface_onnx.py) through a writer object. Here the
same builders run through an ``onnx.helper``-backed writer; the bytes our encoder writes must be identical to
what ``onnx`` serializes, and must pass ``onnx.checker`` (with shape inference), so the two cannot drift.
"""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from likeness.client.server import IMPORT_ROOT
from likeness.standins.insightface_onnx import build_detector, build_recognizer
from likeness.standins.onnx_proto import ProtoWriter, _varint

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


class OnnxWriter:
    """The reference writer: the same five calls, answered by the onnx package."""

    def tensor(self, name, array):
        return numpy_helper.from_array(array, name)

    def node(self, op_type, inputs, outputs, name, **attrs):
        return helper.make_node(op_type, inputs, outputs, name=name, **attrs)

    def value_info(self, name, dims):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)

    def model(self, graph_name, nodes, inputs, outputs, initializers, *, opset, ir_version, producer):
        graph = helper.make_graph(nodes, graph_name, inputs, outputs, initializer=initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name=producer)
        model.ir_version = ir_version
        return model


CASES = [
    ("detector, 1 face", lambda w: build_detector(w, faces=1)),
    ("detector, no face", lambda w: build_detector(w, faces=0)),
    ("detector, 3 faces", lambda w: build_detector(w, faces=3)),
    ("detector, score 0.6, box 80", lambda w: build_detector(w, faces=2, score=0.6, box_size=80.0)),
    ("recogniser", lambda w: build_recognizer(w)),
    ("recogniser, 128-d, seed 7", lambda w: build_recognizer(w, dim=128, seed=7)),
]


@pytest.mark.parametrize("build", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_our_bytes_equal_what_onnx_serializes_and_pass_the_checker(build):
    ours = build(ProtoWriter())
    reference = build(OnnxWriter())
    assert ours == reference.SerializeToString()
    parsed = onnx.load_model_from_string(ours)
    onnx.checker.check_model(parsed, full_check=True)
    assert parsed == reference


def test_varint_matches_protobuf_for_edge_values():
    # Negative int64 (Reshape's -1 is raw data, but attributes could be negative): 10-byte two's complement.
    t = numpy_helper.from_array(np.zeros(1, np.float32), "x")
    for n in (0, 1, 127, 128, 300, 2**31, 2**63 - 1, -1, -2):
        t.ClearField("dims")
        t.dims.append(n)
        assert t.SerializeToString().startswith(b"\x08" + _varint(n))


def test_demo_stand_in_writer_runs_with_onnx_unimportable(tmp_path):
    """``python -m likeness.standins`` (what the demo runs) with a blocker that makes ``import onnx`` fail."""
    block = tmp_path / "block"
    block.mkdir()
    (block / "onnx.py").write_text("raise ImportError('onnx is blocked for this test')\n")
    models = tmp_path / "models"
    env_path = f"{block}:{IMPORT_ROOT}"
    probe = textwrap.dedent(
        """
        import runpy, sys
        try:
            import onnx  # noqa: F401
        except ImportError:
            pass
        else:
            raise SystemExit("the onnx blocker did not work")
        sys.argv = ["likeness.standins", sys.argv[1]]
        runpy.run_module("likeness.standins", run_name="__main__")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(models)],
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    files = json.loads(out.stdout.strip().splitlines()[-1])
    assert files["esrgan"].endswith(".safetensors")
    packs = models / "insightface" / "models"
    written = sorted(p.relative_to(packs).as_posix() for p in packs.rglob("*.onnx"))
    assert written == [
        "antelopev2/glintr100.onnx",
        "antelopev2/scrfd_10g_bnkps.onnx",
        "noface/det_10g.onnx",
        "noface/w600k_r50.onnx",
        "three_faces/det_10g.onnx",
        "three_faces/w600k_r50.onnx",
    ]
    # The files written without onnx are the reference graphs, byte for byte.
    assert (packs / "three_faces" / "det_10g.onnx").read_bytes() == build_detector(OnnxWriter(), faces=3).SerializeToString()
    assert (packs / "antelopev2" / "glintr100.onnx").read_bytes() == build_recognizer(OnnxWriter()).SerializeToString()
