"""Apply PuLID-Flux on other base families through the live server, on stand-ins of ComfyUI's own classes.

Krea [dev] and schnell load as comfy.supported_models.Flux / FluxSchnell, Chroma as supported_models.Chroma
(comfy/ldm/chroma: no guidance embedding, modulations from its distilled approximator); each must run with PuLID,
change the image, and give the plain image at weight 0. FLUX.2, SD3, SDXL and Qwen-Image must be refused by the
Apply node itself (so before sampling) with the family and both widths named.
"""

import numpy as np
import pytest
from graphs import face_noise, t2i_flux, with_pulid
from likeness.client.api import ExecutionFailed


def _img(comfy, graph):
    return np.asarray(comfy.image(comfy.run(graph).images("10")[0]))


def _on(graph, family):
    graph["1"] = {"class_type": "LikenessTestTinyFamily", "inputs": {"family": family, "seed": 0}}
    return graph


@pytest.fixture(scope="module")
def ref(comfy):
    return comfy.upload(face_noise(21), "family_ref.png")


@pytest.mark.parametrize("family", ["krea", "flux_schnell", "chroma"])
def test_pulid_runs_on_flux_family_bases(comfy, ref, family):
    plain = _img(comfy, _on(t2i_flux(prompt="portrait", seed=7, steps=4), family))
    with_id = _img(comfy, _on(with_pulid(comfy, [ref], weight=1.0), family))
    assert plain.std() > 0 and not np.array_equal(with_id, plain)
    assert np.array_equal(_img(comfy, _on(with_pulid(comfy, [ref], weight=0.0), family)), plain)
    assert np.array_equal(_img(comfy, _on(with_pulid(comfy, [ref], start=1.0, end=1.0), family)), plain)


@pytest.mark.parametrize(
    "family, name, width",
    [
        ("flux2", "FLUX.2", "128 wide"),
        ("flux2_dev_full_size", "FLUX.2", "6144 wide"),
        ("sd3", "SD3", "has no Flux double/single blocks"),
        ("sdxl", "SDXL", "has no Flux double/single blocks"),
        ("qwen_image", "Qwen-Image", "has no Flux double/single blocks"),
    ],
)
def test_models_pulid_cannot_serve_are_refused_at_apply(comfy, ref, family, name, width):
    before = len(comfy.server.log_text())
    with pytest.raises(ExecutionFailed) as err:
        comfy.run(_on(with_pulid(comfy, [ref]), family))
    msg = str(err.value)
    assert err.value.details.get("node_type") == "LikenessApplyPulidFlux", msg
    assert f"it is {name} ({width})" in msg and "is 64 wide and made for FLUX.1" in msg, msg
    assert "likeness_enhance_flux2.json" in msg
    assert "Traceback" not in msg
    log = comfy.server.log_text()[before:]
    assert "reference(s):" not in log  # refused before the encoders ran, long before any sampling
