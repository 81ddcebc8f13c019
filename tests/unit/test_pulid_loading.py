"""Loading PuLID-Flux weights: manifest-exact strict loads, config detection, round trips and refused files."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from configs import UNIT_PULID, read_manifest, seeded_unit_pulid
from likeness.pulid import (
    PulidCheckpointError,
    PulidFluxConfig,
    detect_config,
    load_pulid_flux,
    load_pulid_flux_file,
)
from safetensors.torch import save_file

TINY = UNIT_PULID  # shared tiny config, see tests/configs.py



def _manifest() -> dict[str, tuple[int, ...]]:
    return read_manifest("pulid_flux_v0.9.x.keys.tsv")


def _meta_sd(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    return {k: torch.empty(s, device="meta") for k, s in shapes.items()}



def _tiny_model(seed: int = 0):
    return seeded_unit_pulid(seed)


def _inputs(batch: int = 2, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    id_cond = torch.randn(batch, TINY.id_cond_dim, generator=g)
    hidden = [torch.randn(batch, 9, TINY.vit_dim, generator=g) for _ in range(TINY.num_scales)]
    img = torch.randn(batch, 10, TINY.flux_dim, generator=g)
    return id_cond, hidden, img


def _same_outputs(a, b) -> None:
    id_cond, hidden, img = _inputs()
    ids_a, ids_b = a.encoder(id_cond, hidden), b.encoder(id_cond, hidden)
    assert torch.equal(ids_a, ids_b)
    for n in (0, len(a.ca) - 1):
        assert torch.equal(a.ca[n](ids_a, img), b.ca[n](ids_b, img))


# ------------------------------------------------------------------------- the real layout


def test_manifest_loads_strictly_on_meta_and_detects_official():
    sd = _meta_sd(_manifest())
    assert len(sd) == 312
    assert detect_config(sd) == PulidFluxConfig.official()
    t0 = time.perf_counter()
    model = load_pulid_flux(sd)
    elapsed = time.perf_counter() - t0
    assert model.config == PulidFluxConfig.official()
    assert len(model.ca) == 20
    assert all(p.is_meta for p in model.parameters())  # nothing of the 2.3 GB fp32 was allocated
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == _manifest()
    assert elapsed < 30


def test_device_meta_turns_real_tensors_into_shapes_only():
    sd = _tiny_model().state_dict()
    model = load_pulid_flux(sd, config=TINY, device="meta")
    assert all(p.is_meta for p in model.parameters())


@pytest.mark.parametrize(
    "key",
    ["pulid_encoder.latents", "pulid_encoder.layers.9.1.3.weight", "pulid_ca.0.to_q.weight", "pulid_ca.19.norm2.bias"],
)
def test_missing_key_is_named(key):
    sd = _meta_sd(_manifest())
    del sd[key]
    with pytest.raises(PulidCheckpointError) as err:
        load_pulid_flux(sd)
    assert key in str(err.value)
    assert key in err.value.missing


@pytest.mark.parametrize("key", ["pulid_encoder.extra.weight", "pulid_ca.20.norm1.weight", "pulid_ca.3.to_q.bias"])
def test_unexpected_key_is_named(key):
    sd = _meta_sd(_manifest())
    sd[key] = torch.empty(2048, device="meta")
    with pytest.raises(PulidCheckpointError) as err:
        load_pulid_flux(sd)
    assert key in str(err.value)
    assert key in err.value.unexpected


@pytest.mark.parametrize(
    "key",
    ["pulid_encoder.latents", "pulid_encoder.proj_out", "pulid_encoder.mapping_3.6.weight", "pulid_ca.7.to_kv.weight"],
)
def test_misshapen_key_is_named(key):
    shapes = _manifest()
    sd = _meta_sd(shapes)
    bad = list(shapes[key])
    bad[-1] += 8
    sd[key] = torch.empty(bad, device="meta")
    with pytest.raises(PulidCheckpointError) as err:
        load_pulid_flux(sd)
    assert key in str(err.value)
    assert str(bad) in str(err.value)
    assert [m[0] for m in err.value.misshapen] == [key]


def test_only_encoder_half_is_refused():
    sd = {k: v for k, v in _meta_sd(_manifest()).items() if k.startswith("pulid_encoder.")}
    with pytest.raises(PulidCheckpointError, match=r"pulid_ca\.\*"):
        load_pulid_flux(sd)


# ------------------------------------------------------------------------- detection and round trips


def test_detection_reads_every_size_and_defaults_to_16_heads():
    sd = _tiny_model().state_dict()
    assert detect_config(sd, encoder_heads=4, ca_heads=4) == TINY
    sixteen = replace(TINY, encoder_heads=16, encoder_dim_head=4, ca_heads=16, ca_dim_head=4)
    assert detect_config(sd) == sixteen
    assert load_pulid_flux(sd).config == sixteen


def test_safetensors_round_trip_is_exact(tmp_path):
    model = _tiny_model(3)
    path = tmp_path / "tiny_pulid.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    loaded = load_pulid_flux_file(path, config=TINY)
    assert not any(p.requires_grad for p in loaded.parameters())
    _same_outputs(model, loaded)


def test_pt_round_trip_with_nested_state_dict(tmp_path):
    model = _tiny_model(4)
    path = tmp_path / "tiny_pulid.pt"
    torch.save({"state_dict": model.state_dict()}, path)
    _same_outputs(model, load_pulid_flux_file(path, config=TINY))


def test_dtype_is_kept_or_converted(tmp_path):
    model = _tiny_model(5)
    path = tmp_path / "bf16.safetensors"
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()}, str(path))
    assert load_pulid_flux_file(path, config=TINY).ca[0].to_q.weight.dtype == torch.bfloat16
    as32 = load_pulid_flux_file(path, config=TINY, dtype=torch.float32)
    assert all(p.dtype == torch.float32 for p in as32.parameters())


def test_explicit_config_that_does_not_fit_is_refused():
    sd = _tiny_model().state_dict()
    with pytest.raises(PulidCheckpointError, match="missing"):
        load_pulid_flux(sd, config=replace(TINY, num_ca=7))


# ------------------------------------------------------------------------- wrong files


def test_sdxl_pulid_file_gets_a_fix(tmp_path):
    path = tmp_path / "pulid_v1.1.safetensors"
    save_file(
        {
            "id_adapter.id_embedding_mapping.0.weight": torch.zeros(4, 4),
            "ip_adapter.1.to_k_ip.weight": torch.zeros(4, 4),
            "ip_adapter.1.to_v_ip.weight": torch.zeros(4, 4),
        },
        str(path),
    )
    with pytest.raises(PulidCheckpointError) as err:
        load_pulid_flux_file(path)
    msg = str(err.value)
    assert str(path) in msg and "SDXL" in msg and "pulid_flux_v0.9.1.safetensors" in msg
    assert "pulid_encoder" in msg and err.value.path == str(path)


def test_unrelated_safetensors_lists_what_it_found(tmp_path):
    path = tmp_path / "random.safetensors"
    save_file({"model.conv1.weight": torch.zeros(2, 2), "model.fc.bias": torch.zeros(3)}, str(path))
    with pytest.raises(PulidCheckpointError) as err:
        load_pulid_flux_file(path)
    msg = str(err.value)
    assert str(path) in msg and "model.conv1.weight" in msg and "pulid_ca" in msg


@pytest.mark.parametrize("keep", [0, 5, 100, -7])
def test_truncated_or_empty_safetensors(tmp_path, keep):
    full = tmp_path / "full.safetensors"
    save_file({k: v.contiguous() for k, v in _tiny_model().state_dict().items()}, str(full))
    data = full.read_bytes()
    cut = tmp_path / "pulid_flux_cut.safetensors"
    cut.write_bytes(data[:keep] if keep >= 0 else data[:keep])
    with pytest.raises(PulidCheckpointError) as err:
        load_pulid_flux_file(cut)
    assert str(cut) in str(err.value)


class _Payload:
    """Unpickling this would create the marker file: the test proves it never happens."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_with_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "pulid_flux.pt"
    torch.save({"pulid_encoder.latents": torch.zeros(1), "evil": _Payload(marker)}, path)
    assert not marker.exists()
    with pytest.raises(PulidCheckpointError) as err:
        load_pulid_flux_file(path)
    assert not marker.exists()
    msg = str(err.value)
    assert str(path) in msg and "pickle" in msg.lower() and "open" in msg


def test_pt_that_is_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(PulidCheckpointError, match="list"):
        load_pulid_flux_file(path)


def test_garbage_pt_and_unknown_extension(tmp_path):
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00not a zip")
    with pytest.raises(PulidCheckpointError, match="garbage.bin"):
        load_pulid_flux_file(garbage)
    full = tmp_path / "full.pt"
    torch.save(_tiny_model().state_dict(), full)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(full.read_bytes()[:2000])
    with pytest.raises(PulidCheckpointError, match="cut.pt"):
        load_pulid_flux_file(cut)
    gguf = tmp_path / "pulid.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(PulidCheckpointError, match=r"\.gguf"):
        load_pulid_flux_file(gguf)
    with pytest.raises(FileNotFoundError):
        load_pulid_flux_file(tmp_path / "absent.safetensors")
