"""Face Embed Distance and identity similarity on hand-computed vectors.

Every expected value is worked out by hand in the test from 2-d vectors, so a wrong formula (e.g. averaging
raw references for cosine, forgetting to clip the normalised distance, or reporting 0/1 for a missing face)
fails here.
"""

import math

import numpy as np
import pytest
from likeness import face
from likeness.face import DistanceResult, FaceError, NoFaceError, delta_id, embedding_distance, face_embed_distance

A = np.array([1.0, 0.0])
B = np.array([0.6, 0.8])  # unit length: 0.36 + 0.64 = 1


def test_three_metrics_on_unit_vectors():
    # cos(A, B) = 1*0.6 + 0*0.8 = 0.6 -> cosine distance 1 - 0.6 = 0.4
    assert embedding_distance(A, B, "cosine") == pytest.approx(0.4)
    # ||A - B|| = sqrt(0.4^2 + 0.8^2) = sqrt(0.16 + 0.64) = sqrt(0.8)
    assert embedding_distance(A, B, "euclidean") == pytest.approx(math.sqrt(0.8))
    # both are unit vectors, so L2_norm equals euclidean, and equals sqrt(2 * cosine distance)
    assert embedding_distance(A, B, "L2_norm") == pytest.approx(math.sqrt(0.8))
    assert embedding_distance(A, B, "L2_norm") == pytest.approx(math.sqrt(2 * 0.4))


def test_three_metrics_on_non_unit_vectors():
    a, b = np.array([2.0, 0.0]), np.array([0.0, 3.0])
    assert embedding_distance(a, b, "cosine") == pytest.approx(1.0)  # orthogonal: 1 - 0
    assert embedding_distance(a, b, "euclidean") == pytest.approx(math.sqrt(2.0**2 + 3.0**2))  # sqrt(13)
    assert embedding_distance(a, b, "L2_norm") == pytest.approx(math.sqrt(1.0**2 + 1.0**2))  # [1,0] vs [0,1]
    # opposite directions: cosine distance 2, L2_norm 2
    assert embedding_distance(a, -a, "cosine") == pytest.approx(2.0)
    assert embedding_distance(a, -a, "L2_norm") == pytest.approx(2.0)


def test_identical_vectors_give_exact_zero_never_negative():
    v = np.array([0.1, 0.2, 0.3], dtype=np.float32)
    for metric in face.METRICS:
        d = embedding_distance(v, v, metric)
        assert d >= 0.0
        assert d == pytest.approx(0.0, abs=1e-12)


def test_normalised_is_distance_over_threshold_clipped_at_one():
    # cosine distance 0.4 with the ArcFace threshold 0.68 -> 0.4 / 0.68 = 0.588...
    (r,) = face_embed_distance(A[None], [B], "cosine", 0.68)
    assert r == DistanceResult(pytest.approx(0.4), pytest.approx(0.4 / 0.68), pytest.approx(0.6), False)
    # same pair with the dlib cosine threshold 0.07 -> 0.4 / 0.07 = 5.7 -> clipped to 1
    (r,) = face_embed_distance(A[None], [B], "cosine", 0.07)
    assert r.normalized == 1.0 and r.distance == pytest.approx(0.4)
    # euclidean sqrt(0.8) = 0.894 with threshold 0.6 -> clipped; with 4.15 -> 0.894 / 4.15
    (r,) = face_embed_distance(A[None], [B], "euclidean", 4.15)
    assert r.normalized == pytest.approx(math.sqrt(0.8) / 4.15)


def test_missing_face_gives_nan_and_flag_never_zero_or_one():
    results = face_embed_distance(A[None], [B, None, A], "L2_norm", 0.4)
    assert [r.no_face for r in results] == [False, True, False]
    missing = results[1]
    assert math.isnan(missing.distance) and math.isnan(missing.normalized) and math.isnan(missing.cosine_similarity)
    assert results[2].distance == pytest.approx(0.0) and results[2].normalized == pytest.approx(0.0)
    assert results[2].cosine_similarity == pytest.approx(1.0)


def test_reference_averaging_cosine_uses_mean_of_unit_vectors():
    refs = np.array([[1.0, 0.0], [0.0, 2.0]])
    # unit refs [1,0] and [0,1] -> mean [0.5, 0.5] -> direction [1,1]/sqrt(2)
    ref = face.reference_embedding(refs, "cosine")
    assert ref == pytest.approx(np.array([1.0, 1.0]) / math.sqrt(2.0))
    (r,) = face_embed_distance(refs, [np.array([1.0, 1.0])], "cosine", 0.68)
    assert r.distance == pytest.approx(0.0, abs=1e-12)
    # the raw mean [0.5, 1.0] would have given 1 - (0.5 + 1) / (sqrt(1.25) * sqrt(2)) = 0.0513 instead
    raw_mean_cos_dist = 1 - 1.5 / (math.sqrt(1.25) * math.sqrt(2.0))
    assert raw_mean_cos_dist == pytest.approx(0.0513, abs=1e-4)
    # L2_norm uses the same unit mean
    (r,) = face_embed_distance(refs, [np.array([1.0, 1.0])], "L2_norm", 1.13)
    assert r.distance == pytest.approx(0.0, abs=1e-12)


def test_reference_averaging_euclidean_uses_raw_mean():
    refs = np.array([[1.0, 0.0], [0.0, 2.0]])
    # raw mean [(1+0)/2, (0+2)/2] = [0.5, 1.0]
    assert face.reference_embedding(refs, "euclidean") == pytest.approx([0.5, 1.0])
    (r,) = face_embed_distance(refs, [np.array([0.5, 1.0]), np.array([0.5, 0.0])], "euclidean", 0.6)[:1]
    assert r.distance == pytest.approx(0.0)
    r2 = face_embed_distance(refs, [np.array([0.5, 0.0])], "euclidean", 0.6)[0]
    assert r2.distance == pytest.approx(1.0)  # [0.5,1] - [0.5,0] = [0,1]
    assert r2.normalized == 1.0


def test_normalize_inputs_reproduces_anchor_for_insightface_normed_embeddings():
    refs = np.array([[3.0, 0.0], [0.0, 4.0]])  # unit: [1,0], [0,1]; mean [0.5, 0.5]
    img = np.array([10.0, 0.0])  # unit [1, 0]
    (r,) = face_embed_distance(refs, [img], "euclidean", 4.15, normalize_inputs=True)
    # ||[0.5,0.5] - [1,0]|| = sqrt(0.25 + 0.25)
    assert r.distance == pytest.approx(math.sqrt(0.5))
    assert r.normalized == pytest.approx(math.sqrt(0.5) / 4.15)
    # without normalisation the raw mean [1.5, 2] is compared with [10, 0]
    (r,) = face_embed_distance(refs, [img], "euclidean", 4.15)
    assert r.distance == pytest.approx(math.hypot(8.5, 2.0))


def test_reference_without_face_raises_with_index_or_is_skipped():
    with pytest.raises(NoFaceError) as info:
        face_embed_distance([A, None, B], [B], "cosine", 0.68)
    assert info.value.index == 1
    assert "reference image 1 has no detectable face" in str(info.value)
    assert "reference_without_face (no_face in face.metrics) to 'skip'" in str(info.value)
    # skipping leaves [A, B]: unit mean [0.8, 0.4] -> cos with B = (0.48 + 0.32) / sqrt(0.8) = 0.8 / 0.894
    (r,) = face_embed_distance([A, None, B], [B], "cosine", 0.68, no_face="skip")
    assert r.cosine_similarity == pytest.approx(0.8 / math.sqrt(0.8))
    with pytest.raises(NoFaceError) as info:
        face_embed_distance([None, None], [B], "cosine", 0.68, no_face="skip")
    assert info.value.index is None
    assert isinstance(info.value, ValueError)


def test_bad_inputs_are_typed_errors():
    with pytest.raises(FaceError, match="unknown metric"):
        face_embed_distance(A[None], [B], "manhattan", 1.0)
    with pytest.raises(FaceError, match="threshold must be a positive number"):
        face_embed_distance(A[None], [B], "cosine", 0.0)
    with pytest.raises(FaceError, match="threshold must be a positive number"):
        face_embed_distance(A[None], [B], "cosine", None)
    with pytest.raises(FaceError, match="different sizes|has 3 values"):
        face_embed_distance(A[None], [np.ones(3)], "cosine", 0.68)
    with pytest.raises(FaceError, match="zero norm"):
        face_embed_distance(A[None], [np.zeros(2)], "cosine", 0.68)
    with pytest.raises(FaceError, match="finite"):
        embedding_distance(A, np.array([np.nan, 1.0]), "euclidean")


def test_identity_similarity_and_delta_id():
    assert face.identity_similarity(A, B) == pytest.approx(0.6)
    assert face.identity_similarity(np.array([2.0, 0.0]), np.array([-5.0, 0.0])) == pytest.approx(-1.0)
    assert math.isnan(face.identity_similarity(A, None))
    # before: cos 0.6 (B); after: cos 1.0 (A itself) -> improved by 0.4
    before = face.identity_similarity(A, B)
    after = face.identity_similarity(A, A)
    assert delta_id(before, after) == pytest.approx(0.4)
    assert delta_id(after, before) == pytest.approx(-0.4)
    assert math.isnan(delta_id(0.5, face.identity_similarity(None, A)))


def test_no_face_error_messages():
    err = NoFaceError(2, "reference")
    assert str(err) == "reference image 2 has no detectable face: use a clearer, larger frontal photo"
    assert err.index == 2
    assert "image 0" in str(NoFaceError(0, "generated"))
