"""How several reference photos become one set of PuLID ID tokens.

``mean`` averages the references' tokens; ``concat`` keeps every
reference's tokens (the official app concatenates supplementary ID images along the token axis). ``max``,
``norm_id``, ``max_token`` and ``auto_weight`` follow the definitions of the public "Enhanced" ComfyUI port
(sipie800/ComfyUI-PuLID-Flux-Enhanced, pulidflux.py, ApplyPulidFlux fusion options), re-derived here:

- ``max``: element-wise maximum over the references.
- ``norm_id``: a weighted sum, each reference weighted by its tokens' Frobenius norm over the sum of those norms.
- ``max_token``: per token position k, the token of the reference whose k-th token has the largest L2 norm.
- ``auto_weight``: per token position k, the references are ranked by the L2 norm of their k-th token (ascending);
  the reference of rank r gets weight ``linspace(weight_min, weight_max, N)[r]``; the weighted tokens are summed,
  not normalised (weights 0..1 over N references sum to N/2, so this also scales the tokens). The port indexes
  the weights by ``argsort`` rather than by rank; the two agree for N <= 2, and for N >= 3 we follow the stated
  definition (rank), which gives the largest token the largest weight.
"""

from __future__ import annotations

import torch

from .errors import PulidInputError

__all__ = ["FUSIONS", "fuse_id_tokens"]

FUSIONS = ("mean", "max", "concat", "norm_id", "max_token", "auto_weight")


def fuse_id_tokens(tokens: torch.Tensor, method: str = "mean", weight_min: float = 0.0, weight_max: float = 1.0) -> torch.Tensor:
    """Fuse ID tokens of N references, (N, K, D) (or a list of (1, K, D)), into one set (1, K', D).

    K' = N * K for ``concat``, K for every other method. One reference is returned unchanged by every method
    (the port skips fusion for a single image, so ``auto_weight`` does not scale it).
    """
    if isinstance(tokens, (list, tuple)):
        tokens = torch.cat([t if t.dim() == 3 else t.unsqueeze(0) for t in tokens], 0)
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 3 or tokens.shape[0] < 1:
        shape = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise PulidInputError(f"fuse_id_tokens: tokens must be (N, K, D) with N >= 1, got {shape}")
    if method not in FUSIONS:
        raise PulidInputError(f"fusion {method!r} is not one of {', '.join(FUSIONS)}")
    n, k, d = tokens.shape
    if method == "concat":
        return tokens.reshape(1, n * k, d)
    if n == 1:
        return tokens.clone()
    x = tokens.float()
    if method == "mean":
        out = x.mean(0)
    elif method == "max":
        out = x.amax(0)
    elif method == "norm_id":
        norms = x.flatten(1).norm(dim=1)  # (N,) Frobenius norm of each reference's tokens
        out = torch.einsum("nkd,n->kd", x, norms / norms.sum())
    elif method == "max_token":
        pick = x.norm(dim=2).argmax(0)  # (K,) which reference has the largest k-th token
        out = x[pick, torch.arange(k)]
    else:  # auto_weight
        ranks = x.norm(dim=2).argsort(0).argsort(0)  # (N, K) rank of each reference's k-th token, ascending
        levels = torch.linspace(float(weight_min), float(weight_max), n, dtype=x.dtype)
        out = (x * levels[ranks].unsqueeze(-1)).sum(0)
    return out.unsqueeze(0).to(tokens.dtype)
