"""The harness itself: a Flux text-to-image graph on the stand-ins through the real server."""

import numpy as np


def test_t2i_flux_graph_returns_png_of_the_right_size(comfy):
    from graphs import t2i_flux

    result = comfy.run(t2i_flux(size=128))
    images = result.images("10")
    assert len(images) == 1
    img = comfy.image(images[0])
    assert img.format == "PNG"
    assert img.size == (128, 128)
    arr = np.asarray(img)
    assert arr.std() > 1.0, "a random-weight Flux still gives a non-constant image"


def test_same_graph_twice_is_deterministic_and_prompt_changes_output(comfy):
    from graphs import t2i_flux

    a = np.asarray(comfy.image(comfy.run(t2i_flux(prompt="x", seed=3)).images("10")[0]))
    b = np.asarray(comfy.image(comfy.run(t2i_flux(prompt="x", seed=3)).images("10")[0]))
    c = np.asarray(comfy.image(comfy.run(t2i_flux(prompt="y", seed=3)).images("10")[0]))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_core_upscale_loader_reads_the_tiny_esrgan(comfy):
    graph = {
        "1": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": comfy.files["esrgan"]}},
        "2": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 1, "color": 0x336699}},
        "3": {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["1", 0], "image": ["2", 0]}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "esrgan"}},
    }
    img = comfy.image(comfy.run(graph).images("4")[0])
    assert img.size == (128, 128)
