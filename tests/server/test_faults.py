"""Network faults the client meets: a server that never answers, 5xx answers, connection refused, and a /ws that
closes early. The fake servers here stand in for the network only; the /ws case runs on the live server."""

import http.server
import socket
import threading
import time

import pytest
from graphs import t2i_flux
from likeness.client.api import ComfyClient, ServerUnavailable


def _serve(handler_cls):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_cls)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_a_server_that_never_answers_times_out_with_retries():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections, never answers
    port = listener.getsockname()[1]
    client = ComfyClient(f"http://127.0.0.1:{port}", timeout=0.3, retries=2, backoff=0.05)
    t0 = time.monotonic()
    with pytest.raises(ServerUnavailable, match=r"failed after 3 tries"):
        client.system_stats()
    assert time.monotonic() - t0 < 5
    listener.close()


def test_5xx_answers_are_retried_with_backoff_then_succeed():
    calls = []

    class Flaky(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            calls.append(time.monotonic())
            code, body = (503, b"busy") if len(calls) < 3 else (200, b'{"system": {}}')
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = _serve(Flaky)
    try:
        assert ComfyClient(f"http://127.0.0.1:{srv.server_port}", retries=4, backoff=0.05).system_stats() == {"system": {}}
        assert len(calls) == 3 and calls[2] - calls[1] >= calls[1] - calls[0] > 0.04  # backoff doubles
    finally:
        srv.shutdown()


def test_connection_refused_names_the_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(ServerUnavailable, match=f"127.0.0.1:{port}"):
        ComfyClient(f"http://127.0.0.1:{port}", retries=1, backoff=0.01).system_stats()


def test_a_websocket_closed_early_falls_back_to_history(comfy):
    client = ComfyClient(comfy.server.url)
    real_open = client._open_ws

    class ClosesAfterOne:
        def __init__(self, ws):
            self.ws, self.n = ws, 0

        def settimeout(self, t):
            self.ws.settimeout(t)

        def recv(self):
            self.n += 1
            if self.n > 1:
                self.ws.close()
                raise ConnectionResetError("closed by the test")
            return self.ws.recv()

        def close(self):
            self.ws.close()

    client._open_ws = lambda: ClosesAfterOne(real_open())
    result = client.run(t2i_flux(prompt="ws closes", steps=6))
    assert result.images("10") and result.status.get("status_str") == "success"
