"""Face judges: the backends by name (dlib, insightface) and everything a caller needs from one import.

The interface and records live in records.py, the backends in judge_dlib.py and judge_insightface.py.
"""

from __future__ import annotations

from typing import Any, Callable

from .errors import FaceError
from .judge_dlib import DlibJudge
from .judge_insightface import RUNTIME_MISSING, InsightFaceJudge, check_insightface_folder, runtime_missing
from .records import ARCFACE_TEMPLATE_112, FACE_ORDERS, FaceJudge, FaceRecord, select_faces, sort_faces, to_rgb_uint8

__all__ = [
    "ARCFACE_TEMPLATE_112",
    "FaceRecord",
    "FaceJudge",
    "DlibJudge",
    "InsightFaceJudge",
    "check_insightface_folder",
    "select_faces",
    "sort_faces",
    "to_rgb_uint8",
    "get_judge",
    "judge_names",
    "FACE_ORDERS",
    "RUNTIME_MISSING",
    "runtime_missing",
]


# -------------------------------------------------------------------------------------------- registry

_JUDGES: dict[str, Callable[..., FaceJudge]] = {"dlib": DlibJudge, "insightface": InsightFaceJudge}


def judge_names() -> tuple[str, ...]:
    """Registered backend names (whether or not their packages are installed)."""
    return tuple(_JUDGES)


def get_judge(name: str, **kwargs: Any) -> FaceJudge:
    """Build a judge by backend name ("dlib" or "insightface"); kwargs go to its constructor."""
    key = name.strip().lower()
    factory = _JUDGES.get(key)
    if factory is None:
        raise FaceError(f"unknown face judge {name!r}: expected one of {', '.join(_JUDGES)}")
    return factory(**kwargs)
