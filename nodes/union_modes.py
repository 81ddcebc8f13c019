"""Control modes of the Flux ControlNet Union Pro (v1) model.

Table per the model card of Shakker-Labs/FLUX.1-dev-ControlNet-Union-Pro (control_mode values).
ComfyUI core's SetUnionControlNetType uses the SDXL union table, where "tile" is 6: a Flux
Union-Pro model reads 6 as "low quality" and raises no error, so Flux graphs need this table.
Pure module (no ComfyUI import) so unit tests can check the table without a server.
"""

from ..common.errors import LikenessError

FLUX_UNION_PRO_V1_MODES: dict[str, int] = {
    "canny": 0,
    "tile": 1,
    "depth": 2,
    "blur": 3,
    "pose": 4,
    "gray": 5,
    "low quality": 6,
}
NONE = "none"


class UnionModeError(LikenessError, ValueError):
    """A mode was requested that this ControlNet cannot take."""


def mode_index(mode: str, num_modes: int | None) -> int | None:
    """Map a mode name to the Union-Pro v1 index, checking the ControlNet has a row for it.

    ``num_modes`` is the number of rows of the ControlNet's mode embedding (None or 0: it has none).
    Returns None for "none" (the ControlNet runs without a mode, as core's "auto").
    """
    if mode == NONE:
        return None
    if mode not in FLUX_UNION_PRO_V1_MODES:
        raise UnionModeError(
            f"unknown Flux Union mode {mode!r}; choose one of {', '.join(FLUX_UNION_PRO_V1_MODES)} or 'none'"
        )
    index = FLUX_UNION_PRO_V1_MODES[mode]
    if not num_modes:
        raise UnionModeError(
            f"mode {mode!r} was requested but this ControlNet has no mode embedding "
            "(controlnet_mode_embedder); it is not a Union model, or it is Union-Pro 2.0, which dropped modes and "
            "tile. Fix: load FLUX.1-dev-ControlNet-Union-Pro (v1), or set mode to 'none'."
        )
    if index >= num_modes:
        raise UnionModeError(
            f"mode {mode!r} is index {index} but this ControlNet's mode embedding has only {num_modes} rows; "
            "Fix: load FLUX.1-dev-ControlNet-Union-Pro (v1), which has 7 modes, or choose another mode."
        )
    return index
