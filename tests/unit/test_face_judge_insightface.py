"""The insightface judge over tiny stand-in ONNX packs (standins/insightface_onnx.py).

Real insightface weights cannot be downloaded here, so these tests check what the judge itself owns: folder
checks before insightface can download, routing of a pack through insightface 2.1, decoding into
FaceRecords (box, landmarks, raw 512-d embedding), BGR input order, licence flags, and that no network call
happens. The stand-in detector reports fixed boxes, so nothing here measures face-recognition quality (the
dlib tests do that on real faces).
"""

import importlib.util
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
from likeness import face
from likeness.face import FaceModelMissingError, InsightFaceJudge, JudgeUnavailableError
from likeness.standins.insightface_onnx import (
    face_boxes_in_det_frame,
    layout_insightface_models,
    write_tiny_detector,
    write_tiny_insightface,
    write_tiny_recognizer,
)

pytest.importorskip("insightface")
pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("comfy_models")
    layout_insightface_models(root, faces=1)
    return root


@pytest.fixture(scope="module")
def antelope(models_dir):
    return InsightFaceJudge(models_dir / "insightface" / "models" / "antelopev2")


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    return data.astronaut()


@pytest.fixture
def no_network(monkeypatch):
    """Make any connection attempt (or DNS lookup) fail loudly for the duration of a test."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return calls


def test_layout_matches_comfyui_folders(models_dir):
    base = models_dir / "insightface" / "models"
    assert sorted(p.name for p in (base / "antelopev2").glob("*.onnx")) == ["glintr100.onnx", "scrfd_10g_bnkps.onnx"]
    assert sorted(p.name for p in (base / "buffalo_l").glob("*.onnx")) == ["det_10g.onnx", "w600k_r50.onnx"]


def test_one_face_gives_one_512d_record(antelope, astronaut, no_network):
    records = antelope.detect_embed(astronaut)
    assert len(records) == 1
    rec = records[0]
    assert rec.embedding.shape == (512,) and rec.embedding.dtype == np.float32
    assert np.linalg.norm(rec.embedding) > 1.5  # raw embedding, not the unit-normalised one
    assert np.linalg.norm(rec.normed_embedding) == pytest.approx(1.0, abs=1e-5)
    assert rec.score == pytest.approx(0.9, abs=1e-4)
    # the stand-in box in the 640x640 letterbox frame, divided by the letterbox scale 640 / 512
    expected = np.array(face_boxes_in_det_frame(1)[0]) / (640 / 512)
    np.testing.assert_allclose(rec.box, expected, atol=0.5)
    assert rec.landmarks5.shape == (5, 2)
    left_eye, right_eye, nose, left_mouth, right_mouth = rec.landmarks5
    assert left_eye[0] < nose[0] < right_eye[0] and left_mouth[0] < right_mouth[0]
    assert rec.estimated == ()
    assert no_network == []


def test_metadata_and_licence_flags(antelope, models_dir, tmp_path):
    assert antelope.name == "insightface:antelopev2"
    assert antelope.thresholds == {"cosine": 0.68, "euclidean": 4.15, "L2_norm": 1.13}
    assert antelope.embedding_dim == 512
    assert antelope.commercial_use is False
    assert antelope.normalize_embeddings is True
    buffalo = face.get_judge("insightface", model_dir=models_dir / "insightface" / "models" / "buffalo_l")
    assert buffalo.name == "insightface:buffalo_l" and buffalo.commercial_use is False
    aura = InsightFaceJudge(write_tiny_insightface(tmp_path / "AuraFace-v1", faces=1))
    assert aura.commercial_use is True


def test_no_face_detector_gives_empty_list(tmp_path, astronaut):
    judge = InsightFaceJudge(write_tiny_insightface(tmp_path / "noface", faces=0))
    assert judge.detect_embed(astronaut) == []
    assert judge.embed_one(astronaut) is None


def test_embeddings_depend_on_the_aligned_crop(antelope, astronaut):
    a = antelope.detect_embed(astronaut)[0].embedding
    b = antelope.detect_embed(astronaut.copy())[0].embedding
    np.testing.assert_array_equal(a, b)
    c = antelope.detect_embed(np.ascontiguousarray(astronaut[:, ::-1]))[0].embedding
    assert face.identity_similarity(a, c) < 0.99


def test_image_reaches_insightface_as_bgr(antelope, astronaut):
    """insightface swaps BGR->RGB itself (cv2 convention): feeding our RGB image as RGB would swap red/blue."""
    from insightface.utils import face_align

    rec = antelope.detect_embed(astronaut)[0]
    rgb_crop = face_align.norm_crop(astronaut, rec.landmarks5, 112)
    recogniser = antelope._app.models["recognition"]
    want = recogniser.get_feat(np.ascontiguousarray(rgb_crop[:, :, ::-1])).reshape(-1)  # BGR, as insightface expects
    swapped = recogniser.get_feat(rgb_crop).reshape(-1)
    np.testing.assert_allclose(rec.embedding, want, rtol=1e-5, atol=1e-5)
    assert not np.allclose(rec.embedding, swapped, atol=1e-3)


def test_several_faces_and_select(tmp_path, astronaut):
    judge = InsightFaceJudge(write_tiny_insightface(tmp_path / "three", faces=3))
    records = judge.detect_embed(astronaut)
    assert len(records) == 3
    ordered = face.select_faces(records, "left-to-right", None)
    assert [r.center[0] for r in ordered] == sorted(r.center[0] for r in records)
    assert face.select_faces(records, "left-to-right", 2)[0] is ordered[2]


def test_missing_folder_names_expected_path(tmp_path, no_network):
    missing = tmp_path / "insightface" / "models" / "antelopev2"
    with pytest.raises(FaceModelMissingError) as info:
        InsightFaceJudge(missing)
    assert str(missing) in str(info.value)
    assert "not found" in str(info.value)
    assert not missing.exists()  # insightface did not create (download into) it
    assert no_network == []


def test_folder_without_onnx(tmp_path):
    empty = tmp_path / "buffalo_l"
    empty.mkdir()
    (empty / "README.txt").write_text("nothing here")
    with pytest.raises(FaceModelMissingError, match=r"insightface model files \(\*\.onnx\) not found"):
        InsightFaceJudge(empty)


def test_antelopev2_unzipped_one_level_too_deep(tmp_path, no_network):
    folders = layout_insightface_models(tmp_path, names=("antelopev2",), nested=True)
    outer = folders["antelopev2"]
    with pytest.raises(FaceModelMissingError) as info:
        InsightFaceJudge(outer)
    msg = str(info.value)
    assert f"move the .onnx files up one level into {outer}/" in msg
    assert str(outer / "antelopev2") in msg
    assert info.value.nested == str(outer / "antelopev2")
    assert no_network == []


def test_folder_without_recogniser_or_detector(tmp_path):
    only_det = tmp_path / "only_det"
    write_tiny_detector(only_det / "det.onnx", faces=1)
    with pytest.raises(FaceModelMissingError, match="ArcFace-style recogniser"):
        InsightFaceJudge(only_det)
    only_rec = tmp_path / "only_rec"
    write_tiny_recognizer(only_rec / "rec.onnx")
    with pytest.raises(FaceModelMissingError, match="detector"):
        InsightFaceJudge(only_rec)


def test_insightface_accepts_existing_directory_as_name(models_dir, tmp_path, no_network):
    """The judge relies on insightface 2.1 loading ``name`` as a folder when it is an existing directory."""
    from insightface.app import FaceAnalysis

    folder = models_dir / "insightface" / "models" / "buffalo_l"
    app = FaceAnalysis(
        name=str(folder),
        root=str(tmp_path / "nowhere"),
        allowed_modules=["detection", "recognition"],
        providers=["CPUExecutionProvider"],
    )
    assert set(app.models) == {"detection", "recognition"}
    assert Path(app.model_dir) == folder.resolve()
    assert not (tmp_path / "nowhere").exists()
    assert no_network == []


def test_missing_insightface_package_is_a_typed_error(monkeypatch, models_dir):
    monkeypatch.setitem(sys.modules, "insightface.app", None)  # `from insightface.app import ...` fails
    with pytest.raises(JudgeUnavailableError, match="pip install insightface"):
        InsightFaceJudge(models_dir / "insightface" / "models" / "antelopev2")


def test_face_embed_distance_with_insightface_judge(antelope, astronaut):
    ref = antelope.embed_one(astronaut)
    imgs = [antelope.embed_one(astronaut), None]
    res = face.face_embed_distance(
        [ref], imgs, "L2_norm", antelope.thresholds["L2_norm"], normalize_inputs=antelope.normalize_embeddings
    )
    assert res[0].distance == pytest.approx(0.0, abs=1e-6) and res[0].cosine_similarity == pytest.approx(1.0)
    assert res[1].no_face


def test_import_face_stays_light():
    import subprocess

    code = (
        "import sys; import likeness.face; heavy = [m for m in ('dlib', 'insightface', 'onnxruntime') "
        "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert importlib.util.find_spec("likeness.face") is not None
