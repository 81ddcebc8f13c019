"""Make this checkout importable as ``likeness`` without installing it.

The pack imports itself as ``likeness.…`` (relative imports inside), whatever its folder is called. A checkout
gets that name from ``.importroot/likeness``, a symbolic link to the checkout (``..``) in a git-ignored folder,
and ``.importroot`` first on ``sys.path`` (or PYTHONPATH for helper processes). Nothing is installed into a
shared virtualenv, so several checkouts can share one and each test run imports its own copy.
Used by tests/conftest.py, benchmarks/benchlib.py and the scripts (scripts/likeness does the same in bash).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
IMPORT_ROOT = CHECKOUT / ".importroot"


def ensure() -> Path:
    """Create the link if needed, put its folder first on sys.path and return that folder."""
    link = IMPORT_ROOT / "likeness"
    if not link.is_symlink():
        IMPORT_ROOT.mkdir(exist_ok=True)
        try:
            link.symlink_to("..", target_is_directory=True)
        except FileExistsError:  # another process made it first
            pass
    if str(IMPORT_ROOT) not in sys.path:
        sys.path.insert(0, str(IMPORT_ROOT))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(IMPORT_ROOT), os.environ.get("PYTHONPATH")]))
    return IMPORT_ROOT
