"""The shipped workflows: UI files convert to the committed API copies, every value is valid for the live
server's node specs, and every workflow runs end to end on the stand-ins through /prompt."""

import json
import math
import uuid
from pathlib import Path

import numpy as np
import photos
import pytest
from likeness.client.params import fill, nodes_titled
from likeness.client.workflow_format import (
    FRONTEND_ONLY,
    NOTE_TYPES,
    _inside,
    bypass_group,
    input_specs,
    load_workflow,
    set_mode,
    ui_to_api,
)
from likeness.standins.substitution import USER_FILE_INPUTS, to_standins
from packinfo import shipped_workflows
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"
NAMES = shipped_workflows()
T1_CROP = (0, 200, 640, 480)  # x0, y0, x1, y1 of insightface's t1.jpg: two faces dlib scores 2.04 and 1.12
FACES_IN_CROP = ((67, 80, 176, 188), (462, 104, 570, 212))  # their dlib boxes in the crop, left to right


def _ui(name: str) -> dict:
    return load_workflow(name, api=False)


def _api(name: str) -> dict:
    return load_workflow(name)


@pytest.fixture(scope="module")
def object_info(comfy):
    return comfy.client.object_info()


def test_each_workflow_has_its_api_copy_and_thumbnail():
    assert sorted(p.stem for p in WORKFLOWS.glob("*.json")) == sorted(NAMES)
    for name in NAMES:
        ui = _ui(name)
        uuid.UUID(ui["id"])  # the editor's schema rejects a workflow id that is not a UUID
        assert ui["version"] == 0.4 and ui["last_node_id"] == max(n["id"] for n in ui["nodes"])
        assert ui["last_link_id"] == max(link[0] for link in ui["links"])
        assert (WORKFLOWS / "api" / f"{name}.json").is_file()
        with Image.open(WORKFLOWS / f"{name}.jpg") as thumb:  # the template browser asks for <name>.jpg
            assert thumb.format == "JPEG" and thumb.width >= 800


@pytest.mark.parametrize("name", NAMES)
def test_ui_workflow_converts_to_the_committed_api_copy(object_info, name):
    assert ui_to_api(_ui(name), object_info) == _api(name)


@pytest.mark.parametrize("name", NAMES)
def test_every_node_is_installed_titled_grouped_and_every_value_is_valid(object_info, name):
    ui = _ui(name)
    nodes = {n["id"]: n for n in ui["nodes"]}
    groups = [g["bounding"] for g in ui["groups"] if g["title"]]
    for n in ui["nodes"]:
        assert n["mode"] in (0, 2, 4) and isinstance(n["mode"], int), f"node {n['id']} mode {n['mode']!r}"
        if n["type"] in NOTE_TYPES:
            continue
        assert n["type"] in object_info, f"{n['type']} is not installed on the live server"
        assert n.get("title"), f"node {n['id']} ({n['type']}) has no title"
        assert any(_inside(n, g) for g in groups), (
            f"node {n['id']} '{n['title']}' lies outside every group"
        )
    for link_id, src, s_slot, dst, d_slot, kind in ui["links"]:
        out = nodes[src]["outputs"][s_slot]
        assert link_id in out["links"] and nodes[dst]["inputs"][d_slot]["link"] == link_id
        accepts = set(nodes[dst]["inputs"][d_slot]["type"].split(","))  # "*": any type (PreviewAny's source)
        assert "*" in accepts or set(kind.split(",")) & accepts, f"link {link_id} type"
    for nid, node in _api(name).items():
        specs = {s.name: s for s in input_specs(object_info[node["class_type"]])}
        for key, value in node["inputs"].items():
            spec = specs[key]
            where = f"{name}: node {nid} ({node['_meta']['title']}) input {key}={value!r}"
            if isinstance(value, list):
                assert value[0] in _api(name), where
                continue
            if spec.type == "COMBO":
                if (node["class_type"], key) not in USER_FILE_INPUTS:
                    assert value in spec.choices, where
            elif spec.type in ("INT", "FLOAT"):
                assert isinstance(value, (int, float)) and not isinstance(value, bool), where
                assert spec.type == "FLOAT" or isinstance(value, int), where
                assert spec.options.get("min", -math.inf) <= value <= spec.options.get("max", math.inf), where
            elif spec.type == "BOOLEAN":
                assert isinstance(value, bool), where
            elif spec.type == "STRING":
                assert isinstance(value, str), where
        missing = [s.name for s in specs.values() if s.required and s.name not in node["inputs"]]
        assert not missing, f"{name}: node {nid} lacks required inputs {missing}"


def test_recipe_values_are_the_seeds():
    whole = _api("likeness_enhance_whole")
    (ks,) = (whole[i]["inputs"] for i in nodes_titled(whole, "Sampler"))
    assert (ks["steps"], ks["denoise"], ks["cfg"], ks["sampler_name"], ks["scheduler"]) == (28, 0.75, 1.0, "euler", "beta")
    (pulid,) = (whole[i]["inputs"] for i in nodes_titled(whole, "Apply PuLID-Flux"))
    assert (pulid["weight"], pulid["start_at"], pulid["end_at"]) == (0.75, 0.1, 1.0)
    (cn,) = (whole[i]["inputs"] for i in nodes_titled(whole, "Apply Union ControlNet"))
    assert (cn["strength"], cn["start_percent"], cn["end_percent"]) == (0.8, 0.1, 0.8) and isinstance(cn["vae"], list)
    assert whole[cn["control_net"][0]]["inputs"]["mode"] == "tile"
    avatar = _api("likeness_avatar")
    (pulid,) = (avatar[i]["inputs"] for i in nodes_titled(avatar, "Apply PuLID-Flux"))
    assert (pulid["weight"], pulid["start_at"], pulid["end_at"]) == (0.4, 0.15, 0.9)
    (latent,) = (avatar[i]["inputs"] for i in nodes_titled(avatar, "Latent size"))
    assert (latent["width"], latent["height"]) == (896, 1216)
    (cn,) = (avatar[i]["inputs"] for i in nodes_titled(avatar, "Apply Union ControlNet"))
    assert avatar[cn["control_net"][0]]["inputs"]["mode"] == "pose"
    assert not any(n["class_type"] == "LoraLoaderModelOnly" for n in avatar.values()), "the LoRA ships bypassed"


def test_enabling_the_lora_puts_it_between_flux_and_pulid(object_info):
    api = ui_to_api(set_mode(_ui("likeness_avatar"), "LoRA", 0), object_info)
    (lora,) = nodes_titled(api, "LoRA")
    (pulid,) = nodes_titled(api, "Apply PuLID-Flux")
    assert api[pulid]["inputs"]["model"] == [lora, 0]
    assert api[api[lora]["inputs"]["model"][0]]["class_type"] == "UNETLoader"


def _bypass_face_2(ui: dict) -> dict:
    """What the Note tells a user with one face: bypass every node of the group 'Face 2' (Ctrl+B)."""
    out = bypass_group(ui, "Face 2")
    bypassed = {n["title"] for n in out["nodes"] if n["mode"] == 4}
    assert bypassed >= {"Reference image 2", "Sampler (face 2)", "Paste face back (face 2)"}
    assert not any("face 1" in t for t in bypassed)
    return out


def test_bypassing_face_2_leaves_a_one_face_graph(object_info):
    api = ui_to_api(_bypass_face_2(_ui("likeness_enhance_crop")), object_info)
    assert not [n for n in api.values() if n["_meta"]["title"].endswith("(face 2)")]
    (paste1,) = nodes_titled(api, "Paste face back (face 1)")
    (save,) = nodes_titled(api, "Save result")
    assert api[save]["inputs"]["images"] == [paste1, 0]


# -- running on the stand-ins ---------------------------------------------------------------------------
def _pose_skeleton(w: int = 224, h: int = 304) -> np.ndarray:
    """A stick figure with the left arm raised, OpenPose-style coloured limbs on black."""
    img = Image.new("RGB", (w, h))
    d = ImageDraw.Draw(img)
    pts = {"head": (112, 40), "neck": (112, 75), "hip": (112, 170), "lh": (60, 10), "le": (75, 60),
           "rh": (160, 150), "re": (150, 110), "lk": (90, 230), "lf": (85, 295), "rk": (135, 230), "rf": (140, 295)}
    limbs = [("head", "neck"), ("neck", "hip"), ("neck", "le"), ("le", "lh"), ("neck", "re"), ("re", "rh"),
             ("hip", "lk"), ("lk", "lf"), ("hip", "rk"), ("rk", "rf")]
    for i, (a, b) in enumerate(limbs):
        d.line([pts[a], pts[b]], fill=((60 + 40 * i) % 256, (200 - 30 * i) % 256, (90 * i) % 256), width=6)
    return np.asarray(img)


@pytest.fixture(scope="module")
def images(comfy):
    astronaut = photos.astronaut()
    # 252 px: dlib still finds the face, and 252 is not a multiple of 8 (the VAE crops to one)
    small = np.asarray(Image.fromarray(astronaut).resize((252, 252), Image.BICUBIC))
    x0, y0, x1, y1 = T1_CROP
    arrays = {
        "reference": astronaut,
        "reference_small": small,
        "reference_2": photos.grace_hopper(),
        "target": photos.degraded(small),
        "two_faces": np.ascontiguousarray(photos.group_t1()[y0:y1, x0:x1]),
        "pose": _pose_skeleton(),
    }
    names = {k: comfy.upload(v, f"wf_{k}.png") for k, v in arrays.items()}
    return names, arrays


def _run(comfy, name: str, params: dict, ui: dict | None = None, object_info=None):
    api = ui_to_api(ui, object_info) if ui is not None else _api(name)
    graph = to_standins(fill(api, **params), files=comfy.files, steps=2, size=128)
    return graph, comfy.run(graph)


def _output(graph: dict, result, title: str) -> dict:
    (nid,) = nodes_titled(graph, title)
    assert nid in result.outputs, f"'{title}' produced no output"
    return result.outputs[nid]


def test_enhance_whole_runs_on_standins(comfy, images):
    names, arrays = images
    graph, res = _run(comfy, "likeness_enhance_whole", {"reference": names["reference"], "target": names["target"], "seed": 3})
    (saved,) = _output(graph, res, "Save result")["images"]
    out = np.asarray(comfy.image(saved).convert("RGB"))
    assert out.shape == arrays["target"].shape and not np.array_equal(out, arrays["target"])
    (before,) = _output(graph, res, "Distance before")["likeness_face_distance"]
    assert before["no_face"] is False and 0 < before["distance"] < 1  # dlib on the degraded astronaut
    assert _output(graph, res, "Distance after")["likeness_face_distance"]
    (report,) = _output(graph, res, "Enhancement report")["likeness_report"]
    assert report["cos_before"] == pytest.approx(1 - before["distance"], abs=1e-6)
    (caption,) = _output(graph, res, "Caption")["text"]
    assert caption, "the tiny Florence-2 captioned the target"
    assert _output(graph, res, "Prompt used")["text"] == [caption], "the canvas preview shows the prompt used"


def test_enhance_crop_runs_on_standins_and_changes_only_the_faces(comfy, images):
    names, arrays = images
    params = {"reference": names["reference"], "reference_2": names["reference_2"], "target": names["two_faces"]}
    graph, res = _run(comfy, "likeness_enhance_crop", params)
    (saved,) = _output(graph, res, "Save result")["images"]
    out = np.asarray(comfy.image(saved).convert("RGB"))
    target = arrays["two_faces"]
    assert out.shape == target.shape
    changed = np.any(out != target, axis=-1)
    # both faces (t1 boxes shifted into the crop) were regenerated; the far corners were not touched
    for fx0, fy0, fx1, fy1 in FACES_IN_CROP:
        assert changed[fy0 + 20 : fy1 - 20, fx0 + 20 : fx1 - 20].mean() > 0.9
    # between the two 1.6x context boxes (x 34..208 and 430..603) nothing changes
    assert not changed[:, 250:400].any()
    assert len(_output(graph, res, "Enhancement report")["likeness_report"]) == 1
    for k in (1, 2):  # each face's caption, as used, in /history under its 'Prompt used' preview
        (used,) = _output(graph, res, f"Prompt used (face {k})")["text"]
        assert used and [used] == _output(graph, res, f"Caption (face {k})")["text"]


def test_enhance_crop_with_face_2_bypassed_runs_one_face(comfy, images, object_info):
    names, arrays = images
    ui = _bypass_face_2(_ui("likeness_enhance_crop"))
    graph, res = _run(comfy, "likeness_enhance_crop", {"reference": names["reference"], "target": names["two_faces"]}, ui, object_info)
    (saved,) = _output(graph, res, "Save result")["images"]
    changed = np.any(np.asarray(comfy.image(saved).convert("RGB")) != arrays["two_faces"], axis=-1)
    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = FACES_IN_CROP
    assert changed[ay0 + 20 : ay1 - 20, ax0 + 20 : ax1 - 20].mean() > 0.9, "face 1 regenerated"
    assert not changed[by0:by1, bx0:bx1].any(), "face 2 untouched"


def test_avatar_runs_on_standins(comfy, images):
    names, _ = images
    graph, res = _run(comfy, "likeness_avatar", {"reference": names["reference"], "pose": names["pose"]})
    (saved,) = _output(graph, res, "Save result")["images"]
    assert comfy.image(saved).size == (128, 176)  # 896x1216 scaled to the stand-in size, multiple of 16
    (row,) = _output(graph, res, "Identity distance")["likeness_face_distance"]
    assert "no_face" in row


def test_multi_id_puts_two_masked_identities_in_one_generation(comfy, images):
    names, _ = images
    params = {"reference": names["reference"], "reference_2": names["reference_2"], "seed": 5}
    graph, res = _run(comfy, "likeness_multi_id", params)
    (saved,) = _output(graph, res, "Save result")["images"]
    assert comfy.image(saved).size == (128, 80)  # 1216x832 scaled to the stand-in size, multiple of 16
    applies = nodes_titled(graph, "Apply PuLID-Flux")
    assert len(applies) == 2 and all(isinstance(graph[a]["inputs"].get("mask"), list) for a in applies)
    assert graph[applies[1]]["inputs"]["model"][0] == applies[0]  # chained: A then B on one model
    for title in ("Distance A", "Distance B"):
        assert "no_face" in _output(graph, res, title)["likeness_face_distance"][0]
    # without the masks, the same two identities everywhere give another image
    unmasked = json.loads(json.dumps(graph))
    for a in applies:
        unmasked[a]["inputs"].pop("mask")
    (other,) = comfy.run(unmasked).outputs[nodes_titled(graph, "Save result")[0]]["images"]
    assert not np.array_equal(np.asarray(comfy.image(other)), np.asarray(comfy.image(saved)))


def test_score_runs_and_scores_the_reference_as_itself(comfy, images):
    names, _ = images
    params = {"reference": names["reference_small"], "target": names["target"], "enhanced": names["reference_small"]}
    graph, res = _run(comfy, "likeness_score", params)
    (after,) = _output(graph, res, "Distance after")["likeness_face_distance"]
    (before,) = _output(graph, res, "Distance before")["likeness_face_distance"]
    assert after["distance"] == pytest.approx(0.0, abs=1e-6) and before["distance"] > after["distance"]
    (report,) = _output(graph, res, "Enhancement report")["likeness_report"]
    assert report["cos_after"] == pytest.approx(1.0, abs=1e-6) and report["delta_id"] > 0


def test_kontext_runs_on_standins_with_the_target_as_reference_latent(comfy, images):
    names, arrays = images
    api = _api("likeness_enhance_kontext")
    (refl,) = nodes_titled(api, "Target as reference latent")
    (enc,) = nodes_titled(api, "Encode target")
    (ks,) = nodes_titled(api, "Sampler")
    assert api[refl]["class_type"] == "ReferenceLatent" and api[refl]["inputs"]["latent"] == [enc, 0]
    assert api[api[ks]["inputs"]["model"][0]]["class_type"] == "LikenessApplyPulidFlux"
    params = {"reference": names["reference"], "target": names["target"], "seed": 3}
    graph, res = _run(comfy, "likeness_enhance_kontext", params)
    (saved,) = _output(graph, res, "Save result")["images"]
    out = np.asarray(comfy.image(saved).convert("RGB"))
    assert out.shape == arrays["target"].shape and not np.array_equal(out, arrays["target"])
    (before,) = _output(graph, res, "Distance before")["likeness_face_distance"]
    assert before["no_face"] is False
    assert len(_output(graph, res, "Enhancement report")["likeness_report"]) == 1
    graph0, res0 = _run(comfy, "likeness_enhance_kontext", {**params, "pulid_weight": 0.0})
    (saved0,) = _output(graph0, res0, "Save result")["images"]
    assert not np.array_equal(np.asarray(comfy.image(saved0).convert("RGB")), out), "PuLID acts in the Kontext edit"


def _with_paste_probe(graph: dict, hw: tuple[int, int], crop_side: int) -> dict:
    """The graph plus a probe: a white crop pasted onto black with the same crop_data and feather, thresholded at 0,
    so the probe image is 255 exactly where the paste mask is above 0 (where the real paste may change a pixel)."""
    g = json.loads(json.dumps(graph))
    (paste,) = nodes_titled(g, "Paste face back")
    inputs = g[paste]["inputs"]
    g["p1"] = {"class_type": "EmptyImage", "inputs": {"width": hw[1], "height": hw[0], "batch_size": 1, "color": 0}}
    g["p2"] = {"class_type": "EmptyImage", "inputs": {"width": crop_side, "height": crop_side, "batch_size": 1, "color": 0xFFFFFF}}
    g["p3"] = {"class_type": "LikenessPasteFaceBack", "inputs": {**inputs, "image": ["p1", 0], "crops": ["p2", 0]}}
    g["p4"] = {"class_type": "ImageToMask", "inputs": {"image": ["p3", 0], "channel": "red"}}
    g["p5"] = {"class_type": "ThresholdMask", "inputs": {"mask": ["p4", 0], "value": 0.0}}
    g["p6"] = {"class_type": "MaskToImage", "inputs": {"mask": ["p5", 0]}}
    g["p7"] = {"class_type": "PreviewImage", "inputs": {"images": ["p6", 0]}}
    return g


def test_kontext_crop_edits_only_the_face_crop_given_to_kontext_as_its_reference_latent(comfy, images):
    names, arrays = images
    api = _api("likeness_enhance_kontext_crop")
    (crop,) = nodes_titled(api, "Crop target")
    (enc,) = nodes_titled(api, "Encode face crop")
    (refl,) = nodes_titled(api, "Face crop as reference latent")
    (ks,) = nodes_titled(api, "Sampler")
    (paste,) = nodes_titled(api, "Paste face back")
    (target_id,) = nodes_titled(api, "Target image")
    assert api[crop]["class_type"] == "LikenessAutoCropFace" and api[enc]["inputs"]["pixels"] == [crop, 0]
    assert api[crop]["inputs"]["working_size"] % 16 == 0 and api[crop]["inputs"]["size_mode"] == "fixed"
    assert api[refl]["class_type"] == "ReferenceLatent" and api[refl]["inputs"]["latent"] == [enc, 0]
    assert api[ks]["inputs"]["latent_image"] == [enc, 0] and api[ks]["inputs"]["positive"][0] != refl  # via guidance
    assert api[api[ks]["inputs"]["positive"][0]]["inputs"]["conditioning"] == [refl, 0]
    assert api[api[ks]["inputs"]["model"][0]]["class_type"] == "LikenessApplyPulidFlux"
    assert api[paste]["inputs"]["image"] == [target_id, 0] and api[paste]["inputs"]["crop_data"] == [crop, 2]
    assert not any(n["class_type"] == "FluxKontextImageScale" for n in api.values())
    target = arrays["two_faces"]
    params = {"reference": names["reference"], "target": names["two_faces"], "seed": 3}
    graph = to_standins(fill(api, **params), files=comfy.files, steps=2, size=128)
    probed = _with_paste_probe(graph, target.shape[:2], 128)
    res = comfy.run(probed)
    (saved,) = _output(graph, res, "Save result")["images"]
    out = np.asarray(comfy.image(saved).convert("RGB"))
    (probe,) = res.outputs["p7"]["images"]
    inside = np.asarray(comfy.image(probe).convert("L")) > 0
    assert out.shape == target.shape and inside.shape == target.shape[:2]
    changed = np.any(out != target, axis=-1)
    assert not changed[~inside].any(), "pixels outside the paste mask are bit-identical to the target"
    assert 0.05 < inside.mean() < 0.5 and changed[inside].mean() > 0.5, "the face crop was edited and pasted back"
    boxes_changed = [changed[y0 + 20 : y1 - 20, x0 + 20 : x1 - 20].mean() for x0, y0, x1, y1 in FACES_IN_CROP]
    assert max(boxes_changed) > 0.9 and min(boxes_changed) == 0.0, "one face (the largest) edited, the other untouched"
    (before,) = _output(graph, res, "Distance before")["likeness_face_distance"]
    assert before["no_face"] is False
    assert len(_output(graph, res, "Enhancement report")["likeness_report"]) == 1
    graph0, res0 = _run(comfy, "likeness_enhance_kontext_crop", {**params, "pulid_weight": 0.0})
    (saved0,) = _output(graph0, res0, "Save result")["images"]
    out0 = np.asarray(comfy.image(saved0).convert("RGB"))
    assert not np.array_equal(out0[inside], out[inside]), "PuLID reaches the Kontext edit of the crop"
    assert np.array_equal(out0[~inside], out[~inside])


def test_flux2_runs_on_standins_with_several_reference_latents(comfy, images):
    names, arrays = images
    graph, res = _run(comfy, "likeness_enhance_flux2", {"reference": [names["reference"], names["reference_small"]], "target": names["target"]})
    assert any(n["class_type"] == "LikenessTestTinyFamily" and n["inputs"]["family"] == "flux2" for n in graph.values())
    (saved,) = _output(graph, res, "Save result")["images"]
    out = np.asarray(comfy.image(saved).convert("RGB"))
    target = arrays["target"]
    assert out.shape == target.shape
    changed = np.any(out != target, axis=-1)
    ys, xs = np.nonzero(changed)
    assert 0.02 < changed.mean() < 0.9, "the face crop was regenerated and pasted back, not the whole image"
    assert not changed[:8, :8].any() and not changed[-8:, -8:].any(), "the far corners are untouched"
    assert changed[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].mean() > 0.5, "one compact pasted region"
    (after,) = _output(graph, res, "Distance after")["likeness_face_distance"]
    assert "distance" in after
    graph1, res1 = _run(comfy, "likeness_enhance_flux2", {"reference": names["reference"], "target": names["target"]})
    (saved1,) = _output(graph1, res1, "Save result")["images"]
    assert not np.array_equal(np.asarray(comfy.image(saved1).convert("RGB")), out), "the references reach FLUX.2"


def test_frontend_only_nodes_never_reach_the_api_copies():
    for name in NAMES:
        assert not {n["class_type"] for n in _api(name).values()} & FRONTEND_ONLY
