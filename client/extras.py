"""The optional extras a command needs, checked before a server starts: one line naming the pip command.

The demo on stand-ins runs the face analysis (insightface + ONNX Runtime; insightface itself imports ``onnx``,
its own requirement) and the dlib judge in the embedded server, which uses this Python. Both are extras of the
package (pyproject ``[insightface]``, ``[dlib]``), so a bare ``pip install likeness`` lacks them.
"""

from __future__ import annotations

import importlib.util

# extra -> the modules it provides (either ONNX Runtime flavour provides ``onnxruntime``).
EXTRAS = {
    "insightface": ("insightface", "onnx", "onnxruntime"),
    "dlib": ("dlib", "face_recognition_models"),
}
DEMO_EXTRAS = ("insightface", "dlib")


def missing_extras(extras: tuple[str, ...] = DEMO_EXTRAS) -> str | None:
    """None when every module of ``extras`` is importable, else one line naming what is missing and the fix."""
    missing = {e: [m for m in EXTRAS[e] if importlib.util.find_spec(m) is None] for e in extras}
    missing = {e: mods for e, mods in missing.items() if mods}
    if not missing:
        return None
    names = ", ".join(m for mods in missing.values() for m in mods)
    return (
        f"the demo needs the {' and '.join(extras)} extras and this Python lacks {names}: "
        f'pip install "likeness[{",".join(extras)}]" (from a checkout: pip install ".[{",".join(extras)}]"; '
        "with onnxruntime-gpu see the README, Requirements)"
    )
