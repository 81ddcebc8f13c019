"""Clean stops: SIGINT (Ctrl-C) and SIGTERM unwind the command like an exception, so the embedded ComfyUI is
stopped and its temporary folders removed by their context managers, and the user is told how to resume."""

from __future__ import annotations

import signal


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


def stop_on_signals() -> None:
    signal.signal(signal.SIGINT, _raise)
    signal.signal(signal.SIGTERM, _raise)


def resume_hint(journal: str | None) -> str:
    where = f" (journal {journal})" if journal else ""
    return f"interrupted; the embedded server, if any, was stopped; rerun the same command to resume{where}"
