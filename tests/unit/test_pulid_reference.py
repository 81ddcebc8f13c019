"""pulid.reference on real photos (dlib's real landmarks): the official 1024 px reference size and the retries at
smaller detector sizes before "no face"."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import photos
import pytest
import torch
from likeness.face.errors import NoFaceError
from likeness.face.judge import DlibJudge, FaceJudge, InsightFaceJudge
from likeness.pulid import reference as ref

log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def dlib_judge():
    pytest.importorskip("dlib")
    return DlibJudge()


@pytest.mark.parametrize(
    ("hw", "want"),
    [((960, 1280), (768, 1024)), ((700, 1300), (551, 1024)), ((2000, 900), (1024, 460)), ((1025, 1025), (1024, 1024))],
)
def test_a_long_edge_over_1024_is_resized_as_the_official_app(hw, want):
    img = np.random.default_rng(0).integers(0, 256, (*hw, 3), dtype=np.uint8)
    out = ref.resize_long_edge(img)
    assert out.shape[:2] == want  # int(side * 1024 / long), e.g. int(700 * 1024 / 1300) = 551
    assert np.array_equal(out, cv2.resize(img, want[::-1], interpolation=cv2.INTER_LANCZOS4))


def test_a_reference_within_1024_is_used_as_it_is():
    img = np.random.default_rng(1).integers(0, 256, (1024, 700, 3), dtype=np.uint8)
    assert ref.resize_long_edge(img) is img
    rgb, image01 = ref.prepare_reference(torch.from_numpy(img.astype(np.float32) / 255))
    assert np.array_equal(rgb, img) and image01.shape == (1024, 700, 3)


def test_a_1280px_photo_is_detected_and_aligned_at_1024(dlib_judge):
    small = photos.astronaut()  # 512 px, face ~90 px
    big = cv2.resize(small, (1280, 1280), interpolation=cv2.INTER_CUBIC)
    rgb, image01 = ref.prepare_reference(torch.from_numpy(big.astype(np.float32) / 255))
    assert rgb.shape == (1024, 1024, 3) and image01.shape == (1024, 1024, 3)
    face, size = ref.detect_reference_face(dlib_judge, rgb)
    assert size is None  # found at the judge's own size, no retry needed
    at_512 = ref.detect_reference_face(dlib_judge, small)[0]
    np.testing.assert_allclose(face.landmarks5[:3], at_512.landmarks5[:3] * 2, atol=4)  # real eyes and nose, 2x
    official = ref._eva_input(image01, face, None, gray=True)
    full = ref._eva_input(big.astype(np.float32) / 255, ref.detect_reference_face(dlib_judge, big)[0], None, gray=True)
    diff = float((official - full).abs().max())
    log.info("EVA input, 1280 px photo at full size vs the official 1024: max abs difference %.3f", diff)
    assert official.shape == full.shape == (1, 3, 512, 512) and diff > 0.01


class _SizedJudge(FaceJudge):
    """A judge whose detector only answers at some sizes, recording what it was asked (tests the retry loop)."""

    def __init__(self, real, finds_at):
        self.real, self.finds_at, self.asked = real, finds_at, []

    def retry_sizes(self, sizes):
        return (None, *sizes)

    def detect_embed_at(self, image, size):
        self.asked.append(size)
        return self.real.detect_embed(image) if size in self.finds_at else []

    def detect_embed(self, image):
        return self.detect_embed_at(image, None)


def test_detection_retries_640_to_320_in_steps_of_64_before_no_face(dlib_judge):
    head = photos.astronaut()
    picky = _SizedJudge(dlib_judge, finds_at={448})
    face, size = ref.detect_reference_face(picky, head)
    assert face is not None and size == 448 and picky.asked == [None, 640, 576, 512, 448]
    never = _SizedJudge(dlib_judge, finds_at=set())
    assert ref.detect_reference_face(never, head) == (None, 320)
    assert never.asked == [None, 640, 576, 512, 448, 384, 320]
    with pytest.raises(NoFaceError, match="reference image 3 has no detectable face"):
        ref.ReferenceEncoder()._encode_one(None, None, never, None, torch.from_numpy(head / 255.0), 3, "largest", 0, True)


def test_backends_report_the_sizes_they_can_retry(dlib_judge, tmp_path):
    from likeness.standins.insightface_onnx import write_tiny_insightface

    assert dlib_judge.retry_sizes(ref.DETECT_SIZES) == (None, 640, 576, 512, 448, 384, 320)
    assert len(dlib_judge.detect_embed_at(photos.astronaut(), 320)) == 1  # a 320 px detection copy still finds her
    judge = InsightFaceJudge(write_tiny_insightface(tmp_path / "antelopev2", rec_name="glintr100.onnx"))
    assert judge.retry_sizes(ref.DETECT_SIZES) == (None,)  # a fixed-size detector cannot change size
    det = judge._app.det_model
    before = (det.input_size, list(det.input_sizes))
    judge.detect_embed(photos.astronaut(), det_size=320)
    assert (det.input_size, list(det.input_sizes)) == before


def test_uncond_tokens_are_the_encoder_on_zero_inputs_fused_like_the_cond_ones(tmp_path):
    """The official true-CFG negative ID: IDFormer(zeros like id_cond, zeros like every EVA hidden state)."""
    from likeness import eva_clip, pulid
    from likeness.standins.weights import write_tiny_eva, write_tiny_pulid

    pm = pulid.load_pulid_flux_file(str(write_tiny_pulid(tmp_path / "p.safetensors")))
    eva = eva_clip.load_eva_clip_file(str(write_tiny_eva(tmp_path / "e.safetensors")))
    with torch.no_grad():
        _, hidden = eva(torch.zeros(1, 3, eva.config.image_size, eva.config.image_size))
        want = pm.encoder(torch.zeros(1, pm.config.id_cond_dim), [torch.zeros_like(h) for h in hidden])
    zero = ref.zero_id_tokens(pm, eva)
    torch.testing.assert_close(zero, want)
    assert zero.abs().sum() > 0  # biases and learned queries: not zero tokens
    enc = ref.ReferenceEncoder()
    assert enc.zero_tokens(pm, "p", eva, "e", 3, "concat", 0.0, 1.0).shape == (1, 3 * zero.shape[1], zero.shape[2])
    torch.testing.assert_close(enc.zero_tokens(pm, "p", eva, "e", 2, "mean", 0.0, 1.0), zero)
