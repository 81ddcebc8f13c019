"""UI -> API conversion on small hand-written UI graphs (the rules the ComfyUI frontend applies on Queue)."""

import copy

import pytest
from likeness.client.params import WorkflowParameterError, fill
from likeness.client.workflow_format import WorkflowFormatError, is_api_format, load_workflow, set_mode, ui_to_api
from likeness.standins.substitution import to_standins

# /object_info entries as ComfyUI 0.3.75 serves them (trimmed to what the converter reads).
INFO = {
    "LoadImage": {
        "input": {"required": {"image": [["a.png", "b.png"], {"image_upload": True}]}},
        "input_order": {"required": ["image"]},
        "output": ["IMAGE", "MASK"], "output_name": ["IMAGE", "MASK"], "display_name": "Load Image",
    },
    "ImageInvert": {
        "input": {"required": {"image": ["IMAGE", {}]}},
        "output": ["IMAGE"], "output_name": ["IMAGE"], "display_name": "Invert Image",
    },
    "KSampler": {
        "input": {"required": {
            "model": ["MODEL", {}],
            "seed": ["INT", {"default": 0, "min": 0, "max": 2**64 - 1, "control_after_generate": True}],
            "steps": ["INT", {"default": 20, "min": 1, "max": 10000}],
            "cfg": ["FLOAT", {"default": 8.0}],
            "sampler_name": [["euler", "heun"], {}],
            "positive": ["CONDITIONING", {}],
        }},
        "input_order": {"required": ["model", "seed", "steps", "cfg", "sampler_name", "positive"]},
        "output": ["LATENT"], "output_name": ["LATENT"], "display_name": "KSampler",
    },
    "RandomNoise": {  # a seed INT without the explicit flag: the frontend adds the control value by name
        "input": {"required": {"noise_seed": ["INT", {"default": 0, "min": 0}]}},
        "output": ["NOISE"], "output_name": ["NOISE"], "display_name": "RandomNoise",
    },
    "UNETLoader": {
        "input": {"required": {"unet_name": [["flux.safetensors"], {}]}},
        "output": ["MODEL"], "output_name": ["MODEL"], "display_name": "Load Diffusion Model",
    },
    "LoraLoaderModelOnly": {
        "input": {"required": {"model": ["MODEL", {}], "lora_name": [["l.safetensors"], {}], "strength_model": ["FLOAT", {"default": 1.0}]}},
        "input_order": {"required": ["model", "lora_name", "strength_model"]},
        "output": ["MODEL"], "output_name": ["MODEL"], "display_name": "LoraLoaderModelOnly",
    },
    "CLIPTextEncode": {
        "input": {"required": {"text": ["STRING", {"multiline": True}], "clip": ["CLIP", {}]}},
        "input_order": {"required": ["text", "clip"]},
        "output": ["CONDITIONING"], "output_name": ["CONDITIONING"], "display_name": "CLIP Text Encode (Prompt)",
    },
    "Captioner": {  # optional widget after required ones; new-style COMBO spec; a forceInput STRING
        "input": {
            "required": {"image": ["IMAGE", {}], "task": ["COMBO", {"options": ["caption", "detailed"]}],
                         "hint": ["STRING", {"forceInput": True}]},
            "optional": {"beams": ["INT", {"default": 3}], "captioner": ["CAPTIONER", {}]},
        },
        "input_order": {"required": ["image", "task", "hint"], "optional": ["beams", "captioner"]},
        "output": ["STRING"], "output_name": ["prompt"], "display_name": "Caption",
    },
    "ModelPatch": {  # output 0 is MODEL but input 0 is CLIP: bypass must pick the MODEL input
        "input": {"required": {"clip": ["CLIP", {}], "model": ["MODEL", {}], "tags": [["a", "b"], {"multiselect": True}]}},
        "input_order": {"required": ["clip", "model", "tags"]},
        "output": ["MODEL"], "output_name": ["MODEL"], "display_name": "Model Patch",
    },
    "SaveImage": {
        "input": {"required": {"images": ["IMAGE", {}], "filename_prefix": ["STRING", {"default": "ComfyUI"}]}},
        "input_order": {"required": ["images", "filename_prefix"]},
        "output": [], "output_name": [], "display_name": "Save Image",
    },
}


def node(id_, type_, inputs=(), outputs=(), widgets=None, mode=0, title=None):
    n = {
        "id": id_, "type": type_, "pos": [0, 0], "size": [200, 100], "flags": {}, "order": 0, "mode": mode,
        "inputs": [dict(i) for i in inputs], "outputs": [dict(o) for o in outputs], "properties": {},
        "widgets_values": list(widgets) if widgets is not None else [],
    }
    if title:
        n["title"] = title
    return n


def inp(name, type_, link=None, widget=False):
    d = {"name": name, "type": type_, "link": link}
    if widget:
        d["widget"] = {"name": name}
    return d


def out(name, type_, links=()):
    return {"name": name, "type": type_, "links": list(links)}


def workflow(nodes, links):
    return {"last_node_id": max(n["id"] for n in nodes), "last_link_id": len(links), "nodes": nodes, "links": links,
            "groups": [], "config": {}, "extra": {}, "version": 0.4}


def load_invert_save(invert_mode=0):
    return workflow(
        [
            node(1, "LoadImage", outputs=[out("IMAGE", "IMAGE", [1]), out("MASK", "MASK")], widgets=["a.png", "image"], title="Reference image"),
            node(2, "ImageInvert", [inp("image", "IMAGE", 1)], [out("IMAGE", "IMAGE", [2])], mode=invert_mode),
            node(3, "SaveImage", [inp("images", "IMAGE", 2)], widgets=["out"]),
        ],
        [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"]],
    )


def test_plain_graph_upload_value_skipped_titles_from_node_or_display_name():
    api = ui_to_api(load_invert_save(), INFO)
    assert api == {
        "1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}, "_meta": {"title": "Reference image"}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}, "_meta": {"title": "Invert Image"}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "out"}, "_meta": {"title": "Save Image"}},
    }
    assert is_api_format(api) and not is_api_format(load_invert_save())


def test_bypassed_node_is_removed_and_its_output_rewired_to_its_input():
    api = ui_to_api(load_invert_save(invert_mode=4), INFO)
    assert "2" not in api
    assert api["3"]["inputs"]["images"] == ["1", 0]


def test_bypass_matches_by_type_not_position():
    # LoRA bypassed between a loader and a sampler: MODEL output 0 -> the first MODEL input
    ui = workflow(
        [
            node(1, "UNETLoader", outputs=[out("MODEL", "MODEL", [1])], widgets=["flux.safetensors"]),
            node(2, "LoraLoaderModelOnly", [inp("model", "MODEL", 1)], [out("MODEL", "MODEL", [2])], widgets=["l.safetensors", 0.8], mode=4),
            node(3, "KSampler", [inp("model", "MODEL", 2), inp("positive", "CONDITIONING")], [out("LATENT", "LATENT")],
                 widgets=[5, "randomize", 4, 1.0, "euler"]),
        ],
        [[1, 1, 0, 2, 0, "MODEL"], [2, 2, 0, 3, 0, "MODEL"]],
    )
    api = ui_to_api(ui, INFO)
    assert set(api) == {"1", "3"}
    assert api["3"]["inputs"]["model"] == ["1", 0]
    ui["nodes"][1]["mode"] = 0
    assert ui_to_api(ui, INFO)["3"]["inputs"]["model"] == ["2", 0]


def test_bypass_skips_an_input_of_another_type_at_the_same_index_and_list_values_are_wrapped():
    ui = workflow(
        [
            node(1, "UNETLoader", outputs=[out("MODEL", "MODEL", [1])], widgets=["flux.safetensors"]),
            node(2, "ModelPatch", [inp("clip", "CLIP"), inp("model", "MODEL", 1)], [out("MODEL", "MODEL", [2])], widgets=[["a", "b"]]),
            node(3, "LoraLoaderModelOnly", [inp("model", "MODEL", 2)], [out("MODEL", "MODEL")], widgets=["l.safetensors", 0.5]),
        ],
        [[1, 1, 0, 2, 1, "MODEL"], [2, 2, 0, 3, 0, "MODEL"]],
    )
    assert ui_to_api(ui, INFO)["2"]["inputs"]["tags"] == {"__value__": ["a", "b"]}
    ui["nodes"][1]["mode"] = 4
    assert ui_to_api(ui, INFO)["3"]["inputs"]["model"] == ["1", 0]


def test_muted_node_is_left_out_and_inputs_it_fed_are_dropped():
    api = ui_to_api(load_invert_save(invert_mode=2), INFO)
    assert "2" not in api
    assert "images" not in api["3"]["inputs"]
    # also a widget converted to an input: the frontend sends neither the link nor the stored value
    ui = load_invert_save()
    ui["nodes"].append(node(4, "Captioner", [inp("image", "IMAGE")], [out("prompt", "STRING", [3])], widgets=["caption", 3], mode=2))
    ui["nodes"].append(node(5, "CLIPTextEncode", [inp("clip", "CLIP"), inp("text", "STRING", 3, widget=True)], [], widgets=["stored"]))
    ui["links"].append([3, 4, 0, 5, 1, "STRING"])
    assert ui_to_api(ui, INFO)["5"]["inputs"] == {}


def test_notes_are_left_out():
    ui = load_invert_save()
    ui["nodes"].append(node(9, "Note", widgets=["read me"]))
    ui["nodes"].append(node(10, "MarkdownNote", widgets=["**read me**"]))
    assert set(ui_to_api(ui, INFO)) == {"1", "2", "3"}


def test_reroutes_are_followed_even_chained():
    ui = workflow(
        [
            node(1, "LoadImage", outputs=[out("IMAGE", "IMAGE", [1])], widgets=["b.png", "image"]),
            node(2, "Reroute", [inp("", "*", 1)], [out("", "IMAGE", [2])]),
            node(3, "Reroute", [inp("", "*", 2)], [out("", "IMAGE", [3])]),
            node(4, "ImageInvert", [inp("image", "IMAGE", 3)], [out("IMAGE", "IMAGE")]),
        ],
        [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "*"], [3, 3, 0, 4, 0, "IMAGE"]],
    )
    api = ui_to_api(ui, INFO)
    assert set(api) == {"1", "4"}
    assert api["4"]["inputs"]["image"] == ["1", 0]


def test_control_after_generate_values_are_skipped_explicit_and_by_name():
    ui = workflow(
        [
            node(1, "KSampler", [inp("model", "MODEL"), inp("positive", "CONDITIONING")], [out("LATENT", "LATENT")],
                 widgets=[123, "fixed", 7, 2.5, "heun"]),
            node(2, "RandomNoise", outputs=[out("NOISE", "NOISE")], widgets=[99, "increment"]),
        ],
        [],
    )
    api = ui_to_api(ui, INFO)
    assert api["1"]["inputs"] == {"seed": 123, "steps": 7, "cfg": 2.5, "sampler_name": "heun"}
    assert api["2"]["inputs"] == {"noise_seed": 99}


def test_primitive_node_value_replaces_the_link_and_the_stale_widget_value():
    ui = workflow(
        [
            node(1, "PrimitiveNode", outputs=[{"name": "INT", "type": "INT", "widget": {"name": "steps"}, "links": [1]}],
                 widgets=[12, "fixed"], title="steps"),
            node(2, "KSampler", [inp("model", "MODEL"), inp("positive", "CONDITIONING"), inp("steps", "INT", 1, widget=True)],
                 [out("LATENT", "LATENT")], widgets=[1, "fixed", 3, 1.0, "euler"]),
        ],
        [[1, 1, 0, 2, 2, "INT"]],
    )
    api = ui_to_api(ui, INFO)
    assert set(api) == {"2"}
    assert api["2"]["inputs"]["steps"] == 12


def test_widget_converted_to_input_takes_the_link():
    ui = workflow(
        [
            node(1, "LoadImage", outputs=[out("IMAGE", "IMAGE", [1])], widgets=["a.png", "image"]),
            node(2, "Captioner", [inp("image", "IMAGE", 1), inp("hint", "STRING"), inp("captioner", "CAPTIONER")],
                 [out("prompt", "STRING", [2])], widgets=["detailed", 5]),
            node(3, "CLIPTextEncode", [inp("clip", "CLIP"), inp("text", "STRING", 2, widget=True)], [out("CONDITIONING", "CONDITIONING")],
                 widgets=["typed text, ignored"]),
        ],
        [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 1, "STRING"]],
    )
    api = ui_to_api(ui, INFO)
    assert api["3"]["inputs"] == {"text": ["2", 0]}
    # forceInput STRINGs are sockets, not widgets: the two values are task and the optional beams
    assert api["2"]["inputs"] == {"image": ["1", 0], "task": "detailed", "beams": 5}


def test_missing_trailing_optional_widget_takes_its_default_and_extra_values_are_an_error():
    ui = workflow([node(1, "Captioner", [inp("image", "IMAGE")], [out("prompt", "STRING")], widgets=["caption"])], [])
    assert ui_to_api(ui, INFO)["1"]["inputs"] == {"task": "caption", "beams": 3}
    ui["nodes"][0]["widgets_values"] = ["caption", 3, "surplus"]
    with pytest.raises(WorkflowFormatError, match=r"node 1 \(Captioner\) has 3 widget values .* 2 widget slots"):
        ui_to_api(ui, INFO)


def test_unknown_node_type_names_the_node_and_the_fix():
    ui = load_invert_save()
    ui["nodes"][1]["type"] = "SomePackNode"
    with pytest.raises(WorkflowFormatError, match=r"node 2 \(SomePackNode\).*node type SomePackNode is not installed on the server"):
        ui_to_api(ui, INFO)


def test_broken_links_and_non_ui_input_are_errors():
    ui = load_invert_save()
    ui["links"] = ui["links"][1:]
    with pytest.raises(WorkflowFormatError, match="link 1 .* missing"):
        ui_to_api(ui, INFO)
    with pytest.raises(WorkflowFormatError, match="not a UI workflow"):
        ui_to_api({"1": {"class_type": "LoadImage", "inputs": {}}}, INFO)


def test_set_mode_unbypasses_by_title():
    ui = load_invert_save(invert_mode=4)
    ui["nodes"][1]["title"] = "LoRA"
    assert "2" in ui_to_api(set_mode(ui, "LoRA", 0), INFO)
    assert ui["nodes"][1]["mode"] == 4, "set_mode copies"
    with pytest.raises(WorkflowFormatError, match="no node titled 'Nope'"):
        set_mode(ui, "Nope", 0)


# -- fill and stand-ins on API graphs -------------------------------------------------------------------
API = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "reference.png"}, "_meta": {"title": "Reference image"}},
    "2": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 28, "model": ["5", 0]}, "_meta": {"title": "Sampler (face 1)"}},
    "3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 28, "model": ["6", 0]}, "_meta": {"title": "Sampler (face 2)"}},
    "4": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}, "_meta": {"title": "Invert"}},
    "5": {"class_type": "UNETLoader", "inputs": {"unet_name": "flux1-dev.safetensors", "weight_dtype": "default"}, "_meta": {"title": "Flux.1-dev"}},
    "6": {"class_type": "LoraLoaderModelOnly", "inputs": {"model": ["5", 0], "lora_name": "x", "strength_model": 1.0}, "_meta": {"title": "LoRA"}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": ["8", 0], "clip": ["9", 0]}, "_meta": {"title": "Prompt"}},
}


def test_fill_sets_every_matching_title_and_leaves_the_input_alone():
    api = copy.deepcopy(API)
    filled = fill(api, seed=7, reference="me.png")
    assert filled["2"]["inputs"]["seed"] == 7 and filled["3"]["inputs"]["seed"] == 7
    assert filled["1"]["inputs"]["image"] == "me.png"
    assert api == API


def test_fill_batches_several_reference_images():
    filled = fill(API, reference=["a.png", "b.png", "c.png"])
    batches = [k for k, v in filled.items() if v["class_type"] == "ImageBatch"]
    assert len(batches) == 2
    last = filled["4"]["inputs"]["image"]
    assert filled[last[0]]["class_type"] == "ImageBatch"
    loads = sorted(v["inputs"]["image"] for v in filled.values() if v["class_type"] == "LoadImage")
    assert loads == ["a.png", "b.png", "c.png"]


def test_fill_errors_name_the_parameter_and_the_fix():
    with pytest.raises(WorkflowParameterError, match="unknown workflow parameter 'colour'"):
        fill(API, colour=1)
    with pytest.raises(WorkflowParameterError, match="needs a node titled 'Pose image'"):
        fill(API, pose="p.png")
    with pytest.raises(WorkflowParameterError, match="wired to node 8"):
        fill(API, prompt="a photo")


def test_to_standins_swaps_core_loaders_and_bypasses_the_lora():
    stand = to_standins(API, steps=2)
    assert stand["5"] == {"class_type": "LikenessTestTinyFlux", "inputs": {"seed": 0}, "_meta": {"title": "Flux.1-dev"}}
    assert "6" not in stand and stand["3"]["inputs"]["model"] == ["5", 0]
    assert stand["2"]["inputs"]["steps"] == 2


def test_load_workflow_names_the_shipped_ones_when_unknown():
    assert is_api_format(load_workflow("likeness_score"))
    assert not is_api_format(load_workflow("likeness_score", api=False))
    with pytest.raises(WorkflowFormatError, match="shipped: .*likeness_enhance_whole"):
        load_workflow("likeness_enhance")
