"""Typed errors of the PuLID library that are about the user's inputs (not its weights: see loading.py)."""

from __future__ import annotations

from ..common.errors import LikenessError

__all__ = ["PulidInputError"]


class PulidInputError(LikenessError, ValueError):
    """A fusion, mask or token input PuLID cannot use; the message names the value and the fix."""
