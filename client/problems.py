"""Typed errors of the ``likeness`` client, each carrying the README exit code it ends the command with.

The command prints the message as one line (``likeness: <message>``) and exits with ``exit_code``; a Python
traceback is shown only with ``--debug``.
"""

from __future__ import annotations

from ..common.errors import LikenessError


class ClientProblem(LikenessError):
    """A problem the user can fix before anything expensive runs."""

    exit_code = 1


class InputError(ClientProblem):
    """A bad flag, path, URL or CSV cell (exit 2). ``row`` is the 1-based CSV data row, when there is one."""

    exit_code = 2

    def __init__(self, message: str, row: int | None = None):
        super().__init__(f"row {row}: {message}" if row is not None else message)
        self.row = row


class ServerNotUsable(ClientProblem):
    """The server is not there, not ComfyUI, or a ComfyUI without this pack (exit 3)."""

    exit_code = 3


class ModelFilesMissing(ClientProblem):
    """A model file the workflow loads is missing or not recognised (exit 4, before anything is queued)."""

    exit_code = 4
