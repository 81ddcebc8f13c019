"""Crop / paste-back geometry: border padding, exact untouched pixels, eye alignment, colour matching."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from likeness.face.colour import _lab_to_srgb, _srgb_to_lab
from likeness.face.crop import crop_faces
from likeness.face.geometry import CropData, crop_box, eye_angle, working_size
from likeness.face.masks import ellipse_mask, feather_mask
from likeness.face.paste import paste_back, paste_back_many

H, W = 96, 128


def smooth_image(h: int = H, w: int = W) -> torch.Tensor:
    """Low-frequency RGB image in [0.2, 0.8]: bicubic round trips stay within a few 1e-3."""
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    return torch.stack(
        (
            0.5 + 0.3 * torch.sin(xx / 9.0),
            0.5 + 0.3 * torch.cos(yy / 7.0),
            0.5 + 0.2 * torch.sin((xx + yy) / 11.0),
        ),
        dim=-1,
    )


def random_image(seed: int, h: int = H, w: int = W) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((h, w, 3), generator=g)


def tilted_landmarks(cx: float, cy: float, angle_deg: float, half_eye: float = 10.0) -> list[tuple[float, float]]:
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    left = (cx - half_eye * c, cy - half_eye * s)
    right = (cx + half_eye * c, cy + half_eye * s)

    # Nose below the eye midpoint and mouth corners further down, all rotated with the face.
    def rot(dx: float, dy: float) -> tuple[float, float]:
        return cx + c * dx - s * dy, cy + s * dx + c * dy

    return [left, right, rot(0, 8), rot(-7, 16), rot(7, 16)]


def assert_untouched_outside(out: torch.Tensor, img: torch.Tensor, mask: torch.Tensor) -> None:
    zero = mask == 0
    assert zero.any(), "test set-up: the mask should leave part of the image untouched"
    assert torch.equal(out[zero], img[zero]), "a pixel with final mask 0 changed"
    # Independent of the returned mask: every changed pixel must be one the mask claimed.
    changed = (out != img).any(dim=-1)
    assert not (changed & zero).any()


# ----------------------------------------------------------------------------- sizes and boxes


@pytest.mark.parametrize("aspect", [0.33, 0.5, 0.75, 1.0, 4 / 3, 16 / 9, 2.5])
@pytest.mark.parametrize("size", [512, 768, 1000])
def test_working_size_multiples_of_16(aspect: float, size: int) -> None:
    h, w = working_size(aspect, size)
    assert h % 16 == 0 and w % 16 == 0
    assert max(h, w) == 16 * math.floor(size / 16 + 0.5)
    # Aspect kept up to the snapping of the short side (at most 8 px off).
    short = min(h, w)
    assert abs(w / h / aspect - 1.0) <= 8.5 / short


def test_working_size_known_values() -> None:
    assert working_size(1.0) == (512, 512)
    assert working_size(0.75) == (512, 384)
    assert working_size(16 / 9, 1024) == (576, 1024)
    assert working_size(1.0, 512, multiple=64) == (512, 512)
    with pytest.raises(ValueError):
        working_size(0.0)


def test_crop_box_context_and_aspect() -> None:
    face = (100, 100, 200, 160)  # 100 x 60, centre (150, 130)
    assert crop_box(face, (400, 400), context=1.5, aspect=1.0) == (75, 55, 225, 205)
    x0, y0, x1, y1 = crop_box(face, (400, 400), context=1.5, aspect=0.75)
    assert (x1 - x0, y1 - y0) == (150, 200)
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == (150, 130)
    x0, y0, x1, y1 = crop_box(face, (400, 400), context=2.0, aspect=16 / 9)
    assert abs((x1 - x0) / (y1 - y0) - 16 / 9) < 0.01
    assert y1 - y0 == 120  # the height was the binding side: 60 * 2


def test_crop_box_pads_instead_of_shifting() -> None:
    face = (0, 0, 40, 40)  # touches the top-left corner
    box = crop_box(face, (100, 100), context=2.0)
    assert box == (-20, -20, 60, 60)
    face = (90, 70, 100, 100)  # touches the bottom-right corner
    x0, y0, x1, y1 = crop_box(face, (100, 100), context=3.0)
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == (95, 85)
    assert x1 > 100 and y1 > 100


def test_crop_box_rejects_faces_outside_the_image() -> None:
    with pytest.raises(ValueError):
        crop_box((200, 10, 240, 50), (100, 100))
    with pytest.raises(ValueError):
        crop_box((10, 10, 10, 50), (100, 100))


def test_eye_angle_sign_convention() -> None:
    assert eye_angle(tilted_landmarks(50, 50, 20)) == pytest.approx(20.0)
    assert eye_angle(tilted_landmarks(50, 50, -20)) == pytest.approx(-20.0)
    assert eye_angle([(0, 0), (10, 0)]) == 0.0


# ----------------------------------------------------------------------------- crop record


def test_crop_data_json_round_trip() -> None:
    img = random_image(1)
    lm = tilted_landmarks(40, 40, 15)
    _, (cd,) = crop_faces(
        img,
        [(10, -5, 70, 55)],
        (64, 64),
        align_eyes=True,
        landmarks=[lm],
        det_boxes=[(25.5, 12.0, 55.0, 44.2)],
        face_indices=[3],
        image_index=2,
    )
    text = json.dumps(cd.to_dict())
    back = CropData.from_dict(json.loads(text))
    assert back == cd
    assert back.box == (10, -5, 70, 55) and back.face_index == 3 and back.image_index == 2
    assert back.scale == (64 / 60, 64 / 60)
    assert back.center == (40.0, 25.0)
    assert back.det_box == (25.5, 12.0, 55.0, 44.2)
    assert back.angle == pytest.approx(15.0)


def test_crop_data_rejects_bad_boxes() -> None:
    with pytest.raises(ValueError):
        CropData(box=(10, 10, 5, 20), image_hw=(50, 50), working_hw=(16, 16))
    with pytest.raises(ValueError):
        CropData(box=(0.5, 0, 10, 10), image_hw=(50, 50), working_hw=(16, 16))
    with pytest.raises(ValueError):
        CropData(box=(0, 0, 10, 10), image_hw=(50, 50), working_hw=(16, 16), pad_mode="wrap")


# ----------------------------------------------------------------------------- cropping at borders


def test_corner_crop_pads_and_records_true_box() -> None:
    img = random_image(2)
    box = crop_box((0, 0, 40, 40), (H, W), context=2.0)
    assert box == (-20, -20, 60, 60)
    # working size == box size: no resampling, so the padding can be checked exactly
    crops, (cd,) = crop_faces(img, [box], (80, 80), pad_mode="constant")
    crop = crops[0]
    assert cd.box == (-20, -20, 60, 60) and cd.image_hw == (H, W) and cd.working_hw == (80, 80)
    assert torch.equal(crop[20:, 20:], img[:60, :60])
    assert torch.equal(crop[:20], torch.zeros_like(crop[:20]))
    assert torch.equal(crop[:, :20], torch.zeros_like(crop[:, :20]))

    crops, _ = crop_faces(img, [box], (80, 80), pad_mode="edge")
    assert torch.equal(crops[0][:20, 25], img[0, 5].expand(20, 3))
    assert torch.equal(crops[0][30, :20], img[10, 0].expand(20, 3))

    crops, _ = crop_faces(img, [box], (80, 80), pad_mode="reflect")
    for k in (1, 7, 19):  # row -k mirrors row k (edge row not repeated)
        assert torch.equal(crops[0][20 - k, 20:], img[k, :60])


def test_reflect_padding_larger_than_image() -> None:
    img = random_image(3, 8, 8)
    crops, _ = crop_faces(img, [(-20, -20, 28, 28)], (48, 48), pad_mode="reflect")
    assert crops.shape == (1, 48, 48, 3)

    # period 14 along each axis: source index of position p is reflect(p - 20)
    def ref(i: int) -> int:
        j = i % 14
        return 14 - j if j >= 8 else j

    for p in (0, 5, 13, 33, 47):
        assert torch.equal(crops[0][p, p], img[ref(p - 20), ref(p - 20)])


def test_crop_resamples_to_working_size_and_clamps() -> None:
    img = random_image(4)
    crops, cds = crop_faces(img, [(10, 10, 90, 90), (60, 20, 76, 36)], (32, 48))
    assert crops.shape == (2, 32, 48, 3)
    assert crops.dtype == img.dtype
    assert crops.min() >= 0.0 and crops.max() <= 1.0
    assert [cd.face_index for cd in cds] == [0, 1]
    assert cds[0].scale == (32 / 80, 48 / 80)
    empty, none = crop_faces(img, [], (32, 32))
    assert empty.shape == (0, 32, 32, 3) and none == []


def test_align_eyes_needs_landmarks() -> None:
    with pytest.raises(ValueError):
        crop_faces(random_image(5), [(0, 0, 32, 32)], (32, 32), align_eyes=True)


# ----------------------------------------------------------------------------- masks


def test_ellipse_mask_core_band_and_outside() -> None:
    h, w, f = 64, 80, 8.0
    m = ellipse_mask(h, w, f, scale=0.9)
    assert m.shape == (h, w) and m.dtype == torch.float32
    ys = (torch.arange(h) + 0.5 - h / 2) / (0.9 * h / 2)
    xs = (torch.arange(w) + 0.5 - w / 2) / (0.9 * w / 2)
    r = (ys[:, None] ** 2 + xs[None, :] ** 2).sqrt()
    assert torch.all(m[r > 1.0] == 0.0)  # exactly 0 outside the ellipse
    assert torch.all(m[r < 0.6] == 1.0)  # exactly 1 in the core
    band = (m > 0) & (m < 1)
    assert band.any()
    assert torch.all(m[0] == 0) and torch.all(m[:, 0] == 0)
    # Monotone along the horizontal radius from the centre outwards.
    row = m[h // 2, w // 2 :]
    assert torch.all(row[1:] <= row[:-1])


def test_feather_mask_matches_brute_force_distance() -> None:
    g = torch.Generator().manual_seed(6)
    hard = torch.zeros(30, 40)
    hard[4:26, 5:36] = 1.0
    hard[10:14, 12:30] = (torch.rand(4, 18, generator=g) > 0.3).float()  # holes
    f = 5.0
    out = feather_mask(hard, f)
    ins = hard.numpy() >= 0.5
    padded = np.zeros((32, 42), dtype=bool)
    padded[1:-1, 1:-1] = ins
    oy, ox = np.nonzero(~padded)  # the outer ring stands for "beyond the array"
    for i in range(30):
        for j in range(40):
            if not ins[i, j]:
                assert out[i, j] == 0.0
                continue
            d = np.sqrt(((oy - 1 - i) ** 2 + (ox - 1 - j) ** 2).min())
            t = min(max(d - 0.5, 0.0) / f, 1.0)
            assert out[i, j].item() == pytest.approx(t * t * (3 - 2 * t), abs=1e-6)


def test_feather_mask_shapes_and_zero_feather() -> None:
    m = torch.zeros(2, 20, 20)
    m[:, 5:15, 5:15] = 0.7
    out = feather_mask(m, 0)
    assert out.shape == (2, 20, 20)
    assert torch.equal(out, (m >= 0.5).float())
    full = feather_mask(torch.ones(20, 20), 4)
    # The array border counts as outside: the rim gets only smoothstep(0.5 / 4), the centre 1.
    rim = torch.cat([full[0], full[-1], full[:, 0], full[:, -1]])
    assert torch.all(rim > 0) and torch.all(rim < 0.05) and full[10, 10] == 1.0
    assert torch.equal(full, full.T) and torch.equal(full, full.flip(0))


# ----------------------------------------------------------------------------- paste-back


BORDER_BOXES = {
    "inside": (30, 20, 94, 84),
    "left": (-24, 16, 40, 80),
    "right": (90, 16, 154, 80),
    "top": (40, -30, 104, 34),
    "bottom": (40, 60, 104, 124),
    "top_left_corner": (-20, -20, 44, 44),
    "bottom_right_corner": (80, 50, 144, 114),
    "touching_left_edge": (0, 10, 64, 74),
    "larger_than_image": (-20, -30, 148, 126),
}


@pytest.mark.parametrize("name", sorted(BORDER_BOXES))
@pytest.mark.parametrize("angle", [0.0, 20.0])
def test_paste_back_leaves_mask_zero_pixels_bit_identical(name: str, angle: float) -> None:
    img = random_image(7)
    box = BORDER_BOXES[name]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    lm = [tilted_landmarks(cx, cy, angle)]
    crops, (cd,) = crop_faces(img, [box], (48, 48), align_eyes=angle != 0.0, landmarks=lm)
    assert cd.angle == pytest.approx(angle)
    enhanced = random_image(8, 48, 48)
    out, mask = paste_back(img, enhanced, cd, feather_px=6, return_mask=True)
    assert out.shape == img.shape and out.dtype == img.dtype
    assert_untouched_outside(out, img, mask)
    inside = mask > 1e-3
    assert inside.sum() > 50
    assert (out != img).any(dim=-1)[inside].all(), "pixels under the mask should take the new crop"
    if angle == 0.0:
        outside_box = torch.ones(H, W, dtype=torch.bool)
        outside_box[max(box[1], 0) : box[3], max(box[0], 0) : box[2]] = False
        assert torch.equal(out[outside_box], img[outside_box])
        assert torch.all(mask[outside_box] == 0)


def test_paste_back_with_user_mask_and_4d_image() -> None:
    img = random_image(9)[None]
    crops, (cd,) = crop_faces(img, [(20, 10, 84, 74)], (64, 64))
    user = torch.zeros(64, 64)
    user[16:48, 8:40] = 1.0
    out, mask = paste_back(img, torch.rand(1, 64, 64, 3), cd, mask=user, feather_px=4, return_mask=True)
    assert out.shape == img.shape and mask.shape == (1, H, W)
    assert_untouched_outside(out[0], img[0], mask[0])
    # 1:1 scale, no rotation: the mask lands exactly where it was drawn, offset by the box origin.
    assert torch.all(mask[0, 10 + 20 : 10 + 44, 20 + 12 : 20 + 36] == 1.0)
    assert torch.all(mask[0, :, : 20 + 8] == 0) and torch.all(mask[0, :, 20 + 40 :] == 0)


def test_crop_then_paste_reproduces_image_at_corner() -> None:
    img = smooth_image()
    box = crop_box((0, 0, 32, 28), (H, W), context=1.6)  # sticks out top-left
    assert box[0] < 0 and box[1] < 0
    crops, (cd,) = crop_faces(img, [box], (64, 64))
    out, mask = paste_back(img, crops[0], cd, feather_px=8, return_mask=True)
    assert_untouched_outside(out, img, mask)
    assert (mask > 0).sum() > 300
    assert (out - img).abs().max() < 0.01  # bicubic down/up round trip of a smooth image


def test_crop_then_paste_reproduces_image_when_aligned() -> None:
    img = smooth_image()
    lm = tilted_landmarks(60, 50, 25)
    crops, (cd,) = crop_faces(img, [(28, 18, 92, 82)], (96, 96), align_eyes=True, landmarks=[lm])
    out, mask = paste_back(img, crops[0], cd, feather_px=8, return_mask=True)
    assert_untouched_outside(out, img, mask)
    assert (mask == 1).sum() > 500
    assert (out - img).abs().max() < 0.02


def test_paste_back_accepts_a_crop_of_another_size() -> None:
    img = smooth_image()
    crops, (cd,) = crop_faces(img, [(30, 20, 94, 84)], (64, 64))
    big = torch.nn.functional.interpolate(crops.permute(0, 3, 1, 2), scale_factor=2, mode="bicubic")
    big = big.permute(0, 2, 3, 1)[0].clamp(0, 1)
    out = paste_back(img, big, cd, feather_px=8)
    assert (out - img).abs().max() < 0.01


def test_paste_back_rejects_other_image_size() -> None:
    img = random_image(10)
    _, (cd,) = crop_faces(img, [(0, 0, 32, 32)], (32, 32))
    with pytest.raises(ValueError):
        paste_back(random_image(10, 50, 50), torch.rand(32, 32, 3), cd)
    with pytest.raises(ValueError):
        paste_back(img, torch.rand(32, 32, 3), cd, color_match="histogram")


def test_paste_back_many_faces_into_one_image() -> None:
    img = random_image(11)
    boxes = [(-10, -10, 40, 40), (40, 30, 90, 80), (100, 60, 150, 110)]
    lms = [tilted_landmarks((b[0] + b[2]) / 2, (b[1] + b[3]) / 2, a) for b, a in zip(boxes, (0.0, 15.0, -30.0))]
    crops, cds = crop_faces(img, boxes, (32, 32), align_eyes=True, landmarks=lms)
    assert crops.shape == (3, 32, 32, 3)
    enhanced = torch.rand(3, 32, 32, 3, generator=torch.Generator().manual_seed(12))
    out, mask = paste_back_many(img, enhanced, cds, feather_px=4, return_mask=True)
    assert_untouched_outside(out, img, mask)
    for cd in cds:  # every face got pasted
        x0, y0, x1, y1 = cd.box
        assert (mask[max(y0, 0) : y1, max(x0, 0) : x1] > 0.5).sum() > 50


def test_paste_back_many_maps_crops_to_their_batch_image() -> None:
    batch = torch.stack([random_image(13), random_image(14), random_image(15)])
    crops0, cds0 = crop_faces(batch[0], [(10, 10, 50, 50)], (32, 32), image_index=0)
    crops2, cds2 = crop_faces(batch[2], [(60, 40, 100, 80), (-8, 60, 32, 100)], (32, 32), image_index=2)
    crops = torch.cat([crops0, crops2]) * 0.5  # "enhanced": darker everywhere
    out, mask = paste_back_many(batch, crops, cds0 + cds2, feather_px=4, return_mask=True)
    assert out.shape == batch.shape and mask.shape == (3, H, W)
    assert torch.equal(out[1], batch[1]) and torch.all(mask[1] == 0)
    for b in (0, 2):
        assert_untouched_outside(out[b], batch[b], mask[b])
        assert (mask[b] == 1).sum() > 100
    assert out is not batch and torch.equal(batch[0], random_image(13))  # input not modified
    with pytest.raises(ValueError):
        paste_back_many(batch[:1], crops, cds0 + cds2)


# ----------------------------------------------------------------------------- eye alignment


def dots_image(points: list[tuple[float, float]], h: int = H, w: int = W, sigma: float = 1.5) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    img = torch.zeros(h, w)
    for px, py in points:
        img += torch.exp(-((xx - px) ** 2 + (yy - py) ** 2) / (2 * sigma**2))
    return img.clamp(0, 1)[..., None].expand(h, w, 3).contiguous()


def centroid(plane: torch.Tensor) -> tuple[float, float]:
    yy, xx = torch.meshgrid(torch.arange(plane.shape[0]) + 0.5, torch.arange(plane.shape[1]) + 0.5, indexing="ij")
    s = plane.sum()
    return float((plane * yy).sum() / s), float((plane * xx).sum() / s)


@pytest.mark.parametrize("angle", [20.0, -20.0])
def test_eye_alignment_puts_eyes_on_one_row(angle: float) -> None:
    lm = tilted_landmarks(64, 48, angle, half_eye=14.0)
    img = dots_image(lm[:2])
    box = (24, 8, 104, 88)
    crops, (cd,) = crop_faces(img, [box], (64, 64), align_eyes=True, landmarks=[lm])
    assert cd.angle == pytest.approx(angle, abs=1e-9)
    assert cd.center == (64.0, 48.0)
    crop = crops[0][..., 0]
    (ly, lx), (ry, rx) = centroid(crop[:, :32]), centroid(crop[:, 32:])
    assert abs(ly - ry) < 0.25
    assert ly == pytest.approx(32.0, abs=0.25)  # box centre -> crop centre row
    assert (rx + 32) - lx == pytest.approx(2 * 14.0 * 64 / 80, abs=0.5)  # eye distance at working scale

    plain, _ = crop_faces(img, [box], (64, 64))
    (ly0, _), (ry0, _) = centroid(plain[0][:, :32, 0]), centroid(plain[0][:, 32:, 0])
    assert abs(ly0 - ry0) > 5.0  # without alignment they are on different rows
    assert (ry0 > ly0) == (angle > 0)  # positive angle: the right eye is lower in the image


# ----------------------------------------------------------------------------- colour matching


@pytest.mark.parametrize("mode, tol", [("mean_std", 0.01), ("lab_mean_std", 0.02)])
def test_color_match_removes_a_mean_shift(mode: str, tol: float) -> None:
    img = smooth_image()
    crops, (cd,) = crop_faces(img, [(32, 16, 96, 80)], (64, 64))
    shifted = (crops[0] + torch.tensor([0.12, -0.1, 0.08])).clamp(0, 1)
    plain, mask = paste_back(img, shifted, cd, feather_px=8, return_mask=True)
    core = mask == 1
    assert (plain - img)[core].abs().mean() > 0.08  # the shift is really there without matching
    matched, mask2 = paste_back(img, shifted, cd, feather_px=8, color_match=mode, return_mask=True)
    assert torch.equal(mask, mask2)
    assert_untouched_outside(matched, img, mask2)
    err = (matched - img)[core]
    assert err.mean(dim=0).abs().max() < tol
    assert err.abs().mean() < 2 * tol


def test_color_match_gain_matches_std() -> None:
    img = smooth_image()
    crops, (cd,) = crop_faces(img, [(32, 16, 96, 80)], (64, 64))
    flat = 0.5 + (crops[0] - 0.5) * 0.3  # contrast squashed to 30 %
    matched = paste_back(img, flat, cd, mask=torch.ones(64, 64), feather_px=0, color_match="mean_std")
    region = (slice(16, 80), slice(32, 96))
    assert (matched[region] - img[region]).abs().max() < 0.01


def test_lab_conversion_matches_skimage_and_round_trips() -> None:
    color = pytest.importorskip("skimage.color")
    rgb = random_image(16, 16, 16).double()
    lab = _srgb_to_lab(rgb)
    assert np.allclose(lab.numpy(), color.rgb2lab(rgb.numpy()), atol=0.02)
    assert torch.allclose(_lab_to_srgb(lab), rgb, atol=1e-6)
