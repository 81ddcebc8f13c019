"""pulid.fuse_id_tokens: every fusion on hand-computed values (definitions: pulid/fusion.py's docstring)."""

from __future__ import annotations

import math

import pytest
import torch
from likeness.pulid import FUSIONS, fuse_id_tokens

# Two references, two tokens of width 2. Token norms: ref0 (5, 9), ref1 (0, 10).
REF0 = [[3.0, 4.0], [9.0, 0.0]]
REF1 = [[0.0, 0.0], [6.0, 8.0]]
TOKENS = torch.tensor([REF0, REF1])


def _fuse(method, **kw):
    out = fuse_id_tokens(TOKENS, method, **kw)
    assert out.dim() == 3 and out.shape[0] == 1
    return out[0].tolist()


def test_mean_max_concat():
    assert _fuse("mean") == [[1.5, 2.0], [7.5, 4.0]]
    assert _fuse("max") == [[3.0, 4.0], [9.0, 8.0]]
    assert _fuse("concat") == REF0 + REF1


def test_norm_id_weights_by_frobenius_norm():
    f0, f1 = math.sqrt(9 + 16 + 81), 10.0
    w0, w1 = f0 / (f0 + f1), f1 / (f0 + f1)
    want = [[3 * w0, 4 * w0], [9 * w0 + 6 * w1, 8 * w1]]
    torch.testing.assert_close(torch.tensor(_fuse("norm_id")), torch.tensor(want))


def test_max_token_picks_the_strongest_token_per_position():
    assert _fuse("max_token") == [[3.0, 4.0], [6.0, 8.0]]  # max would mix them: [9, 8]


def test_auto_weight_ranks_token_norms_ascending_and_sums():
    # token 0: ref0 (norm 5) ranks above ref1 (0); token 1: ref1 (10) above ref0 (9); levels linspace(0.5, 2, 2)
    assert _fuse("auto_weight", weight_min=0.5, weight_max=2.0) == [[6.0, 8.0], [0.5 * 9 + 2 * 6, 2 * 8.0]]


def test_auto_weight_uses_rank_not_argsort_for_three_references():
    tokens = torch.tensor([[[2.0]], [[3.0]], [[1.0]]])  # ranks 1, 2, 0 -> weights 0.5, 1, 0 of linspace(0, 1, 3)
    assert fuse_id_tokens(tokens, "auto_weight").item() == pytest.approx(0.5 * 2 + 1 * 3 + 0 * 1)


@pytest.mark.parametrize("method", FUSIONS)
def test_one_reference_is_unchanged_and_lists_are_accepted(method):
    one = TOKENS[:1]
    assert torch.equal(fuse_id_tokens(one, method), one)
    assert torch.equal(fuse_id_tokens([TOKENS[:1], TOKENS[1:]], method), fuse_id_tokens(TOKENS, method))


def test_bad_method_and_shape_are_named():
    with pytest.raises(ValueError, match="'median' is not one of mean, max, concat, norm_id, max_token, auto_weight"):
        fuse_id_tokens(TOKENS, "median")
    with pytest.raises(ValueError, match=r"\(N, K, D\)"):
        fuse_id_tokens(torch.zeros(4, 2), "mean")
