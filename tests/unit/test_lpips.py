"""LPIPS-Alex (face/lpips.py) against an independent computation on torchvision's AlexNet, random weights."""

import pickle

import pytest
import torch
import torchvision
from likeness.face.lpips import LpipsWeightsError, find_lpips_files, load_lpips, lpips_outside
from likeness.standins.lpips_weights import write_random_lpips

SHIFT = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
SCALE = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_random_lpips(tmp_path_factory.mktemp("lpips"))


def _independent(alex_path, lin_path, a, b):
    net = torchvision.models.alexnet(weights=None)
    net.load_state_dict(torch.load(alex_path, weights_only=True))
    lins = torch.load(lin_path, weights_only=True)
    relu_after = {1: 0, 4: 1, 7: 2, 9: 3, 11: 4}
    total = 0.0
    x, y = (a * 2 - 1 - SHIFT) / SCALE, (b * 2 - 1 - SHIFT) / SCALE
    for i, layer in enumerate(net.features[:12]):
        x, y = layer(x), layer(y)
        if i in relu_after:
            nx = x / (x.norm(dim=1, keepdim=True) + 1e-10)
            ny = y / (y.norm(dim=1, keepdim=True) + 1e-10)
            w = lins[f"lin{relu_after[i]}.model.1.weight"]
            total = total + ((nx - ny) ** 2 * w).sum(1).mean()
    return float(total)


def test_equals_an_independent_computation(files):
    model = load_lpips(*files)
    gen = torch.Generator().manual_seed(1)
    a, b = torch.rand(1, 3, 96, 128, generator=gen), torch.rand(1, 3, 96, 128, generator=gen)
    ours = float(model.distance(a, b)[0])
    assert ours == pytest.approx(_independent(*files, a, b), rel=1e-5)
    assert float(model.distance(a, a)[0]) == 0.0
    # the upsampled map averages to nearly the same number
    assert float(model.distance_map(a, b).mean()) == pytest.approx(ours, rel=0.1)


def test_outside_mask_ignores_changes_inside(files):
    model = load_lpips(*files)
    gen = torch.Generator().manual_seed(2)
    img = torch.rand(128, 128, 3, generator=gen)
    changed = img.clone()
    changed[32:96, 32:96] = 1 - changed[32:96, 32:96]
    mask = torch.zeros(128, 128)
    mask[16:112, 16:112] = 1  # the change plus a margin for the receptive field
    assert lpips_outside(model, img, changed) > 0
    near = lpips_outside(model, img, changed, mask)
    assert near < 0.25 * lpips_outside(model, img, changed)
    with pytest.raises(ValueError, match="covers the whole image"):
        lpips_outside(model, img, changed, torch.ones(128, 128))


def test_bad_files_are_refused_without_unpickling(tmp_path, files):
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('pickle executed')",))

    evil = tmp_path / "alexnet-owt-7be5be79.pth"
    evil.write_bytes(pickle.dumps({"features.0.weight": Boom()}))
    with pytest.raises(LpipsWeightsError, match="could not be read as plain tensors"):
        load_lpips(evil, files[1])
    torch.save({"lin0.model.1.weight": torch.ones(1, 64, 1, 1)}, tmp_path / "alex.pth")
    with pytest.raises(LpipsWeightsError, match="4 missing"):
        load_lpips(files[0], tmp_path / "alex.pth")


def test_find_files_in_a_models_folder_only_when_both_exist(tmp_path, files, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-torch-home"))
    alex, _ = find_lpips_files([tmp_path / "empty"])
    assert alex is None
    alex, lin = find_lpips_files([files[0].parent])
    assert alex == files[0] and lin == files[1]
