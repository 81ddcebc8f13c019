"""PuLID-Flux modules: exact parameter layout and numerics against an independent reference written here."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from configs import UNIT_PULID, read_manifest
from likeness import pulid
from likeness.pulid import PerceiverAttentionCA, PulidFluxConfig, build_pulid_flux, id_cond_from
from likeness.pulid.model import PerceiverAttention

TINY = UNIT_PULID  # shared tiny config, see tests/configs.py




def _manifest() -> dict[str, tuple[int, ...]]:
    return read_manifest("pulid_flux_v0.9.x.keys.tsv")


def _randomize(module: torch.nn.Module, seed: int = 0) -> None:
    """Non-default values everywhere (LayerNorm weights too) so a wrong wiring cannot hide behind ones/zeros."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() == 1:
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[-1]))


# ------------------------------------------------------------------------- independent reference


def _ref_attention(q_in, kv_in, w_q, w_kv, w_out, heads):
    """softmax(Q K^T / sqrt(d)) V per head, with explicit loops over heads; k first, v second in to_kv."""
    inner = w_q.shape[0]
    d = inner // heads
    q = q_in @ w_q.T
    kv = kv_in @ w_kv.T
    k, v = kv[..., :inner], kv[..., inner:]
    outs = []
    for h in range(heads):
        sl = slice(h * d, (h + 1) * d)
        logits = q[..., sl] @ k[..., sl].transpose(-1, -2) / math.sqrt(d)
        outs.append(torch.softmax(logits, dim=-1) @ v[..., sl])
    return torch.cat(outs, dim=-1) @ w_out.T


def _ln(x, sd, prefix):
    return F.layer_norm(x, (x.shape[-1],), sd[prefix + ".weight"], sd[prefix + ".bias"], eps=1e-5)


def _ref_perceiver(sd, p, context, latents, heads):
    context = _ln(context, sd, p + ".norm1")
    latents = _ln(latents, sd, p + ".norm2")
    kv_in = torch.cat([context, latents], dim=1)
    return _ref_attention(
        latents, kv_in, sd[p + ".to_q.weight"], sd[p + ".to_kv.weight"], sd[p + ".to_out.weight"], heads
    )


def _ref_ca(sd, p, id_tokens, img, heads):
    x = _ln(id_tokens, sd, p + ".norm1")
    lat = _ln(img, sd, p + ".norm2")
    return _ref_attention(lat, x, sd[p + ".to_q.weight"], sd[p + ".to_kv.weight"], sd[p + ".to_out.weight"], heads)


def _ref_mlp(sd, p, x):
    for lin, norm in ((0, 1), (3, 4)):
        x = F.linear(x, sd[f"{p}.{lin}.weight"], sd[f"{p}.{lin}.bias"])
        x = F.leaky_relu(_ln(x, sd, f"{p}.{norm}"), 0.01)
    return F.linear(x, sd[f"{p}.6.weight"], sd[f"{p}.6.bias"])


def _ref_idformer(sd, cfg: PulidFluxConfig, id_cond, hidden):
    """The encoder read straight off the file's key names, so it shares no code with pulid.model."""
    b = id_cond.shape[0]
    ids = _ref_mlp(sd, "id_embedding_mapping", id_cond).reshape(b, cfg.num_id_tokens, cfg.encoder_dim)
    latents = torch.cat([sd["latents"].repeat(b, 1, 1), ids], dim=1)
    per = cfg.encoder_depth // cfg.num_scales
    for s in range(cfg.num_scales):
        ctx = torch.cat([ids, _ref_mlp(sd, f"mapping_{s}", hidden[s])], dim=1)
        for layer in range(s * per, (s + 1) * per):
            latents = latents + _ref_perceiver(sd, f"layers.{layer}.0", ctx, latents, cfg.encoder_heads)
            h = _ln(latents, sd, f"layers.{layer}.1.0")
            h = F.gelu(h @ sd[f"layers.{layer}.1.1.weight"].T) @ sd[f"layers.{layer}.1.3.weight"].T
            latents = latents + h
    return latents[:, : cfg.num_queries] @ sd["proj_out"]


# ------------------------------------------------------------------------- tests


def test_official_layout_equals_manifest_exactly():
    model = build_pulid_flux(PulidFluxConfig.official(), device="meta")
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == _manifest()
    enc = sum(v.numel() for k, v in model.state_dict().items() if k.startswith("pulid_encoder."))
    assert enc == 151_398_400
    assert sum(p.numel() for p in model.ca[0].parameters()) == 20_981_760
    assert sum(p.numel() for p in model.parameters()) == 571_033_600


def test_full_size_forward_shapes_on_meta():
    model = build_pulid_flux(device="meta")
    ids = model.encoder(torch.empty(2, 1280, device="meta"), [torch.empty(2, 577, 1024, device="meta")] * 5)
    assert ids.shape == (2, 32, 2048)
    assert model.ca[19](ids, torch.empty(2, 4096, 3072, device="meta")).shape == (2, 4096, 3072)


def test_ca_matches_reference_formula():
    torch.manual_seed(1)
    ca = PerceiverAttentionCA(dim=96, dim_head=16, heads=4, kv_dim=48)
    _randomize(ca, 3)
    ids, img = torch.randn(2, 8, 48), torch.randn(2, 11, 96)
    got = ca(ids, img)
    sd = {"p." + k: v for k, v in ca.state_dict().items()}
    want = _ref_ca(sd, "p", ids, img, heads=4)
    assert got.shape == (2, 11, 96)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_encoder_attention_matches_reference_formula():
    torch.manual_seed(2)
    attn = PerceiverAttention(dim=64, dim_head=16, heads=4)
    _randomize(attn, 4)
    ctx, lat = torch.randn(3, 7, 64), torch.randn(3, 5, 64)
    sd = {"a." + k: v for k, v in attn.state_dict().items()}
    torch.testing.assert_close(attn(ctx, lat), _ref_perceiver(sd, "a", ctx, lat, heads=4), rtol=1e-5, atol=1e-5)


def test_head_split_matters():
    """Guards the reference itself: a different head count must give a different result."""
    torch.manual_seed(5)
    ca = PerceiverAttentionCA(dim=96, dim_head=16, heads=4, kv_dim=48)
    _randomize(ca, 5)
    ids, img = torch.randn(1, 8, 48), torch.randn(1, 6, 96)
    sd = {"p." + k: v for k, v in ca.state_dict().items()}
    assert not torch.allclose(ca(ids, img), _ref_ca(sd, "p", ids, img, heads=2), atol=1e-4)


def test_idformer_matches_reference():
    model = build_pulid_flux(TINY)
    _randomize(model, 6)
    torch.manual_seed(7)
    id_cond = torch.randn(2, TINY.id_cond_dim)
    hidden = [torch.randn(2, 9, TINY.vit_dim) for _ in range(TINY.num_scales)]
    got = model.encoder(id_cond, hidden)
    assert got.shape == (2, TINY.num_queries, TINY.id_token_dim)
    sd = model.encoder.state_dict()
    torch.testing.assert_close(got, _ref_idformer(sd, TINY, id_cond, hidden), rtol=1e-4, atol=1e-5)
    # each hidden state feeds its own group: changing the last one must change the output
    hidden2 = hidden[:-1] + [hidden[-1] + 1.0]
    assert not torch.allclose(model.encoder(id_cond, hidden2), got)


def test_encoder_is_per_sample():
    model = build_pulid_flux(TINY)
    _randomize(model, 8)
    id_cond = torch.randn(2, TINY.id_cond_dim)
    hidden = [torch.randn(2, 9, TINY.vit_dim) for _ in range(TINY.num_scales)]
    both = model.encoder(id_cond, hidden)
    one = model.encoder(id_cond[1:], [h[1:] for h in hidden])
    torch.testing.assert_close(both[1:], one, rtol=1e-4, atol=1e-5)


def test_encoder_rejects_wrong_number_of_hidden_states():
    model = build_pulid_flux(TINY)
    with pytest.raises(ValueError, match="2 EVA hidden states"):
        model.encoder(torch.randn(1, TINY.id_cond_dim), [torch.randn(1, 9, TINY.vit_dim)])


def test_bf16_ca_close_to_fp32():
    ca = PerceiverAttentionCA(dim=96, dim_head=16, heads=4, kv_dim=48)
    _randomize(ca, 9)
    ids, img = torch.randn(2, 8, 48), torch.randn(2, 11, 96)
    want = ca(ids, img)
    got = ca.to(torch.bfloat16)(ids.bfloat16(), img.bfloat16())
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), want, rtol=0.05, atol=0.05)


def test_id_cond_from_normalises_only_eva():
    arc, eva = torch.randn(2, 512) * 20, torch.randn(2, 768) * 3
    cond = id_cond_from(arc, eva)
    assert cond.shape == (2, 1280)
    assert torch.equal(cond[:, :512], arc)
    torch.testing.assert_close(cond[:, 512:].norm(dim=1), torch.ones(2))
    torch.testing.assert_close(cond[:, 512:] * eva.norm(dim=1, keepdim=True), eva)
    assert id_cond_from(arc[0], eva[0]).shape == (1, 1280)


def test_config_validation():
    with pytest.raises(ValueError, match="multiple"):
        build_pulid_flux(replace(TINY, encoder_depth=5))
    with pytest.raises(ValueError, match="positive"):
        PulidFluxConfig(num_ca=0).validate()
    assert PulidFluxConfig.official() == PulidFluxConfig()
    assert pulid.PulidFlux is type(build_pulid_flux(TINY, device="meta"))
