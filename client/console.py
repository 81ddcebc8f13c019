"""What a person at the terminal sees: one progress line from /ws events, and the summary of a run."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from .exits import EXIT_GATE
from .params import titles

log = logging.getLogger("likeness")


def out(msg: str) -> None:
    """stdout is the command's result (one JSON object with --json); logs go to stderr."""
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


class Progress:
    """One status line from /ws events: node title, sampler step i/N, elapsed seconds."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.graphs: dict[str, dict] = {}
        self.key = self.label = self.node = ""
        self.t0 = time.monotonic()

    def start(self, key: str, label: str, graphs: dict[str, dict]) -> None:
        """A new job; ``graphs`` (job key -> graph) is read when its events arrive, after it was built."""
        self.key, self.label, self.graphs, self.t0 = key, label, graphs, time.monotonic()

    def __call__(self, event: dict) -> None:
        if not self.enabled:
            return
        kind, data = event.get("type"), event.get("data", {})
        line = None
        if kind == "executing" and data.get("node") is not None:
            node = str(data["node"])
            self.node = titles(self.graphs.get(self.key) or {}).get(node, node)
            line = self.node
        elif kind == "progress":
            value, total = int(data.get("value", 0)), int(data.get("max", 1) or 1)
            line = f"{self.node} [{'#' * int(20 * value / total):<20}] step {value}/{total}"
        if line is None:
            return
        text = f"[{self.label}] {time.monotonic() - self.t0:6.1f}s {line}"
        if self.tty:
            sys.stderr.write("\r" + text[:118].ljust(118))
            sys.stderr.flush()
        else:
            log.info("%s", text)

    def done(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")


def report(args: argparse.Namespace, rows: list[dict], standin: bool, out_dir: Path, code: int, seconds: float) -> int:
    """The run's summary on stdout (one JSON object with --json); returns ``code``."""
    if args.json:
        out(json.dumps({"exit_code": code, "standin_weights": standin, "output_dir": str(out_dir), "rows": rows}, default=str))
        return code
    for r in rows:
        if r.get("state") == "invalid":  # a batch row that was not run (its line was logged with the row number)
            out(f"  {r.get('name') or '(no name)'} row {r.get('row')}: invalid, not run: {r.get('error')}")
            continue
        mark = "*" if r.get("best") else " "
        cos = " ".join(f"{k} {r[k]:.3f}" if isinstance(r.get(k), (int, float)) else f"{k} n/a"
                       for k in ("cos_before", "cos_after", "delta_id"))  # fmt: skip
        if r.get("no_face_after"):
            cos += " (no face in the result)"
        out(f"{mark} {r['name']} try {r['try']} seed {r.get('seed')}: {r['state']} {cos} {r.get('output') or ''}".rstrip())
    out(f"results: {out_dir / 'likeness_results.csv'} and likeness_results.json")
    if code == EXIT_GATE:
        out(f"likeness gate: no try reached {getattr(args, 'min_similarity', None)}; the best try is kept (exit {EXIT_GATE})")
    out(("STAND-IN RANDOM WEIGHTS WERE USED; " if standin else "") + f"done in {seconds:.1f} s")
    return code
