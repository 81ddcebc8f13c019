"""Numbers as the pack writes them into CSV cells and reports."""

from __future__ import annotations

import math
from typing import Any


def format_cell(v: Any) -> str:
    """Full float precision (repr), NaN as an empty cell, +-inf spelled out, booleans as true/false."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    return "" if v is None else str(v)
