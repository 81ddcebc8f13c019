"""Run the hostile-input table (tests/hostile.py) against a checkout and count what a user would suffer:
tracebacks, wrong exit codes, more than one message line, --json runs without exactly one JSON object, and cases
where a file of the user changed or a file appeared outside the output folder.

    python benchmarks/hostile_table.py [--root CHECKOUT] [--tools]

``--root`` is a folder holding the pack (default: this checkout), e.g. ``git archive main | tar -x -C /tmp/m``;
an ``.importroot/likeness`` link is made inside it. Prints one line per failing case and the totals.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE / "tests"))
from fake_comfy import FakeServer, object_info  # noqa: E402
from hostile import CASES, TOOL_CASES, fill_argv, json_objects, make_sandbox, snapshot  # noqa: E402

log = logging.getLogger("hostile_table")


def _types(root: Path) -> set[str]:
    import json

    types = set()
    for f in (root / "workflows" / "api").glob("likeness_*.json"):
        types |= {n["class_type"] for n in json.loads(f.read_text()).values()}
    return types


def _run(root: Path, argv: list[str], cwd: Path, limit: float) -> subprocess.CompletedProcess:
    """The command; one that runs past ``limit`` s (it started a server and a job instead of refusing the input)
    is interrupted with SIGINT (so it stops what it started) and reported as exit -2."""
    env = {**os.environ, "PYTHONPATH": str(root / ".importroot")}
    proc = subprocess.Popen([sys.executable, "-m", "likeness.client", *argv], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        return subprocess.CompletedProcess(argv, -2, out, err + f"\n(ran past {limit:.0f} s)")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=HERE)
    ap.add_argument("--tools", action="store_true", help="also the eval/dataset cases (slower)")
    ap.add_argument("--limit", type=float, default=45.0, help="seconds before a case counts as 'started a run'")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    root = args.root.resolve()
    link = root / ".importroot" / "likeness"
    if not link.exists():
        link.parent.mkdir(exist_ok=True)
        link.symlink_to(root, target_is_directory=True)
    d = Path(tempfile.mkdtemp(prefix="hostile-"))
    make_sandbox(d)
    types = _types(root)
    servers = {"html": FakeServer("html"), "http404": FakeServer("404"), "nopack": FakeServer("nopack"),
               "nomodels": FakeServer("comfy", object_info(types, {("UNETLoader", "unet_name"): ["sdxl.safetensors"]})),
               "altmodels": FakeServer("comfy", object_info(types, {("UpscaleModelLoader", "model_name"): ["4x-UltraSharp.pth"]}))}  # fmt: skip
    values = {"d": str(d), "ref": str(d / "ref.png"), "tgt": str(d / "tgt.png"), "out": str(d / "out")}
    values.update({k: s.url for k, s in servers.items()})
    counts = dict.fromkeys(("cases", "traceback", "wrong_code", "message", "json", "user_files_changed"), 0)
    for cid, argv, code, pattern in CASES + (TOOL_CASES if args.tools else []):
        counts["cases"] += 1
        before = snapshot(d)
        p = _run(root, fill_argv(argv, values), d, args.limit)
        after = snapshot(d)
        pj = _run(root, [*fill_argv(argv, values), "--json"], d, args.limit)
        objs = json_objects(pj.stdout)
        bad = {
            "traceback": "Traceback" in p.stderr or "Traceback" in pj.stderr,
            "wrong_code": p.returncode != code,
            "message": not re.search(pattern, p.stderr),
            "json": not (len(objs) == 1 and isinstance(objs[0], dict) and objs[0].get("exit_code") == pj.returncode),
            "user_files_changed": any(after.get(k) != v for k, v in before.items())
            or any(k not in before and not k.startswith("out/") for k in after),
        }
        for k, v in bad.items():
            counts[k] += int(v)
        if any(bad.values()):
            log.info("%-28s exit %s (want %d) %s", cid, p.returncode, code, ", ".join(k for k, v in bad.items() if v))
    for s in servers.values():
        s.close()
    log.info("TOTAL %s", " ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
