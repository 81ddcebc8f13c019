"""The strict state-dict layout check every loader shares (spandrel-style: detect, compare, refuse clearly).

Works on shapes only, so it needs no torch: ``compare`` lists what is missing, unexpected and misshapen against
the layout a config implies, and ``LayoutMismatch.describe`` is the one wording of it in every error message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

SHOWN = 5  # names listed before "(+N more)": a damaged file can have hundreds of wrong keys


def listed(items: Iterable[Any], n: int = SHOWN) -> str:
    """The first ``n`` items joined, and how many more there are."""
    items = [str(i) for i in items]
    shown = ", ".join(items[:n])
    return f"{shown} (+{len(items) - n} more)" if len(items) > n else shown


def shape_of(value: Any) -> tuple[int, ...] | str:
    """A tensor's shape, or a word saying it is not a tensor (so a stray entry is reported, not crashed on)."""
    shape = getattr(value, "shape", None)
    return tuple(int(d) for d in shape) if shape is not None else f"<{type(value).__name__}, not a tensor>"


@dataclass(frozen=True)
class LayoutMismatch:
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    misshapen: list[tuple[str, Any, tuple[int, ...]]] = field(default_factory=list)  # (key, found, expected)

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.misshapen)

    @property
    def size(self) -> int:
        return len(self.missing) + len(self.unexpected) + len(self.misshapen)

    def describe(self, n: int = SHOWN) -> str:
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} missing keys ({listed(self.missing, n)})")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected keys ({listed(self.unexpected, n)})")
        if self.misshapen:
            shown = [f"{k} is {_fmt(got)}, expected {_fmt(want)}" for k, got, want in self.misshapen]
            parts.append(f"{len(self.misshapen)} misshapen keys ({listed(shown, n)})")
        return "; ".join(parts)


def _fmt(shape: Any) -> str:
    return str(list(shape)) if isinstance(shape, tuple) else str(shape)


def compare(found: Mapping[str, Any], expected: Mapping[str, tuple[int, ...]],
            optional: Callable[[str], bool] = lambda key: False) -> LayoutMismatch:
    """``found``: key -> tensor (or shape); ``expected``: key -> shape; ``optional`` keys may be absent."""
    shapes = {k: v if isinstance(v, tuple) else shape_of(v) for k, v in found.items()}
    want = {k: tuple(v) for k, v in expected.items()}
    return LayoutMismatch(
        missing=[k for k in want if k not in shapes and not optional(k)],
        unexpected=[k for k in shapes if k not in want],
        misshapen=[(k, shapes[k], s) for k, s in want.items() if k in shapes and shapes[k] != s],
    )
