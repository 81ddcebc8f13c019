"""A local job journal (SQLite) so a killed client or a restarted server loses nothing and repeats nothing.

Each job has a stable key. Its state moves pending -> submitting -> queued -> done | failed. "submitting" is
written *before* POST /prompt with a token that also travels in the prompt's ``extra_data``; if the client
dies between the POST and recording the prompt id, the next run finds the prompt on the server by that token
instead of queuing it again. The journal is one file, safe for several processes (WAL, short transactions).
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..common.errors import LikenessError

STATES = ("pending", "submitting", "queued", "done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    key        TEXT PRIMARY KEY,
    batch      TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    spec       TEXT NOT NULL,
    state      TEXT NOT NULL,
    token      TEXT,
    prompt_id  TEXT,
    server     TEXT,
    attempts   INTEGER NOT NULL DEFAULT 0,
    result     TEXT,
    error      TEXT,
    created    REAL NOT NULL,
    updated    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_batch ON jobs(batch, seq);
"""


@dataclass
class JobRow:
    key: str
    batch: str
    seq: int
    spec: dict
    state: str
    token: str | None
    prompt_id: str | None
    server: str | None
    attempts: int
    result: dict | None
    error: str | None

    @classmethod
    def from_sql(cls, row: sqlite3.Row) -> JobRow:
        return cls(
            key=row["key"],
            batch=row["batch"],
            seq=row["seq"],
            spec=json.loads(row["spec"]),
            state=row["state"],
            token=row["token"],
            prompt_id=row["prompt_id"],
            server=row["server"],
            attempts=row["attempts"],
            result=json.loads(row["result"]) if row["result"] else None,
            error=row["error"],
        )


class JournalError(LikenessError, RuntimeError):
    """The journal file cannot be used (e.g. a job key reused with a different spec)."""


class Journal:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._db() as db:
                db.executescript(_SCHEMA)
                db.execute("SELECT key, batch, seq, spec, state, token, prompt_id, server, attempts, result, error FROM jobs LIMIT 1")
        except sqlite3.DatabaseError as err:
            raise JournalError(
                f"{self.path} is not a usable likeness journal ({err}): move it aside, or pass --journal NEW.sqlite "
                "(finished images under jobs/ are recovered from the server when the journal is new)"
            ) from None

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=30000")
            yield db
        finally:
            db.close()

    def add(self, batch: str, seq: int, key: str, spec: dict) -> JobRow:
        """Register a job once; adding it again returns the existing row (its spec must be the same)."""
        now = time.time()
        text = json.dumps(spec, sort_keys=True)
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT * FROM jobs WHERE key = ?", (key,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO jobs (key, batch, seq, spec, state, created, updated) VALUES (?, ?, ?, ?, 'pending', ?, ?)",
                    (key, batch, seq, text, now, now),
                )
                row = db.execute("SELECT * FROM jobs WHERE key = ?", (key,)).fetchone()
            elif row["spec"] != text:
                db.execute("ROLLBACK")
                raise JournalError(f"job {key!r} is already in {self.path} with different settings; use a new --journal")
            db.execute("COMMIT")
        return JobRow.from_sql(row)

    def get(self, key: str) -> JobRow:
        with self._db() as db:
            row = db.execute("SELECT * FROM jobs WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return JobRow.from_sql(row)

    def jobs(self, batch: str | None = None) -> list[JobRow]:
        with self._db() as db:
            if batch is None:
                rows = db.execute("SELECT * FROM jobs ORDER BY batch, seq").fetchall()
            else:
                rows = db.execute("SELECT * FROM jobs WHERE batch = ? ORDER BY seq", (batch,)).fetchall()
        return [JobRow.from_sql(r) for r in rows]

    def _set(self, key: str, **fields: Any) -> None:
        fields["updated"] = time.time()
        for name in ("result",):
            if name in fields and fields[name] is not None:
                fields[name] = json.dumps(fields[name], sort_keys=True)
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self._db() as db:
            db.execute(f"UPDATE jobs SET {cols} WHERE key = ?", (*fields.values(), key))

    def submitting(self, key: str, server: str) -> str:
        """Record the intent to queue; returns the token to put in the prompt's extra_data."""
        token = uuid.uuid4().hex
        with self._db() as db:
            db.execute(
                "UPDATE jobs SET state = 'submitting', token = ?, server = ?, prompt_id = NULL, attempts = attempts + 1, "
                "updated = ? WHERE key = ?",
                (token, server, time.time(), key),
            )
        return token

    def queued(self, key: str, prompt_id: str, server: str) -> None:
        self._set(key, state="queued", prompt_id=prompt_id, server=server)

    def done(self, key: str, result: dict) -> None:
        self._set(key, state="done", result=result, error=None)

    def failed(self, key: str, error: str, result: dict | None = None) -> None:
        self._set(key, state="failed", error=error, result=result)

    def reset(self, key: str) -> None:
        """Back to pending (the server lost the prompt); the next run queues it again."""
        self._set(key, state="pending", prompt_id=None)

    def counts(self, batch: str | None = None) -> dict[str, int]:
        out = dict.fromkeys(STATES, 0)
        for job in self.jobs(batch):
            out[job.state] += 1
        return out
