"""BiSeNet face parsing: facexlib's parsing_bisenet.pth key layout, safe strict loading, inference."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from likeness.face.errors import FaceModelMissingError
from likeness.face.parsing import IMAGENET_MEAN, IMAGENET_STD, BiSeNet, ParsingWeightsError, load_bisenet, parse_face
from likeness.standins.facexlib_weights import bisenet_key_shapes, random_bisenet_state_dict, write_random_bisenet
from safetensors.torch import save_file

# Expected layout of facexlib 0.3.0 BiSeNet(num_class=19).state_dict(), derived by reading
# facexlib/parsing/bisenet.py and resnet.py: ResNet-18 trunk 120 tensors (stem 6, layer1 24, layer2-4 30 each),
# 2 ARMs 24, conv_head32/16 + conv_avg 18, FFM 8, 3 output heads 21 -> 191, of which 31 BatchNorm
# num_batches_tracked counters.
EXPECTED_NUM_TENSORS = 191
EXPECTED_NUM_BN_COUNTERS = 31
EXPECTED_NUM_PARAMS = 13_300_416  # learnable weights (BN running stats excluded)
EXPECTED_SAMPLE = {
    "cp.resnet.conv1.weight": (64, 3, 7, 7),
    "cp.resnet.bn1.running_var": (64,),
    "cp.resnet.layer1.1.conv2.weight": (64, 64, 3, 3),
    "cp.resnet.layer2.0.downsample.0.weight": (128, 64, 1, 1),
    "cp.resnet.layer2.0.downsample.1.num_batches_tracked": (),
    "cp.resnet.layer4.1.bn2.bias": (512,),
    "cp.arm16.conv.conv.weight": (128, 256, 3, 3),
    "cp.arm32.conv_atten.weight": (128, 128, 1, 1),
    "cp.arm32.bn_atten.running_mean": (128,),
    "cp.conv_head32.conv.weight": (128, 128, 3, 3),
    "cp.conv_avg.conv.weight": (128, 512, 1, 1),
    "ffm.convblk.conv.weight": (256, 256, 1, 1),
    "ffm.conv1.weight": (64, 256, 1, 1),
    "ffm.conv2.weight": (256, 64, 1, 1),
    "conv_out.conv.conv.weight": (256, 256, 3, 3),
    "conv_out.conv_out.weight": (19, 256, 1, 1),
    "conv_out16.conv.bn.weight": (64,),
    "conv_out32.conv_out.weight": (19, 64, 1, 1),
}
ABSENT = ["cp.resnet.layer1.0.downsample.0.weight", "cp.resnet.fc.weight", "cp.sp.conv1.conv.weight"]


@pytest.fixture(scope="module")
def bisenet_pth(tmp_path_factory) -> Path:
    return write_random_bisenet(tmp_path_factory.mktemp("facexlib") / "parsing_bisenet.pth", seed=0)


def test_state_dict_keys_and_shapes_equal_facexlibs():
    sd = BiSeNet(num_class=19).state_dict()
    assert len(sd) == EXPECTED_NUM_TENSORS
    assert sum(k.endswith("num_batches_tracked") for k in sd) == EXPECTED_NUM_BN_COUNTERS
    assert sum(p.numel() for p in BiSeNet().parameters()) == EXPECTED_NUM_PARAMS
    for name, shape in EXPECTED_SAMPLE.items():
        assert tuple(sd[name].shape) == shape, name
    for name in ABSENT:
        assert name not in sd
    # the stand-in writer builds the full list from facexlib's architecture on its own, in module order
    assert [(k, tuple(v.shape)) for k, v in sd.items()] == bisenet_key_shapes(19)


def test_random_weights_round_trip_through_pth(bisenet_pth, tmp_path):
    x = torch.rand(2, 3, 96, 128, generator=torch.Generator().manual_seed(0))
    from_file = load_bisenet(bisenet_pth)
    in_memory = load_bisenet(random_bisenet_state_dict(seed=0))
    assert not from_file.training
    with torch.no_grad():
        a, b = from_file(x), in_memory(x)
    for oa, ob in zip(a, b):
        assert oa.shape == (2, 19, 96, 128)
        assert torch.equal(oa, ob)
    # and our own state dict saved again reloads to the same network
    again = tmp_path / "again.pth"
    torch.save(from_file.state_dict(), again)
    with torch.no_grad():
        assert torch.equal(load_bisenet(again)(x)[0], a[0])
    # a different seed is a different network (the comparison above can fail)
    with torch.no_grad():
        assert not torch.equal(load_bisenet(random_bisenet_state_dict(seed=1))(x)[0], a[0])


def test_forward_main_is_the_first_output():
    model = load_bisenet(random_bisenet_state_dict(seed=2))
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.forward_main(x), model(x)[0])


def test_parse_face_normalises_with_imagenet_and_takes_argmax():
    model = load_bisenet(random_bisenet_state_dict(seed=3))
    x = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(5))
    labels = parse_face(model, x)
    assert labels.shape == (2, 128, 128) and labels.dtype == torch.int64
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = model(((x - mean) / std))[0].argmax(1)
        unnormalised = model(x)[0].argmax(1)
    assert torch.equal(labels, expected)
    assert not torch.equal(labels, unnormalised)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        parse_face(model, x[:, :1])


@pytest.mark.parametrize("wrap", ["params", "state_dict", "module", "no_bn_counters"])
def test_wrapped_or_older_state_dicts_load(wrap):
    sd = random_bisenet_state_dict(seed=4)
    if wrap == "module":
        obj = {f"module.{k}": v for k, v in sd.items()}
    elif wrap == "no_bn_counters":
        obj = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
        assert len(obj) == EXPECTED_NUM_TENSORS - EXPECTED_NUM_BN_COUNTERS
    else:
        obj = {wrap: sd}
    model = load_bisenet(obj)
    assert torch.equal(model.state_dict()["conv_out.conv_out.weight"], sd["conv_out.conv_out.weight"])


def test_safetensors_file_loads(tmp_path):
    sd = random_bisenet_state_dict(seed=6)
    path = tmp_path / "parsing_bisenet.safetensors"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    model = load_bisenet(path)
    assert torch.equal(model.state_dict()["ffm.conv1.weight"], sd["ffm.conv1.weight"])


def test_missing_file_names_the_expected_path(tmp_path):
    path = tmp_path / "models" / "facexlib" / "parsing_bisenet.pth"
    with pytest.raises(FaceModelMissingError) as err:
        load_bisenet(path)
    msg = str(err.value)
    assert str(path) in msg and "models/facexlib/parsing_bisenet.pth" in msg and "download" in msg.lower()


def test_missing_key_is_named():
    sd = random_bisenet_state_dict(seed=7)
    del sd["cp.arm16.conv_atten.weight"]
    with pytest.raises(ParsingWeightsError, match=r"1 missing keys.*cp\.arm16\.conv_atten\.weight"):
        load_bisenet(sd)


def test_wrong_shape_and_extra_keys_are_named():
    sd = random_bisenet_state_dict(seed=8)
    sd["conv_out.conv_out.weight"] = torch.zeros(18, 256, 1, 1)
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(ParsingWeightsError) as err:
        load_bisenet(sd)
    msg = str(err.value)
    assert "1 misshapen keys (conv_out.conv_out.weight is [18, 256, 1, 1], expected [19, 256, 1, 1])" in msg
    assert "extra.weight" in msg and "(state dict)" in msg


def test_other_model_file_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "parsing_parsenet.pth"
    torch.save({"encoder.0.weight": torch.zeros(64, 3, 3, 3)}, path)
    with pytest.raises(ParsingWeightsError) as err:
        load_bisenet(path)
    msg = str(err.value)
    # 191 tensors less the 31 optional BN counters
    assert str(path) in msg and "160 missing keys" in msg and "encoder.0.weight" in msg and "parsing_bisenet.pth" in msg


@pytest.mark.parametrize("content", [b"", b"not a torch file at all", "list"])
def test_unreadable_or_non_dict_file_is_refused(tmp_path, content):
    path = tmp_path / "parsing_bisenet.pth"
    if content == "list":
        torch.save([torch.zeros(2)], path)
    else:
        path.write_bytes(content)
    with pytest.raises(ParsingWeightsError) as err:
        load_bisenet(path)
    assert str(path) in str(err.value)


class _Payload:
    """Unpickling this would create the marker file: the test proves it never happens."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "parsing_bisenet.pth"
    sd = random_bisenet_state_dict(seed=9)
    sd["evil"] = _Payload(marker)
    torch.save(sd, path)
    assert not marker.exists()
    with pytest.raises(ParsingWeightsError) as err:
        load_bisenet(path)
    assert not marker.exists()
    msg = str(err.value)
    assert str(path) in msg and "weights_only=True" in msg and "open" in msg
    assert "weights_only=False" not in msg  # never advise the unsafe retry
