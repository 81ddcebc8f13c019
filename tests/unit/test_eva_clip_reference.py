"""The package's EVA tower (timm underneath) against an independent plain-torch EVA02-CLIP forward.

The reference below is written from the architecture facts, not from timm. Sources of each fact:
  [R] tests/reference/README.md (EVA part) and eva02_clip_l_336_visual.keys.tsv (key layout).
  [E] EVA-CLIP, baaivision/EVA ``EVA-CLIP/rei/eva_clip/eva_vit_model.py`` and ``rope.py`` (MIT), also vendored
      unchanged in ToTheBeginning/PuLID ``eva_clip/`` (Apache-2.0):
      - Attention (subln=True): q = x W_q + q_bias, k = x W_k (no bias), v = x W_v + v_bias; rope on tokens 1:
        only (``q[:, :, 1:, :]``), the class token is not rotated; softmax(q*scale k^T) v; inner_attn_ln; proj.
      - SwiGLU (naiveswiglu, subln): w3(ffn_ln(silu(w1 x) * w2 x)).
      - Block (no layer scale, pre-norm): x + attn(norm1 x); x + mlp(norm2 x).
      - LayerNorm eps 1e-6 everywhere (factory: ``partial(LayerNorm, eps=1e-6)``).
      - Head: use_mean_pooling=False -> norm(x)[:, 0] -> head.
      - VisionRotaryEmbeddingFast(dim=head_dim/2, pt_seq_len=16, ft_seq_len=grid): inv_freq =
        theta^(-arange(0, d, 2)/d), theta 10000, positions t = arange(grid)/grid*16 (pt grid 16 interpolated to
        the fine grid), each frequency repeated for an interleaved pair (x0, x1) -> (-x1, x0) rotation; the first
        head_dim/2 channels rotate with the patch row, the rest with the column.
  [P] PuLID's patched forward_features: collects x BEFORE block idx when ``0 < idx <= 20 and idx % 4 == 0``.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from likeness import eva_clip
from likeness.eva_clip.model import expected_shapes, official_to_timm_key

TINY = eva_clip.EvaClipConfig(image_size=56, patch_size=14, width=64, depth=6, heads=4, mlp_hidden=170, out_dim=32)


def random_official_sd(cfg: eva_clip.EvaClipConfig, seed: int = 0, rope: bool = True) -> dict[str, torch.Tensor]:
    """Random weights in the official key layout, large enough that every term moves the output."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, shape in expected_shapes(cfg).items():
        if k.endswith(("rope.freqs_cos", "rope.freqs_sin")):
            continue
        if k.endswith(("norm1.weight", "norm2.weight", "ln.weight", "norm.weight")):
            t = 1.0 + 0.2 * torch.randn(shape, generator=g)
        elif len(shape) >= 2 and k not in ("pos_embed", "cls_token"):
            t = torch.randn(shape, generator=g) / math.sqrt(shape[1] * (shape[2] * shape[3] if len(shape) == 4 else 1))
        else:
            t = 0.3 * torch.randn(shape, generator=g)
        sd[k] = t
    if rope:
        cos, sin = reference_rope_tables(cfg.grid, cfg.head_dim)
        sd["rope.freqs_cos"], sd["rope.freqs_sin"] = cos, sin
        for i in range(cfg.depth):
            sd[f"blocks.{i}.attn.rope.freqs_cos"], sd[f"blocks.{i}.attn.rope.freqs_sin"] = cos.clone(), sin.clone()
    return sd


def reference_angles(grid: int, head_dim: int, pt: float = 16.0, theta: float = 10000.0) -> torch.Tensor:
    """(grid*grid, head_dim//2) rotation angle per patch and per channel pair, written pair by pair [E]."""
    quarter = head_dim // 4  # pairs per axis
    ang = torch.empty(grid * grid, head_dim // 2, dtype=torch.float64)
    for r in range(grid):
        for c in range(grid):
            for j in range(head_dim // 2):
                axis_pos = r if j < quarter else c
                m = j % quarter
                ang[r * grid + c, j] = (axis_pos / grid * pt) * theta ** (-(2 * m) / (head_dim // 2))
    return ang


def reference_rope_tables(grid: int, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """EVA stores cos/sin per channel, each pair's angle repeated twice (interleaved) [E]."""
    ang = reference_angles(grid, head_dim).repeat_interleave(2, dim=-1)
    return ang.cos().float(), ang.sin().float()


def apply_rope_complex(t: torch.Tensor, ang: torch.Tensor, halves: bool = False) -> torch.Tensor:
    """Rotate channel pairs as complex numbers: (x0 + i x1) * e^{i angle}."""
    if halves:  # the wrong, half-split layout, for the negative control
        a, b = t.chunk(2, dim=-1)
        t = torch.stack([a, b], dim=-1).flatten(-2)
    z = torch.view_as_complex(t.double().reshape(*t.shape[:-1], -1, 2).contiguous())
    out = torch.view_as_real(z * torch.polar(torch.ones_like(ang), ang)).flatten(-2)
    if halves:
        out = torch.cat([out[..., 0::2], out[..., 1::2]], dim=-1)
    return out.to(t.dtype)


def reference_forward(sd, cfg, x, *, mutation: str | None = None):
    """Plain-torch EVA02-CLIP visual forward from the official keys; returns (embedding, tapped states)."""
    W, nh = cfg.width, cfg.heads
    hd = W // nh
    ln = lambda t, p: F.layer_norm(t, (t.shape[-1],), sd[p + ".weight"], sd[p + ".bias"], eps=1e-6)  # noqa: E731
    B = x.shape[0]
    h = F.conv2d(x, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=cfg.patch_size)
    h = h.flatten(2).transpose(1, 2)  # row-major patches
    h = torch.cat([sd["cls_token"].expand(B, -1, -1), h], dim=1) + sd["pos_embed"]
    pt = cfg.grid if mutation == "no_interpolation" else 16.0
    ang = reference_angles(cfg.grid, hd, pt=pt)
    taps = [4, 8, 12, 16, 20] if cfg.depth == 24 else [k * cfg.depth // 6 for k in range(1, 6)]
    if mutation == "tap_outputs":
        taps = [t + 1 for t in taps]
    hidden = []
    for i in range(cfg.depth):
        if i in taps:
            hidden.append(h)
        b = f"blocks.{i}."
        y = ln(h, b + "norm1")
        q = F.linear(y, sd[b + "attn.q_proj.weight"], sd[b + "attn.q_bias"])
        k = F.linear(y, sd[b + "attn.k_proj.weight"])
        v = F.linear(y, sd[b + "attn.v_proj.weight"], sd[b + "attn.v_bias"])
        q, k, v = (t.reshape(B, -1, nh, hd).transpose(1, 2) for t in (q, k, v))
        if mutation == "rope_on_cls":
            # the off-by-one of rotating all tokens: the cls token takes patch 0's angle, each patch the next's
            full = torch.cat([ang, torch.zeros(1, hd // 2, dtype=ang.dtype)])
            q, k = apply_rope_complex(q, full), apply_rope_complex(k, full)
        else:
            halves = mutation == "rope_halves"
            q = torch.cat([q[:, :, :1], apply_rope_complex(q[:, :, 1:], ang, halves)], dim=2)
            k = torch.cat([k[:, :, :1], apply_rope_complex(k[:, :, 1:], ang, halves)], dim=2)
        att = ((q * hd ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        a = (att @ v).transpose(1, 2).reshape(B, -1, W)
        h = h + F.linear(ln(a, b + "attn.inner_attn_ln"), sd[b + "attn.proj.weight"], sd[b + "attn.proj.bias"])
        y = ln(h, b + "norm2")
        gate = F.linear(y, sd[b + "mlp.w1.weight"], sd[b + "mlp.w1.bias"])
        lin = F.linear(y, sd[b + "mlp.w2.weight"], sd[b + "mlp.w2.bias"])
        if mutation == "swiglu_swapped":
            gate, lin = lin, gate
        m = ln(F.silu(gate) * lin, b + "mlp.ffn_ln")
        h = h + F.linear(m, sd[b + "mlp.w3.weight"], sd[b + "mlp.w3.bias"])
    emb = F.linear(ln(h, "norm")[:, 0], sd["head.weight"], sd["head.bias"])
    return emb, hidden


@pytest.fixture(scope="module")
def tiny():
    sd = random_official_sd(TINY, seed=1)
    model = eva_clip.load_eva_clip({"visual." + k: v for k, v in sd.items()})
    x = torch.randn(2, 3, TINY.image_size, TINY.image_size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        got = model(x)
    return sd, model, x, got


def _max_err(a, b):
    emb_a, hid_a = a
    emb_b, hid_b = b
    return max([(emb_a - emb_b).abs().max().item()] + [(p - q).abs().max().item() for p, q in zip(hid_a, hid_b)])


def test_tiny_config_detected(tiny):
    _, model, _, _ = tiny
    assert model.config == TINY  # heads 4 read from the rope tables' head dim (16), not width // 64
    assert model.config.tap_blocks == (1, 2, 3, 4, 5)
    assert eva_clip.OFFICIAL_L336.tap_blocks == (4, 8, 12, 16, 20)  # [P]


def test_package_matches_independent_reference(tiny):
    sd, _, x, got = tiny
    emb, hidden = got
    assert emb.shape == (2, TINY.out_dim)
    assert len(hidden) == 5 and all(h.shape == (2, 1 + TINY.num_patches, TINY.width) for h in hidden)
    with torch.no_grad():
        ref = reference_forward(sd, TINY, x)
    scale = max(ref[0].abs().max().item(), max(h.abs().max().item() for h in ref[1]))
    assert scale > 1.0  # the weights are not so small that everything collapses to ~0
    torch.testing.assert_close(emb, ref[0], atol=1e-5, rtol=1e-5)
    for i, (h, r) in enumerate(zip(hidden, ref[1])):
        torch.testing.assert_close(h, r, atol=1e-5, rtol=1e-5, msg=lambda m, i=i: f"hidden state {i}: {m}")


@pytest.mark.parametrize("mutation", ["rope_halves", "rope_on_cls", "no_interpolation", "tap_outputs",
                                      "swiglu_swapped"])
def test_reference_comparison_detects_each_detail(tiny, mutation):
    """Each pinned-down detail matters: a reference that gets it wrong no longer matches."""
    sd, _, x, got = tiny
    with torch.no_grad():
        wrong = reference_forward(sd, TINY, x, mutation=mutation)
    assert _max_err(got, wrong) > 1e-3


def test_rope_tables_match_reference_and_timm(tiny):
    _, model, _, _ = tiny
    cos, sin = eva_clip.rope_tables(TINY)
    rcos, rsin = reference_rope_tables(TINY.grid, TINY.head_dim)
    torch.testing.assert_close(cos, rcos, atol=1e-6, rtol=0)
    torch.testing.assert_close(sin, rsin, atol=1e-6, rtol=0)
    tsin, tcos = model.trunk.rope.get_embed().chunk(2, dim=-1)  # timm: cat([sin, cos]), interleaved layout
    torch.testing.assert_close(tcos.float(), cos, atol=1e-6, rtol=0)
    torch.testing.assert_close(tsin.float(), sin, atol=1e-6, rtol=0)


def test_official_layout_rope_tables_full_size():
    """At 336 px the table is 576 x 64 and interpolates the 16-grid onto 24 positions [R][E]."""
    cos, sin = eva_clip.rope_tables(eva_clip.OFFICIAL_L336)
    rcos, rsin = reference_rope_tables(24, 64)
    assert cos.shape == (576, 64)
    torch.testing.assert_close(cos, rcos, atol=1e-5, rtol=0)
    torch.testing.assert_close(sin, rsin, atol=1e-5, rtol=0)


def test_key_renames_agree_with_timm_checkpoint_filter_fn():
    """Our rename table and timm's checkpoint_filter_fn map the full official manifest identically."""
    import timm
    from timm.models.eva import checkpoint_filter_fn

    cfg = eva_clip.OFFICIAL_L336
    sd = {"visual." + k: torch.empty(s, device="meta") for k, s in expected_shapes(cfg).items()}
    model = timm.create_model("eva02_large_patch14_clip_336", pretrained=False, num_classes=768, device="meta")
    filtered = checkpoint_filter_fn(sd, model)
    ours = {official_to_timm_key(k): tuple(s) for k, s in expected_shapes(cfg).items() if "rope." not in k}
    assert {k: tuple(v.shape) for k, v in filtered.items()} == ours
    assert ours == {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_timm_forward_intermediates_claim(tiny):
    """The note's claim: forward_intermediates(indices=[b-1 ...], prefix tokens put back) == PuLID's taps."""
    sd, model, x, _ = tiny
    with torch.no_grad():
        ref = reference_forward(sd, TINY, x)
        final, inter = model.trunk.forward_intermediates(
            x, indices=[b - 1 for b in TINY.tap_blocks], return_prefix_tokens=True, output_fmt="NLC", norm=False)
    for (patches, prefix), r in zip(inter, ref[1]):
        torch.testing.assert_close(torch.cat([prefix, patches], 1), r, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.trunk.forward_head(final), ref[0], atol=1e-5, rtol=1e-5)
