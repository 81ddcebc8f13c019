"""Enhancement Report node: identity change (before -> after) and preservation outside the face."""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from ..contract import HISTORY_REPORT
from ..face.judge import to_rgb_uint8
from ..face.lpips import ALEXNET_FILE, LIN_FILE, find_lpips_files, load_lpips
from ..face.report import enhancement_report, format_report, side_by_side
from . import comfy_adapter as host
from .face_nodes import _embed_batch, _json_number
from .types import CATEGORY, FACE_JUDGE

log = logging.getLogger(__name__)


_LPIPS: dict[tuple[str, str], object] = {}


def _lpips():
    """The LPIPS model when both weight files are present (models/lpips, torch hub cache, lpips package)."""
    alex, lin = find_lpips_files(host.model_folder_paths("lpips"))
    if alex is None or lin is None:
        return None, f"not computed: put {ALEXNET_FILE} and LPIPS v0.1 {LIN_FILE} in models/lpips"
    key = (str(alex), str(lin))
    if key not in _LPIPS:
        _LPIPS[key] = load_lpips(alex, lin)
    return _LPIPS[key], f"LPIPS-Alex v0.1 ({alex.name}, {lin.name})"


def _size(images: torch.Tensor) -> str:
    return f"{int(images.shape[2])}x{int(images.shape[1])}"


class LikenessEnhancementReport:
    DESCRIPTION = (
        "Enhancement Report: did the enhancement bring the face closer to the reference person, and did it leave "
        "the rest of the image alone? cos_before / cos_after = cosine similarity of each face to the averaged "
        "reference; delta_id = cos_after - cos_before (positive = identity improved). A missing face gives NaN and "
        "a no-face flag, never 0 or 1. ssim_outside / psnr_outside compare before and after outside the face mask "
        "(mask == 0); without a mask the before/after face boxes scaled 1.3x are the mask. Only the FIRST image of "
        "the before and after batches is measured (the largest face in each). Results appear on the node and in "
        "/history (ui.likeness_report) for REST clients."
    )
    CATEGORY = f"{CATEGORY}/metrics"
    RETURN_TYPES = ("FLOAT", "FLOAT", "FLOAT", "FLOAT", "FLOAT", "IMAGE")
    RETURN_NAMES = ("cos_before", "cos_after", "delta_id", "ssim_outside", "psnr_outside", "preview")
    OUTPUT_TOOLTIPS = (
        "Cosine similarity of the before face to the reference (NaN without a face).",
        "Cosine similarity of the after face to the reference (NaN without a face).",
        "cos_after - cos_before: positive means the identity moved toward the reference.",
        "SSIM of before vs after outside the face mask (1.0 = untouched).",
        "PSNR in dB of before vs after outside the face mask (inf = identical).",
        "reference | before | after side by side with the scores.",
    )
    OUTPUT_NODE = True
    FUNCTION = "report"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "judge": (FACE_JUDGE, {"tooltip": "From Load Face Judge: the model that scores identity (keep it apart from the conditioning model)."}),
                "reference": ("IMAGE", {"tooltip": "One or more photos of the person; their face embeddings are averaged."}),
                "before": ("IMAGE", {"tooltip": "The image before enhancement (first image of the batch is measured)."}),
                "after": ("IMAGE", {"tooltip": "The enhanced image, the same size as before (first image of the batch is measured)."}),
            },
            "optional": {
                "face_mask": ("MASK", {"tooltip": "Where the face is (non-zero); preservation is scored where it is 0. Leave empty to use the face boxes scaled 1.3x."}),
            },
        }

    def report(self, judge, reference, before, after, face_mask=None):
        if tuple(before.shape[1:3]) != tuple(after.shape[1:3]):
            raise ValueError(
                f"Enhancement Report: before is {_size(before)} but after is {_size(after)} (WxH); they must be the "
                "same size. Resize after to before's size (e.g. ImageScale / Upscale Image to "
                f"{_size(before)}) or paste the enhanced face back into the original with Paste Face Back."
            )
        mask = None
        if face_mask is not None:
            mask = face_mask[0] if face_mask.ndim == 3 else face_mask
            if tuple(mask.shape) != tuple(before.shape[1:3]):
                raise ValueError(
                    f"Enhancement Report: face_mask is {int(mask.shape[1])}x{int(mask.shape[0])} but the images are "
                    f"{_size(before)} (WxH); give a mask of the images' size or leave face_mask empty."
                )
        lpips_model, lpips_note = _lpips()
        refs = _embed_batch(judge, reference, "largest", 0)
        (b_emb, b_rec), = _embed_batch(judge, before[:1], "largest", 0)
        (a_emb, a_rec), = _embed_batch(judge, after[:1], "largest", 0)
        rep = enhancement_report(
            [e for e, _ in refs],
            b_emb,
            a_emb,
            before[0].cpu(),
            after[0].cpu(),
            None if mask is None else mask.cpu(),
            before_box=b_rec.box if b_rec else None,
            after_box=a_rec.box if a_rec else None,
            lpips_model=lpips_model,
        )
        ref_rec = refs[0][1]
        panel = side_by_side(
            to_rgb_uint8(reference[0]),
            to_rgb_uint8(before[0]),
            to_rgb_uint8(after[0]),
            format_report(rep),
            (ref_rec.box if ref_rec else None, b_rec.box if b_rec else None, a_rec.box if a_rec else None),
        )
        preview = torch.from_numpy(panel.astype(np.float32) / 255.0)[None]
        psnr = rep["psnr_outside"]
        row = {
            "cos_before": _json_number(rep["cos_before"]),
            "cos_after": _json_number(rep["cos_after"]),
            "delta_id": _json_number(rep["delta_id"]),
            "no_face_before": rep["no_face_before"],
            "no_face_after": rep["no_face_after"],
            "ssim_outside": _json_number(rep["ssim_outside"]),
            "psnr_outside": None if not math.isfinite(psnr) else float(psnr),
            "psnr_identical": rep["psnr_identical"],
            "mask_source": rep["mask_source"],
            "mask_coverage": rep["mask_coverage"],
            "lpips_outside": _json_number(rep["lpips_outside"]),
            "lpips": lpips_note,
            "images_measured": {"before": 0, "after": 0, "before_batch": int(before.shape[0]), "after_batch": int(after.shape[0])},
            "judge": judge.name,
        }
        log.info("Enhancement Report [%s]: %s", judge.name, row)
        ui = {HISTORY_REPORT: [row], "images": host.save_preview(preview, "likeness_report")}
        result = (rep["cos_before"], rep["cos_after"], rep["delta_id"], rep["ssim_outside"], psnr, preview)
        return {"ui": ui, "result": result}
