"""eva_clip loading contract: the official manifest, strictness, files (good and bad), preprocessing."""

from __future__ import annotations

import pickle
import sys
import time
from pathlib import Path

import pytest
import torch
from likeness import eva_clip
from likeness.eva_clip.model import expected_shapes

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling module, whatever pytest's import mode
import configs  # noqa: E402  (tests/configs.py: the one manifest reader)
from test_eva_clip_reference import TINY, random_official_sd  # noqa: E402


def read_manifest() -> dict[str, tuple[int, ...]]:
    return configs.read_manifest("eva02_clip_l_336_visual.keys.tsv")


def meta_sd(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    return {k: torch.empty(s, device="meta") for k, s in shapes.items()}


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    pytest.skip("no /proc/self/status")


def tiny_outputs(model, seed=5):
    x = torch.randn(1, 3, model.image_size, model.image_size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model(x)


def assert_same_outputs(a, b):
    torch.testing.assert_close(a[0], b[0], atol=0, rtol=0)
    assert len(a[1]) == len(b[1]) == 5
    for x, y in zip(a[1], b[1]):
        torch.testing.assert_close(x, y, atol=0, rtol=0)


# --- the full-size manifest ------------------------------------------------------------------------------------

def test_manifest_is_the_official_layout():
    man = read_manifest()
    assert len(man) == 562
    assert man == {"visual." + k: v for k, v in expected_shapes(eva_clip.OFFICIAL_L336).items()}


def test_manifest_loads_strictly_on_meta_with_official_config():
    man = read_manifest()
    model = eva_clip.load_eva_clip(meta_sd(man), device="meta")
    assert model.config == eva_clip.OFFICIAL_L336
    c = model.config
    assert (c.image_size, c.patch_size, c.depth, c.width, c.heads, c.mlp_hidden, c.out_dim) == (
        336, 14, 24, 1024, 16, 2730, 768)
    assert c.tap_blocks == (4, 8, 12, 16, 20)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == sum(torch.Size(s).numel() for k, s in man.items() if "rope." not in k)


def test_manifest_without_rope_rows_still_loads():
    man = {k: s for k, s in read_manifest().items() if "rope.freqs" not in k}
    assert len(man) == 562 - 50
    model = eva_clip.load_eva_clip(meta_sd(man), device="meta")
    assert model.config == eva_clip.OFFICIAL_L336  # heads from the EVA convention width // 64


def test_full_size_loads_on_cpu_without_allocating_the_weights():
    """Zero-stride zero tensors stand in for 1.2 GB of weights: building on meta must not allocate them either."""
    man = read_manifest()
    cos, sin = eva_clip.rope_tables(eva_clip.OFFICIAL_L336)
    zero = torch.zeros(())
    sd = {k: (cos if k.endswith("cos") else sin) if "rope.freqs" in k else zero.expand(s) for k, s in man.items()}
    weight_bytes = 4 * sum(torch.Size(s).numel() for k, s in man.items() if "rope." not in k)
    before = rss_bytes()
    t0 = time.perf_counter()
    model = eva_clip.load_eva_clip(sd)
    seconds = time.perf_counter() - t0
    grown = rss_bytes() - before
    assert weight_bytes > 1.2e9
    assert grown < 150e6, f"loading grew RSS by {grown / 1e6:.0f} MB (weights are {weight_bytes / 1e9:.2f} GB)"
    assert seconds < 20
    assert not any(p.is_meta for p in model.parameters()) and not any(b.is_meta for b in model.buffers())
    # the rope table timm computed for the trunk is the one the official file stores
    tsin, tcos = model.trunk.rope.get_embed().chunk(2, dim=-1)
    torch.testing.assert_close(tcos, cos, atol=1e-6, rtol=0)
    torch.testing.assert_close(tsin, sin, atol=1e-6, rtol=0)


@pytest.mark.parametrize("edit, key", [
    ("missing", "visual.blocks.7.attn.k_proj.weight"),
    ("extra", "visual.blocks.3.attn.k_bias"),
    ("misshapen", "visual.blocks.11.mlp.w3.weight"),
    ("misshapen", "visual.blocks.0.mlp.w1.weight"),  # the block the config is read from: still one key reported
    ("misshapen", "visual.blocks.0.attn.rope.freqs_cos"),
])
def test_manifest_edits_are_refused_naming_the_key(edit, key):
    man = read_manifest()
    if edit == "missing":
        del man[key]
    elif edit == "extra":
        man[key] = (1024,)
    else:
        man[key] = tuple(s + 1 for s in man[key])
    with pytest.raises(eva_clip.EvaClipCheckpointError) as e:
        eva_clip.load_eva_clip(meta_sd(man), device="meta")
    assert key.removeprefix("visual.") in str(e.value)
    assert {"missing": "1 missing keys", "extra": "1 unexpected keys", "misshapen": "1 misshapen keys"}[edit] in str(
        e.value)


def test_missing_last_block_changes_depth_and_is_refused():
    man = {k: s for k, s in read_manifest().items() if not k.startswith("visual.blocks.23.")}
    model = eva_clip.load_eva_clip(meta_sd(man), device="meta")  # a coherent 23-block tower is still a tower
    assert model.config.depth == 23
    del man["visual.blocks.22.norm1.weight"]
    with pytest.raises(eva_clip.EvaClipCheckpointError, match="blocks.22.norm1.weight"):
        eva_clip.load_eva_clip(meta_sd(man), device="meta")


def test_meta_state_dict_needs_meta_device():
    with pytest.raises(ValueError, match="meta"):
        eva_clip.load_eva_clip(meta_sd(read_manifest()))


# --- tiny towers: layouts, config detection, round trips -----------------------------------------------------

@pytest.fixture(scope="module")
def tiny_sd():
    return random_official_sd(TINY, seed=7)


@pytest.fixture(scope="module")
def tiny_ref(tiny_sd):
    return tiny_outputs(eva_clip.load_eva_clip({"visual." + k: v for k, v in tiny_sd.items()}))


def test_unprefixed_and_full_clip_layouts_load_identically(tiny_sd, tiny_ref):
    assert_same_outputs(tiny_outputs(eva_clip.load_eva_clip(dict(tiny_sd))), tiny_ref)
    full = {"visual." + k: v for k, v in tiny_sd.items()}
    full.update({"text.token_embedding.weight": torch.zeros(10, 8), "text.ln_final.weight": torch.ones(8),
                 "logit_scale": torch.tensor(4.6)})
    assert_same_outputs(tiny_outputs(eva_clip.load_eva_clip(full)), tiny_ref)


def test_heads_follow_eva_convention_without_rope_tables(tiny_sd, tiny_ref):
    no_rope = {k: v for k, v in tiny_sd.items() if "rope." not in k}
    assert eva_clip.detect_config(no_rope).heads == 1  # width 64 // 64
    model = eva_clip.load_eva_clip(no_rope, head_dim=16)
    assert model.config == TINY
    assert_same_outputs(tiny_outputs(model), tiny_ref)
    with pytest.raises(eva_clip.EvaClipCheckpointError, match="head_dim=32"):
        eva_clip.load_eva_clip(tiny_sd, head_dim=32)


def test_wrong_rope_table_values_are_refused(tiny_sd):
    bad = dict(tiny_sd)
    bad["blocks.2.attn.rope.freqs_sin"] = torch.zeros_like(bad["blocks.2.attn.rope.freqs_sin"])
    with pytest.raises(eva_clip.EvaClipCheckpointError, match="blocks.2.attn.rope.freqs_sin differs"):
        eva_clip.load_eva_clip(bad)


def test_half_precision_rope_copies_are_accepted(tiny_sd, tiny_ref):
    half = {k: v.half() for k, v in tiny_sd.items()}
    model = eva_clip.load_eva_clip(half, dtype=torch.float32)
    assert model.trunk.head.weight.dtype == torch.float32
    emb, hidden = tiny_outputs(model)
    torch.testing.assert_close(emb, tiny_ref[0], atol=0.05, rtol=0.05)


def test_open_clip_trunk_layout_is_converted(tiny_sd, tiny_ref):
    model = eva_clip.load_eva_clip(tiny_sd)
    trunk = {"visual.trunk." + k: v.clone() for k, v in model.trunk.state_dict().items()}
    trunk["text.positional_embedding"] = torch.zeros(4, 8)
    assert not any("w1" in k or "inner_attn_ln" in k for k in trunk)
    # open_clip files carry no rope tables, so the head count comes from the EVA convention (64)
    converted = eva_clip.load_eva_clip(trunk, head_dim=TINY.head_dim)
    assert_same_outputs(tiny_outputs(converted), tiny_ref)


def test_too_shallow_tower_is_refused():
    small = eva_clip.EvaClipConfig(image_size=28, patch_size=14, width=32, depth=5, heads=2, mlp_hidden=40, out_dim=8)
    with pytest.raises(eva_clip.EvaClipCheckpointError, match="5 blocks"):
        eva_clip.load_eva_clip(random_official_sd(small))


def test_forward_checks_input_size(tiny_sd):
    model = eva_clip.load_eva_clip(tiny_sd)
    with pytest.raises(ValueError, match="preprocess"):
        model(torch.zeros(1, 3, 64, 64))


def test_model_is_frozen_eval_and_honours_dtype(tiny_sd):
    model = eva_clip.load_eva_clip(tiny_sd, dtype=torch.bfloat16)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert model.trunk.blocks[0].mlp.fc1_g.weight.dtype == torch.bfloat16
    emb, hidden = tiny_outputs(model)  # float32 input is cast to the weights' dtype
    assert emb.dtype == torch.bfloat16 and torch.isfinite(emb.float()).all()


@pytest.mark.parametrize("suffix", [".safetensors", ".pt", ".pth", ".bin"])
def test_file_round_trip(tmp_path, tiny_sd, tiny_ref, suffix):
    sd = {"visual." + k: v.contiguous() for k, v in tiny_sd.items()}
    path = tmp_path / f"eva{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(sd, str(path))
    else:
        torch.save(sd, path)
    assert_same_outputs(tiny_outputs(eva_clip.load_eva_clip_file(path)), tiny_ref)


@pytest.mark.parametrize("wrapper", ["state_dict", "model"])
def test_nested_checkpoint_is_unwrapped(tmp_path, tiny_sd, tiny_ref, wrapper):
    path = tmp_path / "ckpt.pt"
    torch.save({"epoch": 3, wrapper: {"visual." + k: v for k, v in tiny_sd.items()}}, path)
    assert_same_outputs(tiny_outputs(eva_clip.load_eva_clip_file(path)), tiny_ref)


# --- wrong files -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_truncated_file(tmp_path, tiny_sd, suffix):
    path = tmp_path / f"eva{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in tiny_sd.items()}, str(path))
    else:
        torch.save(tiny_sd, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(eva_clip.EvaClipCheckpointError) as e:
        eva_clip.load_eva_clip_file(path)
    assert str(path) in str(e.value) and "download the file again" in str(e.value)


@pytest.mark.parametrize("keys, kind", [
    ({"visual.conv1.weight": (8, 3, 4, 4), "visual.class_embedding": (8,),
      "visual.transformer.resblocks.0.attn.in_proj_weight": (24, 8)}, "an OpenAI / open_clip CLIP ViT"),
    ({"vision_model.embeddings.patch_embedding.weight": (8, 3, 4, 4),
      "vision_model.post_layernorm.weight": (8,)}, "a Hugging Face CLIP / SigLIP model"),
    ({"conv.weight": (4, 3, 3, 3)}, "no EVA visual-tower keys"),
])
def test_unrelated_keys(tmp_path, keys, kind):
    path = tmp_path / "other.safetensors"
    from safetensors.torch import save_file

    save_file({k: torch.zeros(s) for k, s in keys.items()}, str(path))
    with pytest.raises(eva_clip.EvaClipCheckpointError) as e:
        eva_clip.load_eva_clip_file(path)
    msg = str(e.value)
    assert str(path) in msg and kind in msg
    assert "EVA02_CLIP_L_336_psz14_s6B.pt" in msg and "visual.blocks.N.attn.q_proj.weight" in msg
    assert sorted(keys)[0] in msg  # the found keys are named


class _Payload:
    """Unpickling this runs exec(): a stand-in for a malicious checkpoint."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


@pytest.mark.parametrize("fmt", ["torch_zip", "raw_pickle"])
def test_malicious_pickle_is_refused_without_running(tmp_path, fmt):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    if fmt == "torch_zip":
        torch.save({"visual.cls_token": torch.zeros(1, 1, 8), "x": _Payload(marker)}, path)
    else:
        path.write_bytes(pickle.dumps({"x": _Payload(marker)}, protocol=2))
    # the fixture really is malicious: an unsafe load runs it
    if fmt == "raw_pickle":
        pickle.loads(path.read_bytes())
    else:
        torch.load(path, weights_only=False)
    assert marker.exists()
    marker.unlink()

    with pytest.raises(eva_clip.EvaClipCheckpointError) as e:
        eva_clip.load_eva_clip_file(path)
    assert not marker.exists()
    assert str(path) in str(e.value) and "refused unexecuted" in str(e.value)


def test_other_failures(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        eva_clip.load_eva_clip_file(tmp_path / "nowhere.pt")
    ckpt = tmp_path / "eva.ckpt"
    ckpt.write_bytes(b"x")
    with pytest.raises(eva_clip.EvaClipCheckpointError, match=r"extension '\.ckpt'"):
        eva_clip.load_eva_clip_file(ckpt)
    listed = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], listed)
    with pytest.raises(eva_clip.EvaClipCheckpointError, match="list, not a state dict"):
        eva_clip.load_eva_clip_file(listed)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(eva_clip.EvaClipCheckpointError, match="garbage.safetensors"):
        eva_clip.load_eva_clip_file(garbage)
    assert issubclass(eva_clip.EvaClipCheckpointError, ValueError)


# --- preprocess ---------------------------------------------------------------------------------------------

def test_preprocess_matches_torchvision_as_pulid_calls_it():
    tvf = pytest.importorskip("torchvision.transforms.functional")
    img = torch.rand(2, 3, 512, 512, generator=torch.Generator().manual_seed(0))
    got = eva_clip.preprocess(img)
    assert got.shape == (2, 3, 336, 336)
    want = tvf.normalize(tvf.resize(img, 336, tvf.InterpolationMode.BICUBIC), eva_clip.CLIP_MEAN, eva_clip.CLIP_STD)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_preprocess_constants_and_passthrough():
    img = torch.full((1, 3, 336, 336), 0.5)
    got = eva_clip.preprocess(img)
    want = (0.5 - torch.tensor(eva_clip.CLIP_MEAN)) / torch.tensor(eva_clip.CLIP_STD)
    torch.testing.assert_close(got[0, :, 100, 200], want, atol=1e-6, rtol=0)
    assert eva_clip.CLIP_MEAN == (0.48145466, 0.4578275, 0.40821073)
    assert eva_clip.CLIP_STD == (0.26862954, 0.26130258, 0.27577711)
    assert eva_clip.preprocess(torch.rand(1, 3, 100, 80), image_size=56).shape == (1, 3, 56, 56)


def test_preprocess_rejects_bad_input():
    with pytest.raises(ValueError, match="0-255"):
        eva_clip.preprocess(torch.full((1, 3, 8, 8), 200.0))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        eva_clip.preprocess(torch.rand(3, 8, 8))
