"""Clean stops: SIGINT (Ctrl-C) and SIGTERM unwind the command like an exception, so the embedded ComfyUI is
stopped and its temporary folders removed by their context managers, and the user is told how to resume."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread by SIGINT or SIGTERM; ``exit_code`` is 128 + the signal number."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


def _raise(signum, _frame):
    # Stop listening: a second signal during clean-up must not interrupt the clean-up itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Interrupted(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT / SIGTERM raise Interrupted inside the block (main thread only); the old handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in old:
        signal.signal(s, _raise)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def resume_hint(journal: str | None) -> str:
    where = f" (journal {journal})" if journal else ""
    return f"interrupted; the embedded server, if any, was stopped; rerun the same command to resume{where}"
