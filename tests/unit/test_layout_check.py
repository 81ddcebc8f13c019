"""common/layout.py: the one strict layout check (and its wording) behind the PuLID, EVA-CLIP and BiSeNet loaders."""

import torch
from likeness.common.layout import compare, listed

EXPECTED = {"a.weight": (4, 2), "a.bias": (4,), "rope.freqs": (8, 2)}


def test_a_matching_state_dict_has_no_mismatch_and_optional_keys_may_be_absent():
    sd = {"a.weight": torch.zeros(4, 2), "a.bias": torch.zeros(4)}
    assert not compare(sd, EXPECTED, optional=lambda k: k.startswith("rope."))
    assert compare(sd, EXPECTED).missing == ["rope.freqs"]


def test_every_kind_of_problem_is_named_once_with_its_count():
    sd = {"a.weight": torch.zeros(4, 3), "b.weight": torch.zeros(1), "rope.freqs": "not a tensor"}
    probs = compare(sd, EXPECTED)
    assert probs.missing == ["a.bias"] and probs.unexpected == ["b.weight"] and probs.size == 4
    assert [m[0] for m in probs.misshapen] == ["a.weight", "rope.freqs"]
    text = probs.describe()
    assert text.startswith("1 missing keys (a.bias); 1 unexpected keys (b.weight); 2 misshapen keys (")
    assert "a.weight is [4, 3], expected [4, 2]" in text and "rope.freqs is <str, not a tensor>, expected [8, 2]" in text


def test_long_lists_are_cut_with_the_number_left():
    assert listed(range(8), 3) == "0, 1, 2 (+5 more)"
    assert listed(["x"], 3) == "x"
    sd = {f"extra.{i}": torch.zeros(1) for i in range(200)}
    assert "200 unexpected keys (extra.0, extra.1, extra.2, extra.3, extra.4 (+195 more))" in compare(sd, {}).describe()
