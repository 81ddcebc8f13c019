"""The contract between the shipped workflows, the nodes and the REST client, written once (stdlib only).

A client sets parameters through node titles and never needs node ids: a node matches title T when its title
is T or starts with "T (" — so "Sampler (face 1)" and "Sampler (face 2)" both take ``seed``. The workflow
builder (scripts/build_workflows.py) names nodes with these titles, the nodes publish their results under the
/history keys below, and the client reads them back; tests/unit/test_contract.py fails when a shipped
workflow drifts from this file.
"""

from __future__ import annotations

# -- node titles a client fills or reads ---------------------------------------------------------------
REFERENCE = "Reference image"
REFERENCE_2 = "Reference image 2"
TARGET = "Target image"
ENHANCED = "Enhanced image"
POSE = "Pose image"
CAPTION = "Caption"
PROMPT_USED = "Prompt used"  # core Preview as Text after each Caption: /history outputs[id]["text"] = [prompt]
ENHANCEMENT_REPORT = "Enhancement report"
PROMPT = "Prompt"
SAMPLER = "Sampler"
APPLY_PULID = "Apply PuLID-Flux"
APPLY_CONTROL = "Apply Union ControlNet"
LATENT_SIZE = "Latent size"
CROP_TARGET = "Crop target"
FACE_JUDGE = "Face judge"
LORA = "LoRA"
SAVE_RESULT = "Save result"
# Face Embed Distance nodes: the client files their record under the suffix of the title.
DISTANCE_BEFORE = "Distance before"
DISTANCE_AFTER = "Distance after"
IDENTITY_DISTANCE = "Identity distance"

# parameter -> [(title, input name), ...]; a parameter sets every matching node.
#   reference / reference_2 / target / enhanced / pose: LoadImage ``image`` (a list of reference names is
#   batched with ImageBatch); prompt: LikenessCaption ``manual_prompt`` or CLIPTextEncode ``text``;
#   judge: LikenessFaceJudgeLoader ``model`` (e.g. "dlib (hog)"); lora: LoraLoaderModelOnly, which ships
#   bypassed, so the API copy has no LoRA node (enable it in the UI workflow and convert).
PARAMETERS: dict[str, list[tuple[str, str]]] = {
    "reference": [(REFERENCE, "image")],
    "reference_2": [(REFERENCE_2, "image")],
    "target": [(TARGET, "image")],
    "enhanced": [(ENHANCED, "image")],
    "pose": [(POSE, "image")],
    "prompt": [(CAPTION, "manual_prompt"), (PROMPT, "text")],
    "seed": [(SAMPLER, "seed")],
    "steps": [(SAMPLER, "steps")],
    "denoise": [(SAMPLER, "denoise")],
    "pulid_weight": [(APPLY_PULID, "weight")],
    "pulid_start": [(APPLY_PULID, "start_at")],
    "pulid_end": [(APPLY_PULID, "end_at")],
    "control_strength": [(APPLY_CONTROL, "strength")],
    "control_start": [(APPLY_CONTROL, "start_percent")],
    "control_end": [(APPLY_CONTROL, "end_percent")],
    "width": [(LATENT_SIZE, "width")],
    "height": [(LATENT_SIZE, "height")],
    "working_size": [(CROP_TARGET, "working_size")],
    "judge": [(FACE_JUDGE, "model")],
    "lora": [(LORA, "lora_name")],
    "lora_strength": [(LORA, "strength_model")],
    "output_prefix": [(SAVE_RESULT, "filename_prefix")],
}
IMAGE_PARAMETERS = ("reference", "reference_2", "target", "enhanced", "pose")

# -- the shipped workflows (workflows/<name>.json, API copy workflows/api/<name>.json) ----------------------
WORKFLOW_ENHANCE_WHOLE = "likeness_enhance_whole"
WORKFLOW_ENHANCE_CROP = "likeness_enhance_crop"
WORKFLOW_SCORE = "likeness_score"
WORKFLOW_AVATAR = "likeness_avatar"
WORKFLOW_MULTI_ID = "likeness_multi_id"  # two masked Apply PuLID-Flux nodes: two people in one generation
WORKFLOW_ENHANCE_KONTEXT = "likeness_enhance_kontext"  # FLUX.1 Kontext edit of the target + PuLID
WORKFLOW_ENHANCE_KONTEXT_CROP = "likeness_enhance_kontext_crop"  # the Kontext edit of the face crop, pasted back
WORKFLOW_ENHANCE_FLUX2 = "likeness_enhance_flux2"  # FLUX.2 reference latents on the face crop, pasted back

# -- the subgraph blueprints (subgraphs/<name>.json; the editor shows the file name as the node's name) ------
BLUEPRINT_ENHANCE_WHOLE = "Likeness - Enhance face (whole image)"
BLUEPRINT_ENHANCE_CROP = "Likeness - Enhance faces (crop and paste)"
BLUEPRINT_SCORE = "Likeness - Score identity"

# -- /history: what the nodes publish under outputs[node_id] ------------------------------------------------
HISTORY_FACE_DISTANCE = "likeness_face_distance"  # Face Embed Distance: one record per image
HISTORY_REPORT = "likeness_report"  # Enhancement Report: one row
HISTORY_TEXT = "text"  # Caption and Prompt used: the prompt as used, one string
# The Enhancement Report row's fields that a result row carries.
REPORT_FIELDS = (
    "cos_before", "cos_after", "delta_id", "ssim_outside", "psnr_outside", "lpips_outside",
    "no_face_before", "no_face_after", "psnr_identical",
)  # fmt: skip

# -- model files: the standard names the workflows load (README model table) --------------------------------
FLUX_DEV = "flux1-dev.safetensors"
T5XXL = "t5xxl_fp16.safetensors"
CLIP_L = "clip_l.safetensors"
FLUX_VAE = "ae.safetensors"
UNION_PRO = "diffusion_pytorch_model.safetensors"  # Shakker-Labs FLUX.1-dev-ControlNet-Union-Pro (v1)
PULID_FLUX = "pulid_flux_v0.9.1.safetensors"
EVA_CLIP = "EVA02_CLIP_L_336_psz14_s6B.pt"
ANTELOPEV2 = "antelopev2"  # insightface model folder: PuLID's conditioning face model
BUFFALO_L = "buffalo_l"  # insightface model folder: the default face judge
PARSING = "parsing_bisenet.pth"  # facexlib BiSeNet face parsing
ESRGAN = "RealESRGAN_x4plus.pth"
FLORENCE2 = "Florence-2-large"
LPIPS_ALEXNET = "alexnet-owt-7be5be79.pth"  # torchvision AlexNet features, under models/lpips
KONTEXT_DEV = "flux1-kontext-dev.safetensors"  # FLUX.1 Kontext [dev] (FLUX.1 [dev] non-commercial licence)
FLUX2_DEV = "flux2_dev_fp8mixed.safetensors"  # FLUX.2 [dev], Comfy-Org split files (FLUX [dev] non-commercial licence)
FLUX2_TEXT_ENCODER = "mistral_3_small_flux2_bf16.safetensors"  # under models/text_encoders
FLUX2_VAE = "flux2-vae.safetensors"  # under models/vae
LPIPS_LIN = "alex.pth"  # LPIPS v0.1 linear heads for AlexNet, under models/lpips

# What a real-weights run needs: path under models/ -> accepted alternative paths.
MODEL_FILES: dict[str, list[str]] = {
    f"diffusion_models/{FLUX_DEV}": [f"unet/{FLUX_DEV}"],
    f"text_encoders/{T5XXL}": [f"clip/{T5XXL}"],
    f"text_encoders/{CLIP_L}": [f"clip/{CLIP_L}"],
    f"vae/{FLUX_VAE}": [],
    f"controlnet/{UNION_PRO}": [],
    f"pulid/{PULID_FLUX}": [],
    f"eva_clip/{EVA_CLIP}": [f"clip_vision/{EVA_CLIP}"],
    f"insightface/models/{ANTELOPEV2}": [],
    f"insightface/models/{BUFFALO_L}": [],
    f"facexlib/{PARSING}": [],
    f"upscale_models/{ESRGAN}": [],
    f"LLM/{FLORENCE2}": [],
}
