"""Which base models Apply PuLID-Flux can serve, checked at Apply time (before any sampling).

PuLID-Flux v0.9.x adds 3072-wide cross-attention residuals after FLUX.1's double/single blocks. It can only run on
a model with those blocks and that width; everything else gets one line naming the family, both widths and the fix.
"""

from __future__ import annotations

import logging

from ..common.errors import LikenessError
from . import comfy_adapter as host

log = logging.getLogger(__name__)

# comfy/supported_models.py class -> the name users know. Krea [dev] and Kontext [dev] load as "Flux".
FAMILY_NAMES = {
    "Flux": "FLUX.1 [dev] / Krea [dev] / Kontext [dev]",
    "FluxSchnell": "FLUX.1 [schnell]",
    "FluxInpaint": "FLUX.1 Fill",
    "Chroma": "Chroma",
    "ChromaRadiance": "Chroma Radiance",
    "Flux2": "FLUX.2",
    "SD15": "SD 1.5",
    "SDXL": "SDXL",
    "SD3": "SD3",
    "QwenImage": "Qwen-Image",
    "HiDream": "HiDream",
    "Lumina2": "Lumina 2",
    "HunyuanImage21": "HunyuanImage 2.1",
}
# Families proven with a stand-in of ComfyUI's own class (tests/server/test_families.py).
PROVEN = {"Flux", "FluxSchnell", "Chroma"}
# Flux-shaped but trained differently: a matching width would still not make PuLID-Flux's residuals meaningful.
REFUSED = {"Flux2"}
ALTERNATIVE = (
    "use a FLUX.1 model (dev, Krea, Kontext, schnell) or Chroma; for FLUX.2 use workflows/likeness_enhance_flux2.json "
    "(FLUX.2's own reference images, no PuLID)"
)


class UnsupportedModelError(LikenessError, ValueError):
    """The MODEL given to Apply PuLID-Flux is not one PuLID-Flux can serve."""


def check_model(model, pulid_width: int, pulid_name: str) -> tuple[int, int]:
    """(double, single) block counts of a model PuLID-Flux can serve, else UnsupportedModelError."""
    family, width, has_blocks = host.model_family(model)
    name = FAMILY_NAMES.get(family, family)
    width_txt = f"{width} wide" if width is not None else "width unknown"
    if family in REFUSED or not has_blocks or width != pulid_width:
        why = "has no Flux double/single blocks" if not has_blocks else width_txt
        raise UnsupportedModelError(
            f"Apply PuLID-Flux cannot serve this model: it is {name} ({why}); PuLID-Flux '{pulid_name}' is "
            f"{pulid_width} wide and made for FLUX.1. Fix: {ALTERNATIVE}"
        )
    if family not in PROVEN:
        log.warning("PuLID-Flux on %s (%s): Flux blocks and width match, but this family is not tested", name, width_txt)
    return host.flux_block_counts(model)
