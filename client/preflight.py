"""Every flag, URL and output folder checked before a server is started or contacted (exit 2, one line naming
the flag, the value and the fix); then, once a server answers, that it is ComfyUI with this pack (exit 3).
Ranges are the nodes' own (KSampler steps 1..10000, denoise 0..1; Apply PuLID-Flux weight 0..5)."""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urlparse

from .problems import InputError, ServerNotUsable
from .safe_names import check_name

# flag -> (attribute, low, high, whole number?); None bounds are open.
RANGES = {
    "--steps": ("steps", 1, 10000, True),
    "--denoise": ("denoise", 0.0, 1.0, False),
    "--weight": ("weight", 0.0, 5.0, False),
    "--seed": ("seed", 0, 2**64 - 1, True),
    "--min-similarity": ("min_similarity", -1.0, 1.0, False),
    "--max-tries": ("max_tries", 1, 1000, True),
    "--timeout": ("timeout", 1e-3, None, False),
    "--http-timeout": ("http_timeout", 1e-3, None, False),
    "--server-wait": ("server_wait", 0.0, None, False),
    "--workers": ("workers", 1, 64, True),
}
PACK_NODE = "LikenessApplyPulidFlux"


def check_flags(args: argparse.Namespace) -> None:
    for flag, (attr, low, high, whole) in RANGES.items():
        value = getattr(args, attr, None)
        if value is None:
            continue
        if not whole and not math.isfinite(value):
            raise InputError(f"{flag} {value} is not a finite number")
        if (low is not None and value < low) or (high is not None and value > high):
            span = f"{low}..{high}" if high is not None else f"> {low}" if low else f">= {low}"
            raise InputError(f"{flag} {value} is out of range: use {span}")
    if getattr(args, "name", None) is not None:
        check_name(args.name)
    if getattr(args, "server", None):
        args.server = check_url(args.server, "--server")
    for url in filter(None, (getattr(args, "servers", None) or "").split(",")):
        check_url(url.strip(), "--servers")
    for flag, attr in (("--comfyui", "comfyui"),):
        value = getattr(args, attr, None)
        if value and not Path(value).expanduser().is_dir():
            raise InputError(f"{flag} {value!r} is not a folder: give the folder that holds ComfyUI's main.py")
    check_output(Path(args.output).expanduser())
    if getattr(args, "journal", None):
        check_journal(Path(args.journal).expanduser())


def check_url(url: str, flag: str) -> str:
    """``url`` without a trailing slash when it is http(s)://host[:port][/path]; else InputError."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        hint = f"http://{url}" if "://" not in url else "http://127.0.0.1:8188"
        raise InputError(f"{flag} {url!r} is not an http(s) URL: write e.g. {hint!r}")
    try:
        _ = parsed.port
    except ValueError:
        raise InputError(f"{flag} {url!r} has a bad port: write e.g. 'http://127.0.0.1:8188'") from None
    return url.rstrip("/")


def _writable_folder(folder: Path, flag: str) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {str(folder)!r} is not writable: pick a folder you can write to")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".likeness-write-test-"):
            pass
    except OSError as err:
        raise InputError(f"{flag} {str(folder)!r} cannot be written ({err.strerror}): pick another folder") from None


def check_output(out: Path) -> None:
    """The output folder is a folder (or can be made) and is writable; nothing is created here."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--output {str(out)!r} is a file, not a folder: give a folder (it is created if missing)")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"--output {str(out)!r}: {str(parent)!r} is a file, so the folder cannot be made")
    _writable_folder(parent, "--output")


def check_journal(path: Path) -> None:
    if path.exists() and not path.is_file():
        raise InputError(f"--journal {str(path)!r} is a folder: give a file name (e.g. {str(path / 'journal.sqlite')!r})")
    parent = path.parent if path.parent.exists() else path.parent
    if parent.exists():
        _writable_folder(parent, "--journal")


def check_server(client, url: str, class_types: set[str]) -> dict:
    """/object_info of a server that is ComfyUI with this pack and every node the workflows use; else exit 3."""
    try:
        stats = client.system_stats()
    except HTTPError as err:
        raise ServerNotUsable(f"{url} answers HTTP {err.code} to /system_stats, so it is not ComfyUI; check the URL and port") from None
    except ValueError as err:  # answered, but not JSON
        raise ServerNotUsable(f"{url} answers HTTP but is not ComfyUI (/system_stats is not JSON: {err}); check the URL and port") from None
    if not isinstance(stats, dict) or "system" not in stats:
        raise ServerNotUsable(f"{url} answers HTTP but is not ComfyUI (/system_stats has no 'system'); check the URL and port")
    try:
        info = client.object_info()
    except (HTTPError, ValueError) as err:
        raise ServerNotUsable(f"{url} answers /system_stats but not /object_info ({err}): is it ComfyUI?") from None
    if PACK_NODE not in info:
        raise ServerNotUsable(
            f"{url} is ComfyUI but lacks the Likeness pack (no {PACK_NODE} node): install it into custom_nodes "
            "and restart that server (its log says 'IMPORT FAILED' if it did not load)"
        )
    missing = sorted(class_types - set(info))
    if missing:
        raise ServerNotUsable(f"{url} lacks nodes {missing} that the workflow uses: update ComfyUI / the pack and restart it")
    return info
