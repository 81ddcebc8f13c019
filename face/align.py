"""5-point face alignment to the FFHQ 512x512 template, as PuLID-Flux's reference preprocessing does.

The reference (PuLID-Flux through facexlib's ``FaceRestoreHelper``, face_size 512) runs a second detector
(RetinaFace) to get 5 landmarks, fits a similarity transform from them to a fixed template and warps the
photo to 512x512. We skip that second detector: we align from the 5 landmarks the insightface detector
already gave us (left eye, right eye, nose tip, left mouth corner, right mouth corner, in image pixels,
"left" meaning image-left). Both detectors use the same 5-point convention, so the template applies as is.

Differences from facexlib, on purpose:
* facexlib fits with ``cv2.estimateAffinePartial2D(..., method=cv2.LMEDS)`` (a robust fit); by default we
  use the closed-form least-squares similarity of Umeyama (1991) over all 5 points. With landmarks close to
  the template's proportions both agree (to ~1e-5 with 0.5 px noise); on an expressive face they do not:
  on the astronaut's broad smile LMedS keeps eyes and nose and drops both mouth corners as outliers, while
  least squares spreads the error over all five (scale 3.06 vs 2.93). ``method="lmeds"`` reproduces
  facexlib's call exactly.
* facexlib warps a uint8 BGR image; we warp float32 RGB in [0, 1], so there is no 8-bit rounding.

The warp is what facexlib's ``align_warp_face`` does by default: ``cv2.warpAffine`` with bilinear
interpolation (its default flag), ``BORDER_CONSTANT`` and border value (135, 133, 132) in BGR 0..255, i.e.
RGB (132, 133, 135) / 255, a neutral gray. (Source read: facexlib 0.3.0,
facexlib/utils/face_restoration_helper.py, ``FaceRestoreHelper.__init__`` and ``align_warp_face``.)

Coordinates follow OpenCV: a (2, 3) matrix maps source (x, y) to destination (x, y) with pixel centres on
integer coordinates, which is the convention the template and the detector landmarks are given in.
"""

from __future__ import annotations

import logging
from typing import Any

import cv2
import numpy as np
import torch

logger = logging.getLogger(__name__)

__all__ = [
    "ALIGN_METHODS",
    "BORDER_VALUE_RGB",
    "FFHQ_TEMPLATE_512",
    "align_face",
    "fit_to_template",
    "inverse_matrix",
    "similarity_transform",
    "template_for_size",
    "transform_points",
]

# The standard FFHQ 5-point template for a 512x512 aligned face (left eye, right eye, nose, left mouth
# corner, right mouth corner; x, y in pixels), as facexlib 0.3.0 FaceRestoreHelper uses for face_size 512.
FFHQ_TEMPLATE_512 = np.array(
    [
        [192.98138, 239.94708],
        [318.90277, 240.1936],
        [256.63416, 314.01935],
        [201.26117, 371.41043],
        [313.08905, 371.15118],
    ],
    dtype=np.float64,
)
FFHQ_TEMPLATE_512.setflags(write=False)

# facexlib's border (135, 133, 132) is BGR on a 0..255 image; ours is RGB in [0, 1].
BORDER_VALUE_RGB = (132.0 / 255.0, 133.0 / 255.0, 135.0 / 255.0)


def _as_points(points: Any, name: str) -> np.ndarray:
    """(5, 2) float64 from a list, numpy array or torch tensor; the shape is checked here once."""
    if isinstance(points, torch.Tensor):
        points = points.detach().cpu().numpy()
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 2:
        raise ValueError(f"{name} must be an (N, 2) array of (x, y) points with N >= 2, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite coordinates: {arr.tolist()}")
    return arr


def template_for_size(size: int = 512) -> np.ndarray:
    """The 5-point template scaled to a square output of ``size`` pixels (facexlib scales it by size / 512)."""
    if int(size) <= 0:
        raise ValueError(f"size must be a positive number of pixels, got {size!r}")
    return FFHQ_TEMPLATE_512 * (float(size) / 512.0)


def similarity_transform(src_pts: Any, dst_pts: Any) -> np.ndarray:
    """Least-squares similarity (uniform scale, rotation, translation; no reflection) mapping src to dst.

    Closed form of S. Umeyama, "Least-squares estimation of transformation parameters between two point
    patterns", IEEE TPAMI 13(4):376-380, 1991: with centred point sets, the SVD of their cross-covariance
    gives the rotation (its last singular direction flipped if that would otherwise be a reflection), the
    scale is trace(D S) / variance(src), and the translation maps the src centroid onto the dst centroid.

    Returns a (2, 3) float64 matrix ``M`` with ``dst ~= M[:, :2] @ src + M[:, 2]``, usable by
    ``cv2.warpAffine``.
    """
    src = _as_points(src_pts, "src_pts")
    dst = _as_points(dst_pts, "dst_pts")
    if src.shape != dst.shape:
        raise ValueError(f"src_pts and dst_pts must have the same shape, got {src.shape} and {dst.shape}")
    n = src.shape[0]
    mu_s = src.mean(axis=0)
    mu_d = dst.mean(axis=0)
    sc = src - mu_s
    dc = dst - mu_d
    var_s = float((sc**2).sum() / n)
    if var_s < 1e-12:
        raise ValueError(f"src_pts are all (nearly) the same point, no transform can be fitted: {src.tolist()}")
    cov = dc.T @ sc / n
    u, sing, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    rot = u @ np.diag(d) @ vt
    scale = float((sing * d).sum() / var_s)
    trans = mu_d - scale * rot @ mu_s
    m = np.empty((2, 3), dtype=np.float64)
    m[:, :2] = scale * rot
    m[:, 2] = trans
    return m


def inverse_matrix(matrix: Any) -> np.ndarray:
    """Inverse of a (2, 3) affine matrix, to map aligned-face pixels back to the source image."""
    m = np.asarray(matrix.detach().cpu().numpy() if isinstance(matrix, torch.Tensor) else matrix, dtype=np.float64)
    if m.shape != (2, 3):
        raise ValueError(f"matrix must be a (2, 3) affine matrix, got shape {m.shape}")
    a = m[:, :2]
    det = float(np.linalg.det(a))
    if abs(det) < 1e-12:
        raise ValueError(f"matrix is singular (det {det:g}), it has no inverse: {m.tolist()}")
    a_inv = np.linalg.inv(a)
    out = np.empty((2, 3), dtype=np.float64)
    out[:, :2] = a_inv
    out[:, 2] = -a_inv @ m[:, 2]
    return out


def transform_points(matrix: Any, points: Any) -> np.ndarray:
    """Apply a (2, 3) affine matrix to (N, 2) points (e.g. landmarks into the aligned face)."""
    m = np.asarray(matrix, dtype=np.float64)
    pts = _as_points(points, "points")
    return pts @ m[:, :2].T + m[:, 2]


ALIGN_METHODS = ("umeyama", "lmeds")


def fit_to_template(landmarks5: Any, size: int = 512, method: str = "umeyama") -> np.ndarray:
    """The (2, 3) source-to-aligned matrix for 5 detector landmarks and a ``size`` output.

    ``"umeyama"``: least squares over all 5 points (``similarity_transform``). ``"lmeds"``: facexlib's own
    call, ``cv2.estimateAffinePartial2D(landmarks, template, method=cv2.LMEDS)``.
    """
    pts = _as_points(landmarks5, "landmarks5")
    if pts.shape != (5, 2):
        raise ValueError(
            f"landmarks5 must be the detector's 5 (x, y) points (eyes, nose, mouth corners), got shape {pts.shape}"
        )
    template = template_for_size(size)
    if method == "umeyama":
        return similarity_transform(pts, template)
    if method == "lmeds":
        matrix, _ = cv2.estimateAffinePartial2D(pts, template, method=cv2.LMEDS)
        if matrix is None:
            raise ValueError(f"cv2.estimateAffinePartial2D found no transform for landmarks {pts.tolist()}")
        return matrix.astype(np.float64)
    raise ValueError(f"method must be one of {ALIGN_METHODS}, got {method!r}")


def align_face(image: Any, landmarks5: Any, size: int = 512, method: str = "umeyama") -> tuple[Any, np.ndarray]:
    """Warp ``image`` so its 5 landmarks land on the FFHQ template for a ``size`` x ``size`` face.

    ``image`` is (H, W, 3) float in [0, 1], numpy or torch; ``landmarks5`` the detector's 5 points
    (left eye, right eye, nose, left mouth corner, right mouth corner) in image pixels. Returns the
    aligned (size, size, 3) image as the same kind as the input (numpy float32, or a torch tensor with
    the input's dtype and device) and the (2, 3) float64 source-to-aligned matrix; ``inverse_matrix`` of
    it maps back for a paste. ``method`` picks the fit, see ``fit_to_template``.
    """
    size = int(size)
    matrix = fit_to_template(landmarks5, size, method)
    is_torch = isinstance(image, torch.Tensor)
    if is_torch:
        src = image.detach().to("cpu", torch.float32).numpy()
    else:
        src = np.asarray(image, dtype=np.float32)
    if src.ndim != 3 or src.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB, got shape {tuple(src.shape)}")
    src = np.ascontiguousarray(src)
    aligned = cv2.warpAffine(
        src,
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=BORDER_VALUE_RGB,
    )
    if is_torch:
        return torch.from_numpy(aligned).to(device=image.device, dtype=image.dtype), matrix
    return aligned, matrix
