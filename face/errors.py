"""Typed errors for the face package.

Every message names the value that failed, what was expected and the fix, so a ComfyUI user can act on it
without reading a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..common.errors import LikenessError

__all__ = [
    "FaceError",
    "NoFaceError",
    "FaceModelMissingError",
    "JudgeUnavailableError",
    "find_nested_model_dir",
]


class FaceError(LikenessError, ValueError):
    """Base class: a ValueError so generic callers that catch bad input also catch these."""


class NoFaceError(FaceError):
    """An image (reference or generated) in which the detector found no face.

    ``index`` is the 0-based position of the image in its batch, or None when the error is about the
    whole batch (e.g. no reference image had a face at all).
    """

    def __init__(self, index: int | None, role: str = "reference", *, hint: str | None = None):
        self.index = index
        self.role = role
        what = f"no {role} image has" if index is None else f"{role} image {index} has no"
        fix = hint or "use a clearer, larger frontal photo"
        msg = f"{what} detectable face: {fix}" if index is not None else f"{what} a detectable face: {fix}"
        super().__init__(msg)


def find_nested_model_dir(path: str | os.PathLike, pattern: str = "*.onnx") -> Path | None:
    """Return the sub-folder holding the model files when they were unzipped one level too deep.

    The antelopev2 zip contains a top folder of the same name, so unzipping it inside
    ``models/insightface/models/antelopev2/`` gives ``.../antelopev2/antelopev2/*.onnx``, which insightface
    does not look into (and then tries to download). Only direct children are checked.
    """
    folder = Path(path)
    if not folder.is_dir() or any(folder.glob(pattern)):
        return None
    children = sorted(p for p in folder.iterdir() if p.is_dir())
    # Prefer the same-name child (the antelopev2 trap), then any child that holds model files.
    children.sort(key=lambda p: p.name != folder.name)
    for child in children:
        if any(child.glob(pattern)):
            return child
    return None


class FaceModelMissingError(FaceError):
    """A model folder or file the judge needs is absent (we never download it for the user)."""

    def __init__(
        self,
        path: str | os.PathLike,
        what: str = "face model files (*.onnx)",
        *,
        nested: str | os.PathLike | None = None,
        hint: str | None = None,
    ):
        self.path = str(path)
        self.nested = None if nested is None else str(nested)
        if self.nested is not None:
            msg = (
                f"{what} are one folder too deep: found them in {self.nested}{os.sep} but expected them "
                f"directly in {self.path}{os.sep}; move the .onnx files up one level into {self.path}{os.sep}"
            )
        else:
            msg = f"{what} not found: expected {self.path}"
        if hint:
            msg = f"{msg}. {hint}"
        super().__init__(msg)

    @classmethod
    def for_folder(
        cls, path: str | os.PathLike, what: str = "face model files (*.onnx)", *, hint: str | None = None
    ) -> FaceModelMissingError:
        """Build the error for a folder without model files, recognising the unzipped-too-deep trap."""
        nested = find_nested_model_dir(path)
        return cls(path, what, nested=nested, hint=None if nested is not None else hint)


class JudgeUnavailableError(FaceError):
    """A judge backend was selected but its Python package is not installed."""

    def __init__(self, backend: str, install: str, *, reason: str | None = None):
        self.backend = backend
        self.install = install
        msg = f"face judge '{backend}' is not available: {install}"
        if reason:
            msg = f"{msg} ({reason})"
        super().__init__(msg)
