"""Random LPIPS weight files in the official layouts: torchvision's AlexNet checkpoint and LPIPS v0.1 alex.pth."""

from __future__ import annotations

from pathlib import Path

import torch


def write_random_lpips(folder: Path | str, seed: int = 0) -> tuple[Path, Path]:
    import torchvision

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    alex = torchvision.models.alexnet(weights=None).state_dict()  # features.* and classifier.*, as the real file
    alex_path = folder / "alexnet-owt-7be5be79.pth"
    torch.save(alex, alex_path)
    gen = torch.Generator().manual_seed(seed)
    lins = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=gen) for i, c in enumerate((64, 192, 384, 256, 256))}
    lin_path = folder / "alex.pth"
    torch.save(lins, lin_path)
    return alex_path, lin_path
