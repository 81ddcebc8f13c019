"""Face crop, upscale-if-small and paste-back nodes over face/geometry.py, crop.py, masks.py and paste.py."""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from ..face.crop import crop_faces
from ..face.errors import NoFaceError
from ..face.geometry import COLOR_MATCH_MODES, PAD_MODES, crop_box
from ..face.geometry import working_size as working_size_hw
from ..face.judge import FACE_ORDERS, select_faces, to_rgb_uint8
from ..face.masks import ellipse_mask
from ..face.paste import paste_back_many
from . import comfy_adapter as host
from .types import CATEGORY, CROP_DATA, FACE_ANALYSIS, FACE_JUDGE

log = logging.getLogger(__name__)

NO_FACE_POLICIES = ("error", "pass through (full frame)")
DETECTOR_TYPES = f"{FACE_ANALYSIS},{FACE_JUDGE}"


def _resize(img_hwc: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    x = img_hwc.movedim(-1, 0)[None]
    antialias = hw[0] < x.shape[-2] or hw[1] < x.shape[-1]
    y = F.interpolate(x, size=hw, mode="bicubic", align_corners=False, antialias=antialias)
    return y[0].movedim(0, -1).clamp(0, 1)


class LikenessAutoCropFace:
    DESCRIPTION = (
        "Detect faces and crop them at a working size (a multiple of 16) with context around the face. Several faces give a "
        "batch plus per-face crop data; boxes that leave the image are padded, never shifted, so Paste Face Back is exact."
    )
    CATEGORY = f"{CATEGORY}/face"
    RETURN_TYPES = ("IMAGE", "MASK", CROP_DATA)
    RETURN_NAMES = ("crops", "mask", "crop_data")
    OUTPUT_TOOLTIPS = (
        "The face crops (N, h, w, 3) at the working size.",
        "A feathered ellipse mask per crop, for Paste Face Back or inpainting.",
        "Where each crop came from (box, scale, size, rotation): feed it to Paste Face Back / Upscale If Small.",
    )
    FUNCTION = "crop"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "detector": (DETECTOR_TYPES, {"tooltip": "A face model: Load Face Analysis (antelopev2) or Load Face Judge (buffalo_l, dlib)."}),
                "image": ("IMAGE", {"tooltip": "Image(s) to find faces in."}),
                "face_order": (list(FACE_ORDERS), {"default": "largest", "tooltip": "How faces are ordered before picking."}),
                "face_index": ("INT", {"default": 0, "min": -1, "max": 63, "tooltip": "Which face in that order; -1 = every face (a batch)."}),
                "context": ("FLOAT", {"default": 1.6, "min": 1.0, "max": 4.0, "step": 0.05, "tooltip": "Crop size relative to the face box (1.6 keeps hair and chin)."}),
                "aspect": ("FLOAT", {"default": 1.0, "min": 0.25, "max": 4.0, "step": 0.05, "tooltip": "Crop width / height."}),
                "working_size": ("INT", {"default": 512, "min": 64, "max": 2048, "step": 16, "tooltip": "Long side of the crops in pixels (multiple of 16)."}),
                "align_eyes": ("BOOLEAN", {"default": False, "tooltip": "Rotate each crop so the eye line is horizontal (undone on paste)."}),
                "pad_mode": (list(PAD_MODES), {"default": "edge", "tooltip": "How the part of a box outside the image is filled."}),
                "no_face": (list(NO_FACE_POLICIES), {"default": "error", "tooltip": "No face found: stop with an error, or pass the whole image through with a full-frame box."}),
                "feather": ("INT", {"default": 24, "min": 0, "max": 512, "tooltip": "Feather of the output mask in crop pixels."}),
            }
        }

    def crop(self, detector, image, face_order, face_index, context, aspect, working_size, align_eyes, pad_mode, no_face, feather):
        hw = working_size_hw(aspect, working_size, 16)
        crops, datas = [], []
        for b in range(image.shape[0]):
            host.throw_if_interrupted()
            h, w = image.shape[1], image.shape[2]
            faces = select_faces(detector.detect_embed(to_rgb_uint8(image[b])), order=face_order, index=None if face_index < 0 else face_index)
            if not faces:
                if no_face == "error":
                    raise NoFaceError(b, "target", hint="use a clearer photo, or set no_face to 'pass through (full frame)'")
                c, d = crop_faces(image[b], [(0, 0, w, h)], hw, pad_mode, image_index=b)
                log.info("Auto-crop: image %d has no face; passing it through with a full-frame box", b)
                crops.append(c)
                datas.extend(d)
                continue
            boxes = [crop_box(f.box, (h, w), context, aspect) for f in faces]
            c, d = crop_faces(
                image[b], boxes, hw, pad_mode, align_eyes, [f.landmarks5 for f in faces],
                det_boxes=[f.box for f in faces], face_indices=list(range(len(faces))), image_index=b,
            )
            crops.append(c)
            datas.extend(d)
        out = torch.cat(crops, 0)
        mask = ellipse_mask(hw[0], hw[1], feather_px=feather)[None].expand(out.shape[0], -1, -1).clone()
        return (out, mask, datas)


class LikenessPasteFaceBack:
    DESCRIPTION = (
        "Paste enhanced face crops back where Auto-crop Face took them, blended with a feathered mask. Pixels outside the "
        "feathered mask stay bit-identical to the input image. Works per face for a batch of crops."
    )
    CATEGORY = f"{CATEGORY}/face"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    FUNCTION = "paste"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "The original image(s) the crops came from."}),
                "crops": ("IMAGE", {"tooltip": "The enhanced crops, one per crop_data entry, in the same order."}),
                "crop_data": (CROP_DATA, {"tooltip": "From Auto-crop Face."}),
                "feather": ("INT", {"default": 24, "min": 0, "max": 512, "tooltip": "Feather in crop pixels."}),
                "color_match": (list(COLOR_MATCH_MODES), {"default": "none", "tooltip": "Match the crop's colour statistics to the original face region."}),
            },
            "optional": {
                "mask": ("MASK", {"tooltip": "Paste mask in crop space (e.g. face parsing); default: a feathered ellipse."}),
            },
        }

    def paste(self, image, crops, crop_data, feather, color_match, mask=None):
        if crops.shape[0] != len(crop_data):
            raise ValueError(
                f"Paste Face Back got {crops.shape[0]} crops but {len(crop_data)} crop_data entries; "
                "connect the crops that came from the same Auto-crop Face node, in the same order"
            )
        masks = None
        if mask is not None:
            m = mask if mask.ndim == 3 else mask[None]
            masks = [m[min(i, m.shape[0] - 1)] for i in range(crops.shape[0])]
        return (paste_back_many(image, crops, list(crop_data), masks, feather_px=feather, color_match=color_match),)


class LikenessUpscaleIfSmall:
    DESCRIPTION = (
        "Give a small face real detail before identity encoding: re-cut the face at its native resolution and run an ESRGAN "
        "model (core's Load Upscale Model) only when the face is smaller than the working size, then resize exactly to it."
    )
    CATEGORY = f"{CATEGORY}/face"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("crops",)
    FUNCTION = "upscale"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "The image(s) given to Auto-crop Face."}),
                "crop_data": (CROP_DATA, {"tooltip": "From Auto-crop Face."}),
                "upscale_model": ("UPSCALE_MODEL", {"tooltip": "From core Load Upscale Model (e.g. 4x-UltraSharp, RealESRGAN_x4plus)."}),
            }
        }

    def upscale(self, image, crop_data, upscale_model):
        out = []
        for cd in crop_data:
            host.throw_if_interrupted()
            bh, bw = cd.box_hw
            src = image[min(cd.image_index, image.shape[0] - 1)]
            native, _ = crop_faces(src, [cd.box], (bh, bw), cd.pad_mode, cd.angle != 0.0, [cd.landmarks] if cd.landmarks is not None else None)
            if bh < cd.working_hw[0] or bw < cd.working_hw[1]:
                native = host.upscale_with_model(upscale_model, native)
                log.info("Upscale If Small: face %dx%d below %s, upscaled", bw, bh, cd.working_hw)
            out.append(_resize(native[0], tuple(cd.working_hw)))
        return (torch.stack(out, 0),)
