"""Advisory file locks (fcntl.flock) shared by every ``likeness`` process on one machine: one job is run by one
process at a time (the other waits, then finds it done in the journal), and the results files are merged
under one lock so no row is lost."""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def job_lock_path(journal: Path, key: str) -> Path:
    return journal.with_name(journal.name + ".locks") / f"{key}.lock"
