"""How well a face paste preserved the rest of the image: PSNR and SSIM outside the face mask.

Both metrics only look at pixels where the mask is exactly 0 (the region ``paste_back`` promises
not to touch), so a perfect paste scores PSNR = inf and SSIM = 1.0 there whatever happened to the
face. Images are (H, W, C) or (B, H, W, C) in [0, 1] (torch or numpy); masks (H, W) or (B, H, W);
mask None means the whole frame.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["psnr_outside", "ssim_outside", "ssim_map"]

# Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error visibility to structural
# similarity", IEEE Trans. Image Processing 13(4), 600-612, 2004: 11x11 circular-symmetric Gaussian
# window with sigma 1.5, K1 = 0.01, K2 = 0.03.
_WIN = 11
_SIGMA = 1.5
_K1 = 0.01
_K2 = 0.03
_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, for gray=True


def _prepare(a: Any, b: Any, mask: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, H, W, C) float64 images and a (B, H, W) bool 'outside' map."""
    x = torch.as_tensor(a).to(torch.float64)
    y = torch.as_tensor(b).to(torch.float64)
    if x.shape != y.shape:
        raise ValueError(f"images differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
    if x.ndim == 3:
        x, y = x[None], y[None]
    if x.ndim != 4:
        raise ValueError(f"images must be (H, W, C) or (B, H, W, C), got shape {tuple(x.shape)}")
    B, H, W, _ = x.shape
    if mask is None:
        outside = torch.ones((B, H, W), dtype=torch.bool, device=x.device)
    else:
        m = torch.as_tensor(mask).to(x.device)
        if m.ndim == 2:
            m = m[None]
        if m.ndim != 3 or tuple(m.shape[1:]) != (H, W) or m.shape[0] not in (1, B):
            raise ValueError(f"mask shape {tuple(m.shape)} does not match images {tuple(x.shape)}")
        outside = (m == 0).expand(B, H, W)
    return x, y, outside


def psnr_outside(a: Any, b: Any, mask: Any = None, data_range: float = 1.0) -> float:
    """PSNR in dB over the pixels where ``mask`` == 0: 10 log10(data_range^2 / MSE), all channels pooled.

    Identical outside regions give inf. Raises ValueError when the mask leaves nothing outside.
    """
    x, y, outside = _prepare(a, b, mask)
    sel = outside[..., None].expand_as(x)
    n = int(sel.sum())
    if n == 0:
        raise ValueError("the mask covers every pixel: nothing outside it to measure")
    mse = float(((x - y) ** 2)[sel].mean())
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def _gaussian_window(device: torch.device) -> torch.Tensor:
    r = _WIN // 2
    t = torch.arange(-r, r + 1, dtype=torch.float64, device=device)
    g = torch.exp(-(t * t) / (2.0 * _SIGMA**2))
    return g / g.sum()


def ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """SSIM map of (N, 1, H, W) float64 planes, 'valid' filtering: (N, 1, H - 10, W - 10).

    Valid filtering (as in the authors' reference code) means no padding convention leaks into the
    score; map pixel (i, j) belongs to image pixel (i + 5, j + 5). Statistics are the Gaussian-
    weighted means, variances and covariance without sample correction, as in the paper.
    """
    g = _gaussian_window(x.device)
    gx, gy = g.view(1, 1, 1, _WIN), g.view(1, 1, _WIN, 1)

    def filt(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, gx), gy)

    c1 = (_K1 * data_range) ** 2
    c2 = (_K2 * data_range) ** 2
    mu_x, mu_y = filt(x), filt(y)
    sxx = filt(x * x) - mu_x * mu_x
    syy = filt(y * y) - mu_y * mu_y
    sxy = filt(x * y) - mu_x * mu_y
    num = (2.0 * mu_x * mu_y + c1) * (2.0 * sxy + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (sxx + syy + c2)
    return num / den


def ssim_outside(
    a: Any,
    b: Any,
    mask: Any = None,
    *,
    gray: bool = False,
    data_range: float = 1.0,
    margin: int = 0,
) -> float:
    """Mean SSIM (Wang et al. 2004) over the pixels where ``mask`` == 0.

    The SSIM map is computed per channel (or on BT.601 luma with ``gray``) and averaged over the
    outside pixels of every image and channel. Map values exist only 5 px or more from the image
    border (valid 11x11 window), so border pixels are not scored; on a full frame this equals
    ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1)``. Windows of outside pixels near the mask still see
    the changed face; ``margin`` (pixels) drops outside pixels that close to the mask (use 5 to
    score only windows that lie fully outside). Raises ValueError when nothing is left to score.
    """
    x, y, outside = _prepare(a, b, mask)
    B, H, W, C = x.shape
    if H < _WIN or W < _WIN:
        raise ValueError(f"SSIM needs images of at least {_WIN}x{_WIN} pixels, got {H}x{W}")
    if gray:
        luma = torch.tensor(_LUMA, dtype=torch.float64, device=x.device)
        if C != 3:
            raise ValueError(f"gray=True needs RGB images (3 channels), got {C}")
        x, y, C = (x @ luma)[..., None], (y @ luma)[..., None], 1
    if margin > 0:
        near = F.max_pool2d((~outside).to(torch.float64)[:, None], 2 * margin + 1, stride=1, padding=margin)[:, 0]
        outside = outside & (near == 0)
    planes_x = x.permute(0, 3, 1, 2).reshape(B * C, 1, H, W)
    planes_y = y.permute(0, 3, 1, 2).reshape(B * C, 1, H, W)
    smap = ssim_map(planes_x, planes_y, data_range).reshape(B, C, H - _WIN + 1, W - _WIN + 1)
    r = _WIN // 2
    sel = outside[:, None, r : H - r, r : W - r].expand_as(smap)
    if int(sel.sum()) == 0:
        raise ValueError("no pixel outside the mask (and at least 5 px from the border) is left to score")
    return float(smap[sel].mean())
