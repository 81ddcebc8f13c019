"""ControlNet helpers for Flux Union-Pro graphs."""

from __future__ import annotations

from . import comfy_adapter as host
from .types import CATEGORY
from .union_modes import FLUX_UNION_PRO_V1_MODES, NONE, mode_index


class LikenessFluxUnionMode:
    DESCRIPTION = (
        "Set the control mode of a Flux ControlNet Union Pro (v1) model with the Flux table "
        "(canny 0, tile 1, depth 2, blur 3, pose 4, gray 5, low quality 6). Use it instead of core "
        "'SetUnionControlNetType', whose SDXL table sends 'tile' as 6, which a Flux Union model reads as 'low quality'."
    )
    CATEGORY = f"{CATEGORY}/control"
    RETURN_TYPES = ("CONTROL_NET",)
    RETURN_NAMES = ("control_net",)
    OUTPUT_TOOLTIPS = ("A copy of the ControlNet with the mode set; the input ControlNet is unchanged.",)
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "control_net": ("CONTROL_NET", {"tooltip": "A Flux ControlNet Union Pro (v1) from Load ControlNet Model."}),
                "mode": (
                    [NONE, *FLUX_UNION_PRO_V1_MODES],
                    {
                        "default": "tile",
                        "tooltip": "Control mode. 'tile' keeps the structure of the control image (enhancement); "
                        "'pose' for avatars; 'none' runs without a mode.",
                    },
                ),
            }
        }

    def apply(self, control_net, mode):
        index = mode_index(mode, host.union_mode_rows(control_net))
        return (host.set_control_type(control_net, index),)
