"""Kontext-aware injection on ComfyUI's own Flux class: reference-latent tokens get no PuLID residual.

The tiny Flux is comfy.ldm.flux.model.Flux from the pinned ComfyUI (LIKENESS_COMFYUI), called through its public
``forward`` with ``ref_latents`` exactly as core ReferenceLatent feeds it, with our block patches in
``patches_replace["dit"]`` and our wrapper in ``wrappers["diffusion_model"]``. A recording patch around each PuLID
patch keeps the real block's output, so the residual PuLID added is measured, not assumed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch
from configs import UNIT_PULID, seeded_unit_pulid
from likeness.pulid import flux_block_patches, generated_span, image_token_count, image_token_wrapper, token_grid_probe

N_DOUBLE, N_SINGLE, TXT = 5, 9, 6
WEIGHT = 0.8


@pytest.fixture(scope="module")
def flux_cls():
    root = os.environ.get("LIKENESS_COMFYUI") or str(Path.home() / ".cache/likeness/comfyui-0.3.75")
    if not Path(root, "comfy").is_dir():
        pytest.fail(f"pinned ComfyUI not found at {root}: set LIKENESS_COMFYUI")
    added = root not in sys.path
    if added:
        sys.path.append(root)
    import comfy.cli_args

    comfy.cli_args.args.cpu = True  # as the test server runs; read when comfy.model_management is imported
    import comfy.ldm.flux.model
    import comfy.ops

    yield comfy.ldm.flux.model.Flux, comfy.ops.disable_weight_init
    if added:  # later tests that spawn processes must not find ComfyUI's folder_paths (the pack would register)
        sys.path.remove(root)


def _tiny_flux(flux_cls):
    cls, ops = flux_cls
    model = cls(
        in_channels=16, out_channels=16, vec_in_dim=32, context_in_dim=40, hidden_size=UNIT_PULID.flux_dim,
        mlp_ratio=2.0, num_heads=2, depth=N_DOUBLE, depth_single_blocks=N_SINGLE, axes_dim=[16, 16, 16],
        theta=10000, patch_size=2, qkv_bias=True, guidance_embed=True, operations=ops,
    )  # fmt: skip
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in sorted(model.state_dict(keep_vars=True).items()):
            base = 1.0 if name.endswith(".scale") else 0.0
            t.copy_(base + 0.05 * torch.randn(t.shape, generator=gen))
    return model.eval()


class Recorder:
    """Wraps one PuLID patch; stores (block output, PuLID output) of the last call."""

    def __init__(self, inner):
        self.inner = inner
        self.seen = None

    def __call__(self, args, extra):
        kept = {}

        def original(a):
            kept["out"] = extra["original_block"](a)
            return kept["out"]

        out = self.inner(args, {**extra, "original_block": original})
        self.seen = (kept["out"]["img"].clone(), out["img"].clone())
        return out


def _run(flux_cls, refs, with_wrapper=True, h=8, w=8, mask=None):
    torch.manual_seed(1)
    model = _tiny_flux(flux_cls)
    pulid = seeded_unit_pulid(0).requires_grad_(False)
    ids = torch.randn(1, UNIT_PULID.num_queries, UNIT_PULID.id_token_dim, generator=torch.Generator().manual_seed(3))
    patches = flux_block_patches(pulid, ids, WEIGHT, 1e9, -1.0, N_DOUBLE, N_SINGLE, mask=mask)
    recorders = {k: Recorder(p) for k, p in patches.items()}
    opts = {"patches_replace": {"dit": recorders}, "sigmas": torch.tensor([0.5])}
    if mask is not None:  # as Apply PuLID-Flux installs it: a post_input patch reads the token grid
        opts["patches"] = {"post_input": [token_grid_probe(patches)]}
    if with_wrapper:
        opts["wrappers"] = {"diffusion_model": {"likeness_pulid": [image_token_wrapper(patches)]}}
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, 16, h, w, generator=g)
    ctx, y = torch.randn(1, TXT, 40, generator=g), torch.randn(1, 32, generator=g)
    ref_latents = [torch.randn(1, 16, *r, generator=g) for r in refs] or None
    with torch.no_grad():
        out = model(x, torch.tensor([0.5]), ctx, y=y, guidance=torch.tensor([3.5]), ref_latents=ref_latents,
                    transformer_options=opts)  # fmt: skip
    return out, recorders, pulid, ids, image_token_count(x.shape, 2)


@pytest.mark.parametrize("refs", [[(8, 8)], [(8, 8), (6, 10)], [(9, 7)]])
def test_reference_tokens_get_exactly_zero_residual(flux_cls, refs):
    _, recorders, pulid, ids, n_img = _run(flux_cls, refs)
    n_ref = sum(image_token_count(r, 2) for r in refs)
    for key, rec in recorders.items():
        block_out, pulid_out = rec.seen
        start = 0 if key[0] == "double_block" else TXT
        assert block_out.shape[1] == start + n_img + n_ref, key
        delta = pulid_out - block_out
        assert torch.count_nonzero(delta[:, start + n_img :]) == 0, f"{key}: reference tokens changed"
        assert torch.count_nonzero(delta[:, :start]) == 0, f"{key}: text tokens changed"
        ca = pulid.ca[patch_ca(recorders, key)]
        want = WEIGHT * ca(ids, block_out[:, start : start + n_img])
        torch.testing.assert_close(delta[:, start : start + n_img], want, rtol=1e-5, atol=1e-6)
        assert torch.count_nonzero(delta[:, start : start + n_img]) > 0


def patch_ca(recorders, key):
    return recorders[key].inner.ca_index


def test_image_tokens_residual_equals_the_non_kontext_case(flux_cls):
    """The same block output with and without reference tokens gets the same residual on the image tokens."""
    _, recorders, pulid, ids, n_img = _run(flux_cls, [(8, 8)])
    for key, rec in recorders.items():
        block_out, pulid_out = rec.seen
        start = 0 if key[0] == "double_block" else TXT
        alone = block_out[:, : start + n_img]  # the sequence a plain (non-Kontext) forward would have
        inner = rec.inner
        inner.injection.image_tokens = None  # no wrapper: plain Flux, every image token is generated
        plain = inner(
            {"img": alone, "txt": torch.zeros(1, TXT, 1), "transformer_options": {"sigmas": torch.tensor([0.5])}},
            {"original_block": lambda a, alone=alone: {"img": alone, "txt": a["txt"]}},
        )["img"]
        torch.testing.assert_close(pulid_out[:, : start + n_img], plain, rtol=1e-5, atol=1e-6)


def test_without_the_wrapper_the_references_would_be_changed(flux_cls):
    """Guards the test itself: the old behaviour (no token count) does alter the reference tokens."""
    _, recorders, _, _, n_img = _run(flux_cls, [(8, 8)], with_wrapper=False)
    block_out, pulid_out = recorders[("double_block", 0)].seen
    assert torch.count_nonzero((pulid_out - block_out)[:, n_img:]) > 0


def test_no_references_is_unchanged_by_the_wrapper(flux_cls):
    a, _, _, _, _ = _run(flux_cls, [], with_wrapper=True)
    b, _, _, _, _ = _run(flux_cls, [], with_wrapper=False)
    assert torch.equal(a, b)


def test_count_is_cleared_after_the_forward(flux_cls):
    _, recorders, _, _, _ = _run(flux_cls, [(8, 8)])
    assert next(iter(recorders.values())).inner.injection.image_tokens is None


def test_generated_span_rules():
    assert generated_span("double_block", 30, 6, 16, {}) == (0, 16)
    assert generated_span("single_block", 36, 6, 16, {}) == (6, 22)
    assert generated_span("single_block", 36, None, 16, {"img_slice": [6, 36]}) == (6, 22)
    assert generated_span("single_block", 36, 6, None, {}) == (6, 36)
    assert generated_span("double_block", 30, 6, None, {}) == (0, 30)
    assert image_token_count((1, 16, 9, 7), 2) == 5 * 4  # ComfyUI pads odd sizes up to the patch
    with pytest.raises(RuntimeError, match="double block"):
        generated_span("single_block", 36, None, 16, {})


@pytest.mark.parametrize("refs", [[(8, 8)], [(6, 10), (8, 8)]])
def test_the_region_mask_composes_with_kontext(flux_cls, refs):
    """A left-half mask with reference latents: references and the right half get exactly zero residual, the left
    half of the generated image gets the full residual (token grid 4x4 of an 8x8 latent)."""
    mask = torch.zeros(1, 64, 64)
    mask[:, :, :32] = 1.0
    _, recorders, pulid, ids, n_img = _run(flux_cls, refs, mask=mask)
    left = torch.zeros(4, 4, dtype=torch.bool)
    left[:, :2] = True
    left = left.flatten()
    for key, rec in recorders.items():
        block_out, pulid_out = rec.seen
        start = 0 if key[0] == "double_block" else TXT
        delta = pulid_out - block_out
        assert torch.count_nonzero(delta[:, start + n_img :]) == 0, f"{key}: reference tokens changed"
        assert torch.count_nonzero(delta[:, :start]) == 0, f"{key}: text tokens changed"
        img_delta = delta[:, start : start + n_img]
        assert torch.count_nonzero(img_delta[:, ~left]) == 0, f"{key}: tokens outside the mask changed"
        want = WEIGHT * pulid.ca[patch_ca(recorders, key)](ids, block_out[:, start : start + n_img])
        torch.testing.assert_close(img_delta[:, left], want[:, left], rtol=1e-5, atol=1e-6)
        assert torch.count_nonzero(img_delta[:, left]) > 0
