"""The one base class of every error the pack raises on purpose (``except LikenessError`` catches them all)."""

from __future__ import annotations


class LikenessError(Exception):
    """A problem the user can fix: the message names the value and the fix, in one line, no traceback needed."""
