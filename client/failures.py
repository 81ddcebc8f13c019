"""Every way a ``likeness`` command can end, as (exit code, one line): no traceback reaches the user for any
input (``--debug`` shows it), and ``--json`` turns the same outcome into exactly one JSON object on stdout.

Exit codes (README): 0 done; 1 a job failed on the server (or an unexpected internal error: the line says so);
2 bad arguments or inputs; 3 server unavailable, not ComfyUI, or without the pack; 4 the workflow did not
validate / a model file is missing (checked before queueing); 5 the likeness gate was not reached;
130 / 143 stopped by SIGINT / SIGTERM (rerun the same command to resume).
"""

from __future__ import annotations

import argparse
import json
import sys
from urllib.error import HTTPError

from ..common.errors import LikenessError
from .api import ComfyError, PromptRejected, ServerUnavailable
from .exits import EXIT_FAILED, EXIT_REJECTED, EXIT_USAGE
from .exits import EXIT_UNAVAILABLE as EXIT_SERVER
from .journal import JournalError
from .problems import InputError
from .server import ServerStartError
from .stops import Interrupted, resume_hint
from .workflow_format import WorkflowFormatError


class JsonArgumentParser(argparse.ArgumentParser):
    """argparse whose errors become InputError (exit 2, one line; a JSON object with --json)."""

    def error(self, message: str):  # type: ignore[override]
        raise InputError(f"{self.prog}: {message} (see {self.prog} --help)")


def one_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return " | ".join(lines) or "(no message)"


def classify(err: BaseException, journal: str | None = None) -> tuple[int, str]:
    """(exit code, message) for an exception that ended a command."""
    if isinstance(err, Interrupted):
        return err.exit_code, f"{err.args[0]}: {resume_hint(journal)}"
    if isinstance(err, KeyboardInterrupt):
        return 130, resume_hint(journal)
    if isinstance(err, (InputError, JournalError, WorkflowFormatError)):
        return EXIT_USAGE, one_line(err)
    if isinstance(err, PromptRejected):
        return EXIT_REJECTED, "the workflow did not validate: " + one_line(err)
    if isinstance(err, (ServerUnavailable, ServerStartError)):
        return EXIT_SERVER, one_line(err)
    if isinstance(err, HTTPError):
        return EXIT_SERVER, f"the server answered HTTP {err.code} for {err.url}: is it ComfyUI with this pack? check the URL"
    if isinstance(err, LikenessError):
        return getattr(err, "exit_code", EXIT_FAILED), one_line(err)
    if isinstance(err, ComfyError):
        return EXIT_FAILED, one_line(err)
    if isinstance(err, OSError) and err.filename:
        return EXIT_FAILED, f"{err.filename}: {err.strerror}: check the folder (free space, permissions)"
    return EXIT_FAILED, f"internal error ({type(err).__name__}: {one_line(err)[:300]}); rerun with --debug for the traceback and report it"


def emit_failure(code: int, message: str, as_json: bool) -> None:
    sys.stderr.write(f"likeness: {message}\n")
    if as_json:
        sys.stdout.write(json.dumps({"exit_code": code, "error": message, "rows": []}) + "\n")
    sys.stdout.flush()
