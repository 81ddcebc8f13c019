"""5-point alignment: Umeyama fit, FFHQ 512 template, warp, inverse, and a real photo."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from likeness.face.align import (
    BORDER_VALUE_RGB,
    FFHQ_TEMPLATE_512,
    align_face,
    fit_to_template,
    inverse_matrix,
    similarity_transform,
    template_for_size,
    transform_points,
)

# skimage.data.astronaut() (512x512, public domain NASA photo): her 5 landmarks, read by eye from an 8x zoom
# (pupil centres, nose tip, mouth corners), accurate to about 2 px.
ASTRONAUT_LANDMARKS = np.array([[203, 101], [246, 103], [224, 127], [203, 141], [244, 141]], dtype=np.float64)


def _similarity(scale: float, angle_deg: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(angle_deg)
    c, s = scale * math.cos(a), scale * math.sin(a)
    return np.array([[c, -s, tx], [s, c, ty]])


def test_template_is_facexlibs_512_template():
    # facexlib 0.3.0 FaceRestoreHelper, face_size 512, template_3points False.
    assert FFHQ_TEMPLATE_512.shape == (5, 2)
    np.testing.assert_allclose(FFHQ_TEMPLATE_512[0], [192.98138, 239.94708])
    np.testing.assert_allclose(FFHQ_TEMPLATE_512[4], [313.08905, 371.15118])
    np.testing.assert_allclose(template_for_size(256), FFHQ_TEMPLATE_512 / 2)


@pytest.mark.parametrize(
    "scale, angle, tx, ty",
    [(1.7, 23.0, 40.0, -12.0), (0.31, -75.0, -300.5, 18.25), (3.0, 179.0, 0.0, 1000.0), (1.0, 0.0, 0.0, 0.0)],
)
def test_known_similarity_is_recovered_exactly(scale, angle, tx, ty):
    truth = _similarity(scale, angle, tx, ty)
    dst = transform_points(truth, FFHQ_TEMPLATE_512)
    fitted = similarity_transform(FFHQ_TEMPLATE_512, dst)
    np.testing.assert_allclose(fitted, truth, atol=1e-9)
    # and the other way round is its inverse
    back = similarity_transform(dst, FFHQ_TEMPLATE_512)
    np.testing.assert_allclose(back, inverse_matrix(truth), atol=1e-9)


def test_fit_never_returns_a_reflection():
    mirrored = FFHQ_TEMPLATE_512 * np.array([-1.0, 1.0])
    m = similarity_transform(mirrored, FFHQ_TEMPLATE_512)
    assert np.linalg.det(m[:, :2]) > 0


def test_least_squares_matches_lmeds_on_consistent_landmarks():
    rng = np.random.default_rng(0)
    src = transform_points(_similarity(0.4, 12.0, 30.0, 50.0), FFHQ_TEMPLATE_512) + rng.normal(0, 0.3, (5, 2))
    a = fit_to_template(src, method="umeyama")
    b = fit_to_template(src, method="lmeds")
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_inverse_matrix_round_trips_points():
    m = _similarity(2.3, -31.0, 17.0, -4.0)
    pts = np.array([[0.0, 0.0], [511.0, 3.0], [100.5, 250.25]])
    np.testing.assert_allclose(transform_points(inverse_matrix(m), transform_points(m, pts)), pts, atol=1e-9)
    with pytest.raises(ValueError, match="singular"):
        inverse_matrix(np.zeros((2, 3)))


def test_landmarks_on_the_template_give_identity():
    rng = np.random.default_rng(1)
    img = rng.random((512, 512, 3), dtype=np.float32)
    aligned, m = align_face(img, FFHQ_TEMPLATE_512)
    np.testing.assert_allclose(m, [[1, 0, 0], [0, 1, 0]], atol=1e-9)
    assert aligned.shape == (512, 512, 3) and aligned.dtype == np.float32
    np.testing.assert_allclose(aligned, img, atol=1e-5)


def test_landmarks_land_on_the_template_of_the_requested_size():
    truth = _similarity(0.8, 10.0, 5.0, 7.0)
    lm = transform_points(truth, FFHQ_TEMPLATE_512)
    _, m = align_face(np.zeros((600, 600, 3), np.float32), lm, size=224)
    np.testing.assert_allclose(transform_points(m, lm), FFHQ_TEMPLATE_512 * 224 / 512, atol=1e-6)


def test_torch_input_gives_torch_output_equal_to_numpy():
    rng = np.random.default_rng(2)
    img = rng.random((300, 280, 3), dtype=np.float32)
    lm = transform_points(_similarity(0.5, 5.0, 10.0, 20.0), FFHQ_TEMPLATE_512)
    a_np, m_np = align_face(img, lm)
    a_t, m_t = align_face(torch.from_numpy(img), torch.from_numpy(lm))
    assert isinstance(a_t, torch.Tensor) and a_t.dtype == torch.float32
    np.testing.assert_array_equal(a_t.numpy(), a_np)
    np.testing.assert_array_equal(m_t, m_np)


def test_outside_the_photo_is_facexlibs_gray_border():
    img = np.zeros((512, 512, 3), np.float32)
    # landmarks 100 px to the right of the template: the aligned face's right edge samples beyond the photo
    aligned, _ = align_face(img, FFHQ_TEMPLATE_512 + np.array([100.0, 0.0]))
    np.testing.assert_allclose(aligned[:, 420:], np.broadcast_to(BORDER_VALUE_RGB, (512, 92, 3)), atol=1e-6)
    np.testing.assert_array_equal(aligned[:, :400], 0.0)


def _darkest_near_template_eyes(aligned: np.ndarray, radius: int = 28) -> np.ndarray:
    """Pupil positions found in the aligned image: the darkest blurred spot near each template eye."""
    luma = cv2.GaussianBlur(aligned @ np.array([0.299, 0.587, 0.114], np.float32), (0, 0), 3)
    found = []
    for x, y in FFHQ_TEMPLATE_512[:2]:
        x0, y0 = int(round(x)) - radius, int(round(y)) - radius
        win = luma[y0 : y0 + 2 * radius + 1, x0 : x0 + 2 * radius + 1]
        j, i = np.unravel_index(np.argmin(win), win.shape)
        found.append((x0 + i, y0 + j))
    return np.array(found, dtype=np.float64)


@pytest.mark.parametrize("method", ["umeyama", "lmeds"])
def test_real_photo_eyes_land_on_template_eyes(method):
    skimage_data = pytest.importorskip("skimage.data")
    img = skimage_data.astronaut().astype(np.float32) / 255.0
    aligned, m = align_face(img, ASTRONAUT_LANDMARKS, method=method)
    assert aligned.shape == (512, 512, 3)
    # the fitted transform puts her eyes on the template within a few pixels (she smiles: the mouth is wider)
    assert np.linalg.norm(transform_points(m, ASTRONAUT_LANDMARKS[:2]) - FFHQ_TEMPLATE_512[:2], axis=1).max() < 8
    # and the warped pixels agree: the pupils are found at the template eye positions
    pupils = _darkest_near_template_eyes(aligned)
    assert np.linalg.norm(pupils - FFHQ_TEMPLATE_512[:2], axis=1).max() < 10, pupils
    # a wrong warp (landmarks 8 px off) moves the pupils well away: the check above can fail
    wrong, _ = align_face(img, ASTRONAUT_LANDMARKS + 8.0, method=method)
    assert np.linalg.norm(_darkest_near_template_eyes(wrong) - FFHQ_TEMPLATE_512[:2], axis=1).max() > 15


def test_bad_landmarks_are_rejected():
    img = np.zeros((64, 64, 3), np.float32)
    with pytest.raises(ValueError, match="5"):
        align_face(img, FFHQ_TEMPLATE_512[:3])
    with pytest.raises(ValueError, match="same point"):
        align_face(img, np.ones((5, 2)))
    with pytest.raises(ValueError, match="NaN"):
        align_face(img, np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match="method"):
        align_face(img, FFHQ_TEMPLATE_512, method="ransac")
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        align_face(np.zeros((64, 64), np.float32), FFHQ_TEMPLATE_512)
