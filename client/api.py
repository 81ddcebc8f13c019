"""A small client for ComfyUI's REST API: queue a graph, follow it over /ws, read its outputs.

No torch and no ComfyUI import: it talks HTTP/WebSocket to a server, local or remote.
Contract (ComfyUI server.py): POST /prompt -> {"prompt_id"} or 400 {"error", "node_errors"};
GET /history/<id>; /ws?clientId= streams status/executing/progress/executed/execution_error;
POST /upload/image (multipart); GET /view.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from ..common.errors import LikenessError

log = logging.getLogger(__name__)


class ComfyError(LikenessError, RuntimeError):
    """Base class of the client's errors."""


class PromptRejected(ComfyError):
    """/prompt answered 400: the graph did not validate. The message names each node and input."""

    def __init__(self, payload: dict):
        self.payload = payload
        super().__init__(format_prompt_error(payload))


class ExecutionFailed(ComfyError):
    """The prompt was queued but a node raised while it ran."""

    def __init__(self, prompt_id: str, details: dict):
        self.prompt_id = prompt_id
        self.details = details
        node = details.get("node_type") or details.get("node_id") or "?"
        msg = details.get("exception_message") or details.get("message") or str(details)
        super().__init__(f"node {node} (id {details.get('node_id')}) failed: {msg.strip()}")


class ServerUnavailable(ComfyError):
    """The server could not be reached after the retries."""


class PromptLost(ComfyError):
    """The server no longer knows the prompt (neither queued nor in its history): it was restarted."""


def format_prompt_error(payload: dict) -> str:
    """Turn a /prompt 400 body into one readable message naming node, input and reason."""
    err = payload.get("error") or {}
    lines = [err.get("message", "prompt rejected") + (f": {err['details']}" if err.get("details") else "")]
    for node_id, info in (payload.get("node_errors") or {}).items():
        cls = info.get("class_type", "?")
        for e in info.get("errors", []):
            extra = e.get("extra_info") or {}
            where = f" input '{extra['input_name']}'" if extra.get("input_name") else ""
            lines.append(f"  node {node_id} ({cls}){where}: {e.get('message', '')} {e.get('details', '')}".rstrip())
    return "\n".join(lines)


@dataclass
class PromptResult:
    prompt_id: str
    outputs: dict[str, Any]
    status: dict[str, Any]
    events: list[dict] = field(default_factory=list)

    def images(self, node_id: str | None = None) -> list[dict]:
        """Image records ({filename, subfolder, type}) of one output node, or of all of them."""
        out = []
        for nid, node_out in self.outputs.items():
            if node_id is None or nid == str(node_id):
                out.extend(node_out.get("images", []))
        return out


class ComfyClient:
    """Talks to one ComfyUI server. Retries connection errors and 5xx with backoff."""

    def __init__(self, base_url: str, timeout: float = 30.0, retries: int = 4, backoff: float = 0.5):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.client_id = uuid.uuid4().hex

    # -- HTTP -----------------------------------------------------------------------------------
    def _request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> bytes:
        url = self.base_url + path
        delay = self.backoff
        for attempt in range(self.retries + 1):
            req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return resp.read()
            except urllib.error.HTTPError as e:
                if e.code >= 500 and attempt < self.retries:
                    log.warning("%s %s -> %s, retrying in %.1fs", method, path, e.code, delay)
                else:
                    raise
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                if attempt >= self.retries:
                    raise ServerUnavailable(f"{method} {url} failed after {attempt + 1} tries: {e}") from e
                log.warning("%s %s: %s, retrying in %.1fs", method, path, e, delay)
            time.sleep(delay)
            delay *= 2
        raise ServerUnavailable(f"{method} {url} failed")  # pragma: no cover - loop always returns or raises

    def get_json(self, path: str) -> Any:
        return json.loads(self._request("GET", path))

    def post_json(self, path: str, payload: dict) -> Any:
        data = json.dumps(payload).encode()
        return json.loads(self._request("POST", path, data, {"Content-Type": "application/json"}) or b"{}")

    # -- API ------------------------------------------------------------------------------------
    def system_stats(self) -> dict:
        return self.get_json("/system_stats")

    def object_info(self) -> dict:
        return self.get_json("/object_info")

    def queue_prompt(self, graph: dict, extra_data: dict | None = None) -> str:
        payload = {"prompt": graph, "client_id": self.client_id}
        if extra_data:
            payload["extra_data"] = extra_data
        try:
            out = self.post_json("/prompt", payload)
        except urllib.error.HTTPError as e:
            body = e.read()
            if e.code == 400:
                try:
                    raise PromptRejected(json.loads(body)) from None
                except json.JSONDecodeError:
                    pass
            raise ComfyError(f"/prompt answered {e.code}: {body[:500]!r}") from None
        if out.get("node_errors"):
            # ComfyUI runs the outputs that validated and drops the rest without failing the prompt; a
            # script would get half a result. Withdraw the prompt and report every invalid node instead.
            self.cancel(out["prompt_id"])
            raise PromptRejected({"error": {"message": "some outputs did not validate"}, "node_errors": out["node_errors"]})
        return out["prompt_id"]

    def cancel(self, prompt_id: str) -> None:
        """Remove a prompt from the queue, or interrupt it if it already runs (targeted: others are untouched)."""
        self.post_json("/queue", {"delete": [prompt_id]})
        self.post_json("/interrupt", {"prompt_id": prompt_id})

    def history(self, prompt_id: str) -> dict:
        return self.get_json(f"/history/{urllib.parse.quote(prompt_id)}").get(prompt_id, {})

    def history_all(self, max_items: int = 1000) -> dict:
        return self.get_json(f"/history?max_items={int(max_items)}")

    def queue(self) -> dict:
        """{"queue_running": [...], "queue_pending": [...]}; each item is [number, prompt_id, prompt, extra_data, ...]."""
        return self.get_json("/queue")

    def find_output(self, filename: str, subfolder: str = "", type: str = "output") -> bytes | None:
        """The bytes of an output file, or None when the server has no such file (404)."""
        try:
            return self.view(filename, subfolder, type)
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def view(self, filename: str, subfolder: str = "", type: str = "output") -> bytes:
        q = urllib.parse.urlencode({"filename": filename, "subfolder": subfolder, "type": type})
        return self._request("GET", f"/view?{q}")

    def upload_image(self, data: bytes, name: str, subfolder: str = "", overwrite: bool = False) -> dict:
        """Upload through /upload/image; returns {name, subfolder, type} as the server stored it."""
        boundary = uuid.uuid4().hex
        parts = []
        for key, value in (("overwrite", "true" if overwrite else "false"), ("subfolder", subfolder), ("type", "input")):
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode())
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
        parts.append(f"--{boundary}--\r\n".encode())
        body = b"".join(parts)
        raw = self._request("POST", "/upload/image", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        return json.loads(raw)

    # -- running --------------------------------------------------------------------------------
    def run(
        self,
        graph: dict,
        timeout: float = 600.0,
        on_event: Callable[[dict], None] | None = None,
    ) -> PromptResult:
        """Queue a graph and wait for it; events come from /ws, the result from /history.

        If the WebSocket cannot be opened or closes early, falls back to polling /history.
        """
        ws = self.open_ws()
        prompt_id = self.queue_prompt(graph)
        return self.wait(prompt_id, timeout, on_event, ws)

    def wait(self, prompt_id: str, timeout: float = 600.0, on_event: Callable[[dict], None] | None = None, ws: Any = None) -> PromptResult:
        """Wait for a queued prompt (following ``ws`` events when given) and return its result."""
        events: list[dict] = []
        deadline = time.monotonic() + timeout
        try:
            if ws is not None:
                self._follow_ws(ws, prompt_id, deadline, events, on_event)
        finally:
            if ws is not None:
                try:
                    ws.close()
                except Exception:  # noqa: BLE001 - closing a dead socket is not an error worth raising
                    pass
        entry = self._wait_history(prompt_id, deadline)
        status = entry.get("status", {})
        if status.get("status_str") == "error":
            details = {}
            for kind, data in status.get("messages", []):
                if kind == "execution_error":
                    details = data
            raise ExecutionFailed(prompt_id, details)
        return PromptResult(prompt_id, entry.get("outputs", {}), status, events)

    def open_ws(self):
        """A /ws connection for this client id, or None (then progress events are unavailable and callers poll)."""
        try:
            import websocket  # websocket-client
        except ImportError:
            log.warning("websocket-client is not installed; progress events are unavailable, polling /history")
            return None
        url = self.base_url.replace("http://", "ws://").replace("https://", "wss://") + f"/ws?clientId={self.client_id}"
        try:
            ws = websocket.create_connection(url, timeout=self.timeout)
        except Exception as e:  # noqa: BLE001 - any failure falls back to polling
            log.warning("could not open %s (%s); polling /history instead", url, e)
            return None
        return ws

    def _follow_ws(self, ws, prompt_id, deadline, events, on_event) -> None:
        while time.monotonic() < deadline:
            try:
                ws.settimeout(max(0.1, min(2.0, deadline - time.monotonic())))
                raw = ws.recv()
            except Exception as e:  # noqa: BLE001
                if type(e).__name__ == "WebSocketTimeoutException":
                    # Events go to the client that queued the prompt; a resumed client gets none, so look.
                    if self.history(prompt_id).get("status", {}).get("status_str") in ("success", "error"):
                        return
                    continue
                log.warning("/ws closed early (%s); polling /history", e)
                return
            if not isinstance(raw, str):
                continue  # binary preview frames
            msg = json.loads(raw)
            data = msg.get("data", {})
            if data.get("prompt_id") not in (None, prompt_id):
                continue
            msg["t"] = time.monotonic()
            events.append(msg)
            if on_event:
                on_event(msg)
            kind = msg.get("type")
            if kind in ("execution_error", "execution_interrupted"):
                return
            if kind == "executing" and data.get("node") is None and data.get("prompt_id") == prompt_id:
                return
            if kind == "execution_success" and data.get("prompt_id") == prompt_id:
                return

    def is_queued(self, prompt_id: str) -> bool:
        """Whether the prompt is running or pending on the server."""
        q = self.queue()
        return any(item[1] == prompt_id for item in q.get("queue_running", []) + q.get("queue_pending", []))

    def _wait_history(self, prompt_id: str, deadline: float) -> dict:
        last_queue_check = time.monotonic()
        while True:
            entry = self.history(prompt_id)
            if entry.get("status", {}).get("status_str") in ("success", "error"):
                return entry
            if time.monotonic() > deadline:
                raise ComfyError(f"prompt {prompt_id} did not finish in time")
            if not entry and time.monotonic() - last_queue_check > 1.0:
                last_queue_check = time.monotonic()
                # history before and after the queue look, so a prompt finishing in between is not "lost"
                if not self.is_queued(prompt_id) and not self.history(prompt_id):
                    raise PromptLost(f"{self.base_url} no longer knows prompt {prompt_id} (was it restarted?)")
            time.sleep(0.1)
