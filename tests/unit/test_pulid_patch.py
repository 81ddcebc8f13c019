"""Flux block patches: window, weight, token ranges, pass-through, composition and batch handling."""

from __future__ import annotations

import copy

import pytest
import torch
from configs import UNIT_PULID, seeded_unit_pulid
from likeness.pulid import ca_schedule, flux_block_patches
from likeness.pulid import patch as patch_mod
from likeness.pulid import tokens as tokens_mod

TINY = UNIT_PULID  # shared tiny config, see tests/configs.py
N_DOUBLE, N_SINGLE = 5, 9  # blocks 0,2,4 -> CA 0..2 ; single 0,4,8 -> CA 3..5
TXT, IMG, B = 4, 10, 2



def _model(seed: int = 0):
    return seeded_unit_pulid(seed).requires_grad_(False)


def _ids(batch: int = 1, seed: int = 1):
    return torch.randn(batch, TINY.num_queries, TINY.id_token_dim, generator=torch.Generator().manual_seed(seed))


class FakeBlock:
    """Stands in for ComfyUI's block_wrap: returns known tensors and records what it was called with."""

    def __init__(self, single: bool, extra_out: dict | None = None):
        self.single = single
        self.calls: list[dict] = []
        self.extra_out = extra_out or {}

    def __call__(self, args):
        self.calls.append(args)
        if self.single:
            out = {"img": args["img"] * 0.5 + 0.25}
        else:
            out = {"img": args["img"] * 0.5 + 0.25, "txt": args["txt"] - 1.0}
        out.update(self.extra_out)
        return out


def _opts(sigma: float = 0.5, **extra):
    return {"sigmas": torch.tensor([sigma]), **extra}


def _double_args(sigma=0.5, batch=B, seed=2, **opts):
    g = torch.Generator().manual_seed(seed)
    return {
        "img": torch.randn(batch, IMG, TINY.flux_dim, generator=g),
        "txt": torch.randn(batch, TXT, TINY.flux_dim, generator=g),
        "vec": torch.randn(batch, TINY.flux_dim, generator=g),
        "pe": torch.randn(1, 1, TXT + IMG, 8, generator=g),
        "attn_mask": None,
        "transformer_options": _opts(sigma, **opts),
    }


def _single_args(sigma=0.5, batch=B, seed=3, **opts):
    g = torch.Generator().manual_seed(seed)
    return {
        "img": torch.randn(batch, TXT + IMG, TINY.flux_dim, generator=g),
        "vec": torch.randn(batch, TINY.flux_dim, generator=g),
        "pe": torch.randn(1, 1, TXT + IMG, 8, generator=g),
        "attn_mask": None,
        "transformer_options": _opts(sigma, **opts),
    }


def _patches(model=None, ids=None, weight=0.8, start=1.0, end=0.2, previous=None):
    return flux_block_patches(
        model if model is not None else _model(),
        ids if ids is not None else _ids(),
        weight,
        start,
        end,
        num_double_blocks=N_DOUBLE,
        num_single_blocks=N_SINGLE,
        previous=previous,
    )


def test_schedule_official_and_tiny():
    official = ca_schedule(19, 38)
    assert [official[("double_block", i)] for i in range(0, 19, 2)] == list(range(10))
    assert [official[("single_block", i)] for i in range(0, 38, 4)] == list(range(10, 20))
    assert len(official) == 20
    patches = _patches()
    assert sorted(patches) == sorted(
        [("double_block", i) for i in (0, 2, 4)] + [("single_block", i) for i in (0, 4, 8)]
    )
    assert patches[("single_block", 8)].ca_index == 5


def test_too_few_ca_modules_is_an_error():
    with pytest.raises(ValueError, match="need 20 CA modules"):
        flux_block_patches(_model(), _ids(), 1.0, 1.0, 0.0, num_double_blocks=19, num_single_blocks=38)


def test_double_block_inside_window_adds_weighted_residual():
    model, ids = _model(), _ids()
    patches = _patches(model, ids, weight=0.8)
    args, block = _double_args(), FakeBlock(single=False)
    out = patches[("double_block", 2)](args, {"original_block": block})
    ref = FakeBlock(single=False)(args)
    want = ref["img"] + 0.8 * model.ca[1](ids.expand(B, -1, -1), ref["img"])
    assert torch.equal(out["img"], want)
    assert torch.equal(out["txt"], ref["txt"])
    assert not torch.equal(out["img"], ref["img"])
    assert block.calls == [args] and block.calls[0] is args


@pytest.mark.parametrize("sigma", [1.5, 0.1, 0.19999])
def test_outside_window_is_bit_identical(sigma):
    patches = _patches(start=1.0, end=0.2)
    for key, args_fn, single in ((("double_block", 0), _double_args, False), (("single_block", 4), _single_args, True)):
        args = args_fn(sigma=sigma)
        block = FakeBlock(single=single)
        if single:  # learn the text length first, like a real forward
            patches[("double_block", 0)](_double_args(sigma=sigma), {"original_block": FakeBlock(single=False)})
        out = patches[key](args, {"original_block": block})
        ref = FakeBlock(single=single)(args)
        assert torch.equal(out["img"], ref["img"])


def test_window_edges_are_inclusive():
    for sigma in (1.0, 0.25):  # exactly representable, so float32 sigmas hit the edges exactly
        out = _patches(start=1.0, end=0.25)[("double_block", 0)](
            _double_args(sigma), {"original_block": FakeBlock(False)}
        )
        assert not torch.equal(out["img"], FakeBlock(False)(_double_args(sigma))["img"])


def test_sigma_tensor_with_batch_uses_max():
    args = _double_args()
    args["transformer_options"]["sigmas"] = torch.tensor([0.1, 0.5])
    out = _patches(start=1.0, end=0.2)[("double_block", 0)](args, {"original_block": FakeBlock(False)})
    assert not torch.equal(out["img"], FakeBlock(False)(args)["img"])


def test_weight_zero_returns_original_output_object():
    patches = _patches(weight=0.0)
    block = FakeBlock(single=False)
    sentinel = {}

    def original(args):
        sentinel["out"] = block(args)
        return sentinel["out"]

    out = patches[("double_block", 0)](_double_args(), {"original_block": original})
    assert out is sentinel["out"]


def test_single_block_touches_only_image_tokens():
    model, ids = _model(), _ids()
    patches = _patches(model, ids, weight=1.3)
    patches[("double_block", 0)](_double_args(), {"original_block": FakeBlock(False)})  # learns TXT
    args = _single_args()
    out = patches[("single_block", 4)](args, {"original_block": FakeBlock(True)})["img"]
    ref = FakeBlock(True)(args)["img"]
    assert out.shape == ref.shape
    assert torch.equal(out[:, :TXT], ref[:, :TXT])
    want = ref[:, TXT:] + 1.3 * model.ca[4](ids.expand(B, -1, -1), ref[:, TXT:])
    assert torch.equal(out[:, TXT:], want)


def test_single_block_uses_img_slice_when_present():
    model, ids = _model(), _ids()
    patches = _patches(model, ids)
    start, end = 6, TXT + IMG - 1  # deliberately not the text length, to prove img_slice wins
    args = _single_args(img_slice=[start, end])
    out = patches[("single_block", 0)](args, {"original_block": FakeBlock(True)})["img"]
    ref = FakeBlock(True)(args)["img"]
    assert torch.equal(out[:, :start], ref[:, :start]) and torch.equal(out[:, end:], ref[:, end:])
    assert torch.equal(
        out[:, start:end], ref[:, start:end] + 0.8 * model.ca[3](ids.expand(B, -1, -1), ref[:, start:end])
    )


def test_single_block_without_text_length_is_an_error():
    with pytest.raises(RuntimeError, match="double block"):
        _patches()[("single_block", 0)](_single_args(), {"original_block": FakeBlock(True)})


def test_unknown_keys_pass_through():
    patches = _patches()
    args = _double_args(future_option="x")
    args["new_arg"] = torch.ones(1)
    snapshot = {k: v for k, v in args.items()}
    opts_snapshot = dict(args["transformer_options"])
    img_before = args["img"].clone()
    block = FakeBlock(single=False, extra_out={"aux": "kept"})
    out = patches[("double_block", 0)](args, {"original_block": block, "something_new": 1})
    assert block.calls[0] is args
    assert block.calls[0]["new_arg"] is snapshot["new_arg"]
    assert block.calls[0]["transformer_options"]["future_option"] == "x"
    assert out["aux"] == "kept"
    assert args == snapshot and args["transformer_options"] == opts_snapshot
    assert torch.equal(args["img"], img_before)


def test_composes_with_previous_patch_previous_first():
    model, ids = _model(), _ids()
    seen = []

    def previous(args, extra):
        out = extra["original_block"](args)
        seen.append("previous")
        return {**out, "img": out["img"] + 1.0}

    patches = _patches(model, ids, weight=0.5, previous={("double_block", 2): previous})
    args = _double_args()
    out = patches[("double_block", 2)](args, {"original_block": FakeBlock(False)})
    after_prev = FakeBlock(False)(args)["img"] + 1.0
    assert seen == ["previous"]
    assert torch.equal(out["img"], after_prev + 0.5 * model.ca[1](ids.expand(B, -1, -1), after_prev))
    # keys without a previous patch are unaffected by it
    assert patches[("double_block", 0)].previous is None


def test_two_pulid_identities_stack():
    model = _model()
    ids1, ids2 = _ids(seed=5), _ids(seed=6)
    first = _patches(model, ids1, weight=0.7)
    second = _patches(model, ids2, weight=0.4, previous=first)
    args = _double_args()
    out = second[("double_block", 4)](args, {"original_block": FakeBlock(False)})
    x = FakeBlock(False)(args)["img"]
    x = x + 0.7 * model.ca[2](ids1.expand(B, -1, -1), x)
    x = x + 0.4 * model.ca[2](ids2.expand(B, -1, -1), x)
    assert torch.equal(out["img"], x)


def test_batch_broadcast_and_matching_batches():
    model = _model()
    args = _double_args(batch=2)
    ref_img = FakeBlock(False)(args)["img"]
    ids1 = _ids(1)
    out1 = _patches(model, ids1)[("double_block", 0)](args, {"original_block": FakeBlock(False)})["img"]
    for i in range(2):  # each image sees the single identity
        torch.testing.assert_close(out1[i : i + 1], ref_img[i : i + 1] + 0.8 * model.ca[0](ids1, ref_img[i : i + 1]))
    ids2 = torch.cat([_ids(seed=7), _ids(seed=8)])
    out2 = _patches(model, ids2)[("double_block", 0)](args, {"original_block": FakeBlock(False)})["img"]
    for i in range(2):  # a batch-sized id batch pairs row i with identity i
        torch.testing.assert_close(
            out2[i : i + 1], ref_img[i : i + 1] + 0.8 * model.ca[0](ids2[i : i + 1], ref_img[i : i + 1])
        )
    bad = _patches(model, torch.cat([_ids()] * 3))
    with pytest.raises(ValueError, match="cannot be matched"):
        bad[("double_block", 0)](args, {"original_block": FakeBlock(False)})


def test_casts_follow_image_dtype_and_are_cached():
    model, ids = _model(), _ids()
    patches = _patches(model, ids)
    args = _double_args()
    args["img"], args["txt"] = args["img"].bfloat16(), args["txt"].bfloat16()
    p = patches[("double_block", 2)]
    out1 = p(args, {"original_block": FakeBlock(False)})["img"]
    assert out1.dtype == torch.bfloat16
    assert model.ca[1].to_q.weight.dtype == torch.float32  # the model itself is not converted
    cast = patch_mod._CA_CASTS[model][1][2]
    out2 = p(args, {"original_block": FakeBlock(False)})["img"]
    assert patch_mod._CA_CASTS[model][1][2] is cast  # no re-copy per step
    assert torch.equal(out1, out2)
    ref = FakeBlock(False)(args)["img"]
    want = ref.float() + 0.8 * model.ca[1](ids.expand(B, -1, -1), ref.float())
    torch.testing.assert_close(out1.float(), want, rtol=0.05, atol=0.05)
    assert p.to(torch.device("cpu")) is p and 1 in patch_mod._CA_CASTS[model]
    assert p.to(torch.float16) is p and 1 in patch_mod._CA_CASTS[model]  # dtype-only moves keep the cache
    p.to("meta")  # an offload to another device frees the copies
    assert 1 not in patch_mod._CA_CASTS[model]


def test_bad_id_tokens_shape_is_rejected():
    with pytest.raises(ValueError, match="id_tokens"):
        flux_block_patches(_model(), torch.randn(1, 8, 7), 1.0, 1.0, 0.0, N_DOUBLE, N_SINGLE)


def test_deepcopy_like_modelpatcher_clone_shares_weights():
    """ComfyUI's ModelPatcher.clone() deep-copies model_options; that must not copy the PuLID weights."""
    model, ids = _model(), _ids()
    first = _patches(model, ids, weight=0.7)
    chained = _patches(model, _ids(seed=9), weight=0.3, previous=first)
    options = {"transformer_options": {"patches_replace": {"dit": dict(chained)}}}
    cloned = copy.deepcopy(options)["transformer_options"]["patches_replace"]["dit"]
    c = cloned[("double_block", 0)]
    assert c is not chained[("double_block", 0)]
    assert c.injection.pulid is model and c.previous.injection.pulid is model
    args = _double_args()
    want = chained[("double_block", 0)](args, {"original_block": FakeBlock(False)})["img"]
    assert torch.equal(c(args, {"original_block": FakeBlock(False)})["img"], want)


def _grid_ids(h: int, w: int, kontext: tuple[int, int] | None = None) -> torch.Tensor:
    """Flux position ids as process_img builds them: (index, row, col), then optional Kontext tokens (index 1)."""
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    ids = torch.stack((torch.zeros(h * w), rows.flatten().float(), cols.flatten().float()), -1)
    if kontext is not None:
        kr, kc = torch.meshgrid(torch.arange(kontext[0]), torch.arange(kontext[1]), indexing="ij")
        ids = torch.cat((ids, torch.stack((torch.ones(kr.numel()), kr.flatten().float(), kc.flatten().float()), -1)))
    return ids[None]


def test_token_grid_from_position_ids_stops_at_kontext_tokens():
    assert tokens_mod.image_token_grid(_grid_ids(2, 5)) == (2, 5)
    assert tokens_mod.image_token_grid(_grid_ids(3, 4, kontext=(2, 2))) == (3, 4)
    # "uxo" Kontext method: same index 0, rows and columns offset past the grid
    ids = _grid_ids(2, 3)
    extra = torch.tensor([[[0.0, 2.0, 3.0], [0.0, 2.0, 4.0]]])
    assert tokens_mod.image_token_grid(torch.cat((ids, extra), 1)) == (2, 3)


def test_mask_resized_to_the_token_grid_gives_exact_zeros_outside():
    mask = torch.zeros(1, 32, 80)  # 2 x 5 tokens of 16 px
    mask[:, :, 48:] = 1.0  # right two token columns
    mask[:, 16:, 40:48] = 1.0  # half of one token
    w = tokens_mod.mask_token_weights(mask, (2, 5), 12)[0, :, 0]
    assert w.tolist() == [0, 0, 0, 1, 1, 0, 0, 0.5, 1, 1, 0, 0]  # two trailing (Kontext) tokens get 0


def test_masked_residual_is_zero_outside_the_mask():
    model, ids = _model(), _ids()
    mask = torch.zeros(1, 32, 80)
    mask[:, :, :32] = 1.0  # left two of five token columns
    patches = flux_block_patches(model, ids, 0.8, 1.0, 0.2, N_DOUBLE, N_SINGLE, mask=mask)
    probe = tokens_mod.token_grid_probe(patches)
    args = _double_args()
    seen = probe({"img": args["img"], "txt": args["txt"], "img_ids": _grid_ids(2, 5), "txt_ids": None})
    assert seen["img"] is args["img"] and patches[("double_block", 0)].injection.grid == (2, 5)
    out = patches[("double_block", 0)](args, {"original_block": FakeBlock(False)})["img"]
    ref = FakeBlock(False)(args)["img"]
    inside = torch.tensor([c < 2 for _ in range(2) for c in range(5)])
    assert torch.equal(out[:, ~inside], ref[:, ~inside])  # exactly untouched
    full = ref + 0.8 * model.ca[0](ids.expand(B, -1, -1), ref)
    torch.testing.assert_close(out[:, inside], full[:, inside])
    single = _single_args()
    out_s = patches[("single_block", 4)](single, {"original_block": FakeBlock(True)})["img"]
    ref_s = FakeBlock(True)(single)["img"]
    assert torch.equal(out_s[:, :TXT], ref_s[:, :TXT]) and torch.equal(out_s[:, TXT:][:, ~inside], ref_s[:, TXT:][:, ~inside])
    assert not torch.equal(out_s[:, TXT:][:, inside], ref_s[:, TXT:][:, inside])


def test_uncond_rows_get_the_uncond_tokens_only_when_given():
    model, ids, zero = _model(), _ids(), _ids(seed=5)
    args = _double_args(batch=4, cond_or_uncond=[1, 0])  # calc_cond_batch order: uncond chunk, then cond chunk
    ref = FakeBlock(False)(args)["img"]
    with_un = flux_block_patches(model, ids, 1.0, 1.0, 0.2, N_DOUBLE, N_SINGLE, uncond_tokens=zero)
    out = with_un[("double_block", 0)](args, {"original_block": FakeBlock(False)})["img"]
    torch.testing.assert_close(out[:2], ref[:2] + model.ca[0](zero.expand(2, -1, -1), ref[:2]))
    torch.testing.assert_close(out[2:], ref[2:] + model.ca[0](ids.expand(2, -1, -1), ref[2:]))
    plain = _patches(model, ids, weight=1.0)[("double_block", 0)](args, {"original_block": FakeBlock(False)})["img"]
    torch.testing.assert_close(plain, ref + model.ca[0](ids.expand(4, -1, -1), ref))  # default: today's behaviour
    cond_only = _double_args(batch=4, cond_or_uncond=[0])
    out_c = with_un[("double_block", 0)](cond_only, {"original_block": FakeBlock(False)})["img"]
    ref_c = FakeBlock(False)(cond_only)["img"]
    torch.testing.assert_close(out_c, ref_c + model.ca[0](ids.expand(4, -1, -1), ref_c))
