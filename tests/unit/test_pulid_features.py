"""PuLID face input: non-face classes white, face gray (0.299 R + 0.587 G + 0.114 B), and the full preparation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from likeness.face.align import align_face
from likeness.face.parsing import load_bisenet
from likeness.face.pulid_features import BACKGROUND_LABELS, prepare_pulid_face, pulid_face_input
from likeness.standins.facexlib_weights import random_bisenet_state_dict

ASTRONAUT_LANDMARKS = np.array([[203, 101], [246, 103], [224, 127], [203, 141], [244, 141]], dtype=np.float64)


def _gray64(img: torch.Tensor) -> np.ndarray:
    """The reference formula in float64, (B, H, W)."""
    a = img.double().numpy()
    return 0.299 * a[:, 0] + 0.587 * a[:, 1] + 0.114 * a[:, 2]


def test_background_labels_are_the_references():
    assert sorted(BACKGROUND_LABELS) == [0, 7, 8, 9, 14, 15, 16, 18]


def test_left_background_white_right_face_gray():
    img = torch.rand(2, 3, 32, 40, generator=torch.Generator().manual_seed(0))
    labels = torch.zeros(2, 32, 40, dtype=torch.int64)
    labels[:, :, 20:] = 1  # skin
    out = pulid_face_input(img, labels)
    assert out.shape == img.shape and out.dtype == img.dtype
    assert torch.all(out[..., :20] == 1.0)
    gray = _gray64(img)[..., 20:]
    for c in range(3):
        np.testing.assert_allclose(out[:, c, :, 20:].double().numpy(), gray, atol=1e-6)
    assert not torch.allclose(out[..., 20:], torch.ones(()))


def test_every_class_goes_the_right_way():
    img = torch.rand(1, 3, 19, 5, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(19).view(1, 19, 1).expand(1, 19, 5).contiguous()  # row r has class r
    out = pulid_face_input(img, labels.unsqueeze(1))  # (B, 1, H, W) is accepted too
    gray = _gray64(img)
    for cls in range(19):
        row = out[0, :, cls].double().numpy()
        if cls in BACKGROUND_LABELS:
            assert np.all(row == 1.0), cls
        else:
            np.testing.assert_allclose(row, np.broadcast_to(gray[0, cls], (3, 5)), atol=1e-6, err_msg=str(cls))


def test_bad_labels_are_rejected():
    img = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        pulid_face_input(img, torch.zeros(1, 8, 9, dtype=torch.int64))
    with pytest.raises(ValueError, match="integer"):
        pulid_face_input(img, torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        pulid_face_input(img[:, :2], torch.zeros(1, 8, 8, dtype=torch.int64))


class _HalfParser(nn.Module):
    """Stand-in parser: class 0 (background) on the left half, 1 (skin) on the right half."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        b, _, h, w = x.shape
        logits = torch.zeros(b, 19, h, w)
        logits[:, 0, :, : w // 2] = 1.0
        logits[:, 1, :, w // 2 :] = 1.0
        return logits, logits, logits


def _astronaut() -> np.ndarray:
    skimage_data = pytest.importorskip("skimage.data")
    return skimage_data.astronaut().astype(np.float32) / 255.0


def test_prepare_pulid_face_aligns_parses_and_whitens():
    img = _astronaut()
    face_input, aligned = prepare_pulid_face(img, ASTRONAUT_LANDMARKS, _HalfParser())
    assert face_input.shape == aligned.shape == (1, 3, 512, 512)
    expected_aligned, _ = align_face(img, ASTRONAUT_LANDMARKS)
    np.testing.assert_array_equal(aligned[0].permute(1, 2, 0).numpy(), expected_aligned)
    assert torch.all(face_input[..., :256] == 1.0)
    gray = _gray64(aligned)[..., 256:]
    np.testing.assert_allclose(face_input[:, 1, :, 256:].double().numpy(), gray, atol=1e-6)


def test_prepare_pulid_face_with_a_random_bisenet():
    model = load_bisenet(random_bisenet_state_dict(seed=0))
    face_input, aligned = prepare_pulid_face(torch.from_numpy(_astronaut()), ASTRONAUT_LANDMARKS, model)
    assert face_input.shape == (1, 3, 512, 512) and face_input.dtype == torch.float32
    assert float(face_input.min()) >= 0.0 and float(face_input.max()) <= 1.0
    # every pixel is either white (background classes) or gray (3 equal channels)
    white = (face_input == 1.0).all(dim=1)
    gray = _gray64(aligned)
    np.testing.assert_allclose(face_input[:, 0].double().numpy()[~white.numpy()], gray[~white.numpy()], atol=1e-6)
    assert torch.equal(face_input[:, 0], face_input[:, 2])
