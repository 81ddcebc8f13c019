"""Untrusted names and hosts: model names with '..' or absolute paths, upload names, and where the client connects."""

import socket

import numpy as np
import pytest
from graphs import t2i_flux
from likeness.client.api import ComfyClient, PromptRejected
from likeness.client.jobs import safe_upload_name


@pytest.mark.parametrize("name", ["../../../etc/passwd", "/etc/passwd", "..\\\\..\\\\secret.safetensors", "pulid/../../x.pt"])
def test_model_names_that_escape_the_folder_are_refused(comfy, name):
    g = t2i_flux()
    g["pl"] = {"class_type": "LikenessPulidFluxLoader", "inputs": {"pulid_file": name, "dtype": "auto"}}
    g["pv"] = {"class_type": "PreviewAny", "inputs": {"source": ["pl", 0]}}
    with pytest.raises(PromptRejected, match="pulid_file"):
        comfy.run(g)


@pytest.mark.parametrize("folder", ["../LLM", "/tmp", "a/../../b"])
def test_model_folder_names_that_escape_are_refused(comfy, folder):
    g = {
        "fl": {"class_type": "LikenessFlorence2Loader", "inputs": {"model": folder, "precision": "float32"}},
        "pv": {"class_type": "PreviewAny", "inputs": {"source": ["fl", 0]}},
    }
    with pytest.raises(PromptRejected, match="model"):
        comfy.run(g)


def test_upload_names_are_content_addressed_and_sanitised():
    data = b"\x89PNG fake bytes"
    evil = safe_upload_name(data, "../../../root/.ssh/authorized_keys")
    assert "/" not in evil and ".." not in evil and evil.startswith("likeness_authorized_keys_") and evil.endswith(".png")
    assert safe_upload_name(data, "a b;rm -rf.JPG").startswith("likeness_a_b_rm_-rf_") and evil.endswith(".png")
    assert safe_upload_name(data, "x.png") == safe_upload_name(data, "x.png")
    assert safe_upload_name(data, "x.png") != safe_upload_name(data + b"!", "x.png")


def test_the_client_connects_only_to_its_server(comfy, monkeypatch):
    seen = []
    real_connect = socket.socket.connect

    def record(self, address):
        seen.append(address[:2] if isinstance(address, tuple) else address)
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", record)
    client = ComfyClient(comfy.server.url)
    name = client.upload_image(b"\x89PNG\r\n\x1a\n" + np.zeros(16, np.uint8).tobytes(), safe_upload_name(b"x", "x.png"))["name"]
    assert name
    client.run(t2i_flux())
    assert seen, "the recorder saw the client's connections"
    assert set(seen) == {("127.0.0.1", comfy.server.port)}, seen
