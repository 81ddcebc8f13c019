"""ui_to_standins: the stand-in switch applied to a UI workflow, so that a browser can open and queue it.

Checked here on a hand-written graph with /object_info entries trimmed from ComfyUI 0.3.75's (converted with
ui_to_api, it must give what to_standins gives for the converted original) and on the shipped files; the same
equality against the live server's /object_info is in tests/server/test_browser.py.
"""

import copy

import pytest
from likeness.client.workflow_format import WorkflowFormatError, load_workflow, ui_to_api, widget_slots
from likeness.standins.substitution import STANDIN_CLASSES, STANDIN_FILES, UI_WIDGET_INDEX, to_standins, ui_to_standins
from packinfo import shipped_workflows

SEED = ["INT", {"default": 0, "min": 0, "max": 2**31}]
INFO = {
    "UNETLoader": {
        "input": {"required": {"unet_name": [["flux1-dev.safetensors"], {}], "weight_dtype": [["default", "fp8_e4m3fn"], {}]}},
        "input_order": {"required": ["unet_name", "weight_dtype"]},
        "output": ["MODEL"], "output_name": ["MODEL"], "display_name": "Load Diffusion Model",
    },
    "LoraLoaderModelOnly": {
        "input": {"required": {"model": ["MODEL", {}], "lora_name": [["l.safetensors"], {}], "strength_model": ["FLOAT", {"default": 1.0}]}},
        "input_order": {"required": ["model", "lora_name", "strength_model"]},
        "output": ["MODEL"], "output_name": ["MODEL"], "display_name": "LoraLoaderModelOnly",
    },
    "LikenessPulidFluxLoader": {
        "input": {"required": {"pulid_file": [["pulid_flux_v0.9.1.safetensors"], {}], "dtype": [["auto", "bf16"], {}]}},
        "input_order": {"required": ["pulid_file", "dtype"]},
        "output": ["LIKENESS_PULID"], "output_name": ["pulid"], "display_name": "Load PuLID-Flux Model",
    },
    "EmptySD3LatentImage": {
        "input": {"required": {"width": ["INT", {"default": 1024}], "height": ["INT", {"default": 1024}], "batch_size": ["INT", {"default": 1}]}},
        "input_order": {"required": ["width", "height", "batch_size"]},
        "output": ["LATENT"], "output_name": ["LATENT"], "display_name": "EmptySD3LatentImage",
    },
    "KSampler": {
        "input": {"required": {
            "model": ["MODEL", {}],
            "seed": ["INT", {"default": 0, "min": 0, "control_after_generate": True}],
            "steps": ["INT", {"default": 20, "min": 1}],
            "latent_image": ["LATENT", {}],
        }},
        "input_order": {"required": ["model", "seed", "steps", "latent_image"]},
        "output": ["LATENT"], "output_name": ["LATENT"], "display_name": "KSampler",
    },
    "LikenessTestTinyFlux": {
        "input": {"required": {"seed": SEED}, "optional": {"depth": ["INT", {"default": 2}], "depth_single_blocks": ["INT", {"default": 4}]}},
        "input_order": {"required": ["seed"], "optional": ["depth", "depth_single_blocks"]},
        "output": ["MODEL"], "output_name": ["MODEL"], "display_name": "Test stand-in: TinyFlux",
    },
}


def _node(id_, type_, inputs=(), outputs=(), widgets=(), mode=0, title=None):
    return {"id": id_, "type": type_, "pos": [0, 0], "size": [200, 100], "flags": {}, "order": 0, "mode": mode,
            "inputs": list(inputs), "outputs": list(outputs), "properties": {"Node name for S&R": type_},
            "widgets_values": list(widgets), "title": title or type_}


def _graph() -> dict:
    """Flux -> LoRA -> KSampler on an empty latent, plus a PuLID loader: one of each substitution."""
    nodes = [
        _node(1, "UNETLoader", outputs=[{"name": "MODEL", "type": "MODEL", "links": [1]}],
              widgets=["flux1-dev.safetensors", "default"], title="Flux.1-dev"),
        _node(2, "LoraLoaderModelOnly", [{"name": "model", "type": "MODEL", "link": 1}],
              [{"name": "MODEL", "type": "MODEL", "links": [2]}], widgets=["l.safetensors", 0.8], title="LoRA"),
        _node(3, "EmptySD3LatentImage", outputs=[{"name": "LATENT", "type": "LATENT", "links": [3]}],
              widgets=[896, 1216, 1], title="Latent size"),
        _node(4, "KSampler", [{"name": "model", "type": "MODEL", "link": 2}, {"name": "latent_image", "type": "LATENT", "link": 3}],
              [{"name": "LATENT", "type": "LATENT", "links": []}], widgets=[42, "fixed", 28], title="Sampler"),
        _node(5, "LikenessPulidFluxLoader", outputs=[{"name": "pulid", "type": "LIKENESS_PULID", "links": []}],
              widgets=["pulid_flux_v0.9.1.safetensors", "auto"], title="PuLID-Flux"),
    ]
    links = [[1, 1, 0, 2, 0, "MODEL"], [2, 2, 0, 4, 0, "MODEL"], [3, 3, 0, 4, 1, "LATENT"]]
    return {"last_node_id": 5, "last_link_id": 3, "nodes": nodes, "links": links, "groups": [], "config": {},
            "extra": {}, "version": 0.4}


def _with_defaults(api: dict) -> dict:
    """The UI path also sends unset optional widgets at their defaults (the editor does too)."""
    out = copy.deepcopy(api)
    for node in out.values():
        opt = INFO[node["class_type"]]["input"].get("optional") or {}
        for name, (_, spec) in opt.items():
            node["inputs"].setdefault(name, spec["default"])
    return out


def test_converted_ui_standins_equal_the_api_standins():
    ui = _graph()
    files = {"pulid": "tiny_pulid.safetensors"}
    via_ui = ui_to_api(ui_to_standins(ui, files, steps=2, size=128), INFO)
    via_api = to_standins(ui_to_api(ui, INFO), files, steps=2, size=128)
    assert via_ui == _with_defaults(via_api)
    assert via_ui["1"] == {"class_type": "LikenessTestTinyFlux", "inputs": {"seed": 0, "depth": 2, "depth_single_blocks": 4},
                           "_meta": {"title": "Flux.1-dev"}}
    assert "2" not in via_ui and via_ui["4"]["inputs"]["model"] == ["1", 0], "the LoRA is bypassed, not deleted"
    assert via_ui["4"]["inputs"]["steps"] == 2
    assert (via_ui["3"]["inputs"]["width"], via_ui["3"]["inputs"]["height"]) == (128, 176)  # 896x1216, multiple of 16
    assert via_ui["5"]["inputs"]["pulid_file"] == "tiny_pulid.safetensors"


def test_the_ui_file_keeps_its_layout_and_the_original_is_untouched():
    ui = _graph()
    before = copy.deepcopy(ui)
    out = ui_to_standins(ui)
    assert ui == before
    flux = out["nodes"][0]
    assert flux["type"] == "LikenessTestTinyFlux" and flux["properties"]["Node name for S&R"] == "LikenessTestTinyFlux"
    assert flux["widgets_values"] == [0, "fixed"], "a seed widget is followed by the editor's control value"
    assert flux["outputs"] == before["nodes"][0]["outputs"] and out["links"] == before["links"]
    assert out["nodes"][1]["mode"] == 4
    assert out["nodes"][4]["widgets_values"][0] == STANDIN_FILES[("LikenessPulidFluxLoader", "pulid_file")][1]


def test_widget_indexes_agree_with_the_trimmed_specs():
    for (cls, name), index in UI_WIDGET_INDEX.items():
        if cls in INFO:
            assert widget_slots(INFO[cls])[index].name == name


def test_a_node_saved_without_the_widget_value_is_an_error():
    ui = _graph()
    ui["nodes"][3]["widgets_values"] = [42, "fixed"]  # no steps
    with pytest.raises(WorkflowFormatError, match=r"KSampler.*'steps'"):
        ui_to_standins(ui, steps=2)


@pytest.mark.parametrize("name", shipped_workflows())
def test_shipped_workflows_lose_every_core_loader(name):
    ui = load_workflow(name, api=False)
    out = ui_to_standins(ui, steps=2, size=128)
    types = {n["type"] for n in out["nodes"]}
    assert not types & set(STANDIN_CLASSES)
    assert len(out["nodes"]) == len(ui["nodes"]) and out["links"] == ui["links"]
    for node in out["nodes"]:
        for (cls, input_name), (_, default) in STANDIN_FILES.items():
            if node["type"] == cls:
                assert node["widgets_values"][UI_WIDGET_INDEX[(cls, input_name)]] == default
        if node["type"] == "KSampler":
            assert node["widgets_values"][UI_WIDGET_INDEX[("KSampler", "steps")]] == 2
