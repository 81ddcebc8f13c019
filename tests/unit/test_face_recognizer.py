"""face.recognizer: PuLID-Flux's guard looks at the recogniser's graph (IResNet-100 glintr100), not the folder name."""

from __future__ import annotations

import pytest
from likeness.face.judge import InsightFaceJudge
from likeness.face.recognizer import ANTELOPEV2, WrongFaceModelError, check_antelopev2, recognizer_fingerprint
from likeness.standins.insightface_onnx import write_tiny_insightface, write_tiny_recognizer


def test_fingerprints_tell_glintr100_from_w600k_r50_at_the_same_widths(tmp_path):
    glint = recognizer_fingerprint(write_tiny_recognizer(tmp_path / "glintr100.onnx"))
    r50 = recognizer_fingerprint(write_tiny_recognizer(tmp_path / "w600k_r50.onnx"))
    assert (glint.input_side, glint.output_dim, glint.convs, glint.architecture) == (112, 512, 103, "IResNet-100")
    assert (r50.input_side, r50.output_dim, r50.convs, r50.architecture) == (112, 512, 53, "IResNet-50")
    assert glint.convs == ANTELOPEV2.convs


def test_antelopev2_passes(tmp_path):
    judge = InsightFaceJudge(write_tiny_insightface(tmp_path / "antelopev2", rec_name="glintr100.onnx"))
    assert check_antelopev2(judge).architecture == "IResNet-100"


def test_buffalo_l_files_in_a_folder_named_antelopev2_are_refused(tmp_path):
    judge = InsightFaceJudge(write_tiny_insightface(tmp_path / "antelopev2", rec_name="w600k_r50.onnx"))
    with pytest.raises(WrongFaceModelError) as err:
        check_antelopev2(judge)
    msg = str(err.value)
    assert "runs w600k_r50.onnx: IResNet-50, 112x112 input, 512-d output" in msg
    assert "needs antelopev2's recogniser (glintr100.onnx: IResNet-100" in msg
    assert "ComfyUI/models/insightface/models/antelopev2/" in msg


def test_a_512d_recogniser_of_another_depth_and_dlib_are_refused(tmp_path):
    pytest.importorskip("dlib")
    from likeness.face.judge import DlibJudge

    with pytest.raises(WrongFaceModelError, match=r"dlib-resnet-v1 \(hog\) \(128-d embeddings\)\. .*antelopev2"):
        check_antelopev2(DlibJudge())
    with pytest.raises(WrongFaceModelError, match="IResNet-50"):
        check_antelopev2(InsightFaceJudge(write_tiny_insightface(tmp_path / "buffalo_l")))
