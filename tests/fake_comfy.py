"""Tiny stand-ins for *other* HTTP servers a careless user points ``--server`` at (stdlib only, one thread):
an HTML page, a 404 server, a ComfyUI without the Likeness pack, a ComfyUI with the pack whose model lists
lack a file, or hold only the README's alternative names. Used to test the client's checks, never a node."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATS = {"system": {"os": "posix", "comfyui_version": "0.3.75"}, "devices": []}
STANDARD = {
    ("UNETLoader", "unet_name"): ["flux1-dev.safetensors"],
    ("DualCLIPLoader", "clip_name1"): ["clip_l.safetensors", "t5xxl_fp16.safetensors"],
    ("DualCLIPLoader", "clip_name2"): ["clip_l.safetensors", "t5xxl_fp16.safetensors"],
    ("VAELoader", "vae_name"): ["ae.safetensors"],
    ("ControlNetLoader", "control_net_name"): ["diffusion_pytorch_model.safetensors"],
    ("LikenessPulidFluxLoader", "pulid_file"): ["pulid_flux_v0.9.1.safetensors"],
    ("LikenessEvaClipLoader", "eva_file"): ["EVA02_CLIP_L_336_psz14_s6B.pt"],
    ("LikenessFaceAnalysisLoader", "model"): ["insightface: antelopev2"],
    ("UpscaleModelLoader", "model_name"): ["RealESRGAN_x4plus.pth"],
    ("LikenessFlorence2Loader", "model"): ["Florence-2-large"],
    ("LikenessFaceJudgeLoader", "model"): ["insightface: buffalo_l", "dlib (hog)"],
    ("LikenessApplyPulidFlux", "parsing_model"): ["parsing_bisenet.pth"],
}


def object_info(class_types: set[str], overrides: dict | None = None) -> dict:
    lists = {**STANDARD, **(overrides or {})}
    info: dict = {c: {"input": {"required": {}}} for c in class_types}
    for (cls, name), options in lists.items():
        info.setdefault(cls, {"input": {"required": {}}})["input"]["required"][name] = [options]
    return info


class FakeServer:
    """``mode``: 'html', '404', 'nopack', or 'comfy' (with ``info``). Records every POSTed /prompt."""

    def __init__(self, mode: str, info: dict | None = None):
        self.mode, self.info, self.prompts = mode, info or {}, []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def _send(self, code: int, body, ctype="application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if fake.mode == "html":
                    return self._send(200, b"<html><body>router login</body></html>", "text/html")
                if fake.mode == "404":
                    return self._send(404, b"not found", "text/plain")
                if self.path.startswith("/system_stats"):
                    return self._send(200, STATS)
                if self.path.startswith("/object_info"):
                    return self._send(200, {"KSampler": {}} if fake.mode == "nopack" else fake.info)
                return self._send(404, b"no", "text/plain")

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/upload/image"):
                    return self._send(200, {"name": "fake.png", "subfolder": "", "type": "input"})
                if self.path.startswith("/prompt"):
                    fake.prompts.append(json.loads(body))
                    return self._send(400, {"error": {"message": "fake server stops here", "details": ""}, "node_errors": {}})
                return self._send(404, b"no", "text/plain")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
