"""Benchmark-only ComfyUI node pack: stand-ins whose cost has the shape of the real models.

The test stand-ins (standins/comfy_pack) are as small as possible so the suite is fast; at hidden 64 their
per-step cost is noise and fixed overhead. A benchmark needs blocks that dominate, as flux1-dev's do. These nodes
build ComfyUI's own Flux and Flux ControlNet classes with Flux-dev's head size (128) and text/pooled widths
(4096/768) and a chosen width, depth and weight dtype; hidden 3072 with 19 double and 38 single blocks is the
full Flux-dev shape (random weights), and the Union ControlNet at 5 + 10 blocks is Union-Pro v1's shape.

Dtypes follow core UNETLoader's ``weight_dtype`` (default / fp8_e4m3fn / fp8_e4m3fn_fast) through the same
``comfy.model_management`` calls, so a GPU run takes the code path a real checkpoint would. Weights are
generated on the load device (fast on a GPU), then moved to the offload device as a loader leaves them.
Linked into the benchmark server as ``custom_nodes/likeness_bench``; never shipped.
"""

from __future__ import annotations

import hashlib
import logging
import time

import comfy.controlnet
import comfy.latent_formats
import comfy.ldm.flux.controlnet
import comfy.model_management as mm
import comfy.model_patcher
import comfy.ops
import comfy.supported_models
import torch

log = logging.getLogger(__name__)

HEAD_DIM = 128  # flux1-dev: 3072 / 24 heads; rope axes [16, 56, 56] sum to it
CONTEXT_DIM, POOLED_DIM = 4096, 768  # T5-XXL and CLIP-L widths that flux1-dev's txt_in / vector_in take
WEIGHT_DTYPES = ["default", "fp8_e4m3fn", "fp8_e4m3fn_fast"]


def flux_config(hidden_size: int, depth: int, depth_single_blocks: int) -> dict:
    if hidden_size % HEAD_DIM:
        raise ValueError(f"hidden_size {hidden_size} must be a multiple of {HEAD_DIM} (Flux-dev's head size)")
    return dict(
        image_model="flux", in_channels=16, out_channels=16, vec_in_dim=POOLED_DIM, context_in_dim=CONTEXT_DIM,
        hidden_size=hidden_size, mlp_ratio=4.0, num_heads=hidden_size // HEAD_DIM, depth=depth,
        depth_single_blocks=depth_single_blocks, axes_dim=[16, 56, 56], theta=10000, patch_size=2, qkv_bias=True,
        guidance_embed=True,
    )  # fmt: skip


def _fill_(module: torch.nn.Module, seed: int) -> None:
    """Random weights in place, generated where the tensors live; scaled by fan-in so activations stay finite."""
    device = next(module.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, t in sorted(module.state_dict(keep_vars=True).items()):
            if not torch.is_floating_point(t):
                continue
            noise = torch.randn(t.shape, generator=gen, device=device, dtype=torch.float32)
            if name.endswith(".scale") or ("norm" in name and name.endswith("weight")):
                t.copy_(1.0 + 0.1 * noise)
            else:
                std = min(0.05, t.shape[-1] ** -0.5) if t.ndim >= 2 else 0.02
                t.copy_(std * noise)
            del noise


def _materialise(module: torch.nn.Module, seed: int, load_device, offload_device) -> torch.nn.Module:
    module.to_empty(device=load_device)
    _fill_(module, seed)
    return module.to(offload_device)


def _unet_dtypes(weight_dtype: str, supported, load_device):
    if weight_dtype == "default":
        unet_dtype = mm.unet_dtype(model_params=0, supported_dtypes=list(supported))
    else:
        unet_dtype = torch.float8_e4m3fn
    return unet_dtype, mm.unet_manual_cast(unet_dtype, load_device, supported)


class LikenessBenchFlux:
    DESCRIPTION = "Benchmark stand-in for UNETLoader: ComfyUI's Flux class at a chosen width/depth, random weights."
    CATEGORY = "Likeness/testing"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "seed": ("INT", {"default": 0, "min": 0, "max": 2**31}),
                "hidden_size": ("INT", {"default": 512, "min": HEAD_DIM, "max": 3072, "step": HEAD_DIM}),
                "depth": ("INT", {"default": 4, "min": 1, "max": 19, "tooltip": "double blocks (flux1-dev: 19)"}),
                "depth_single_blocks": ("INT", {"default": 8, "min": 1, "max": 38, "tooltip": "single blocks (flux1-dev: 38)"}),
                "weight_dtype": (WEIGHT_DTYPES, {"default": "default", "tooltip": "as core UNETLoader's weight_dtype"}),
            }
        }

    def load(self, seed, hidden_size, depth, depth_single_blocks, weight_dtype):
        load_device, offload_device = mm.get_torch_device(), mm.unet_offload_device()
        model_config = comfy.supported_models.Flux(flux_config(hidden_size, depth, depth_single_blocks))
        unet_dtype, manual_cast = _unet_dtypes(weight_dtype, model_config.supported_inference_dtypes, load_device)
        model_config.set_inference_dtype(unet_dtype, manual_cast)
        if weight_dtype == "fp8_e4m3fn_fast":
            model_config.optimizations["fp8"] = True
        model = model_config.get_model({}, "", device=torch.device("meta"))
        _materialise(model.diffusion_model, seed, load_device, offload_device)
        model.device = None  # as a loader leaves it; ModelPatcher sets the offload device
        n = sum(p.numel() for p in model.diffusion_model.parameters())
        log.info("bench Flux: hidden %d, %d+%d blocks, %.0f M params, %s (cast %s)", hidden_size, depth, depth_single_blocks, n / 1e6, unet_dtype, manual_cast)
        return (comfy.model_patcher.ModelPatcher(model, load_device=load_device, offload_device=offload_device),)


class BenchTextEncoder:
    """Duck-typed CLIP with Flux-dev's conditioning shape: (1, tokens, 4096) context, (1, 768) pooled, from a text hash."""

    def __init__(self, seed: int, tokens: int):
        self.seed, self.tokens = seed, tokens

    def clone(self):
        return BenchTextEncoder(self.seed, self.tokens)

    def tokenize(self, text, return_word_ids=False, **kwargs):
        return {"text": text}

    def _encode(self, text: str):
        digest = hashlib.sha256(f"{self.seed}:{text}".encode()).digest()
        gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))
        return torch.randn((1, self.tokens, CONTEXT_DIM), generator=gen), torch.randn((1, POOLED_DIM), generator=gen)

    def encode_from_tokens(self, tokens, return_pooled=False, return_dict=False):
        cond, pooled = self._encode(tokens["text"])
        if return_dict:
            return {"cond": cond, "pooled_output": pooled}
        return (cond, pooled) if return_pooled else cond

    def encode_from_tokens_scheduled(self, tokens, unprojected=False, add_dict=None, show_pbar=True):
        cond, pooled = self._encode(tokens["text"])
        return [[cond, {"pooled_output": pooled, **(add_dict or {})}]]


class LikenessBenchTextEncoder:
    DESCRIPTION = "Benchmark stand-in for DualCLIPLoader: Flux-dev-shaped conditioning (T5 pads to 256 tokens in ComfyUI)."
    CATEGORY = "Likeness/testing"
    RETURN_TYPES = ("CLIP",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "seed": ("INT", {"default": 0, "min": 0, "max": 2**31}),
                "tokens": ("INT", {"default": 256, "min": 1, "max": 4096, "tooltip": "text tokens (ComfyUI's Flux T5: at least 256)"}),
            }
        }

    def load(self, seed, tokens):
        return (BenchTextEncoder(seed, tokens),)


class LikenessBenchUnionControlNet:
    DESCRIPTION = "Benchmark stand-in for ControlNetLoader: a Flux Union ControlNet (Union-Pro v1 class) at the model's width."
    CATEGORY = "Likeness/testing"
    RETURN_TYPES = ("CONTROL_NET",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "seed": ("INT", {"default": 0, "min": 0, "max": 2**31}),
                "hidden_size": ("INT", {"default": 512, "min": HEAD_DIM, "max": 3072, "step": HEAD_DIM, "tooltip": "must equal the Flux model's"}),
                "depth": ("INT", {"default": 2, "min": 1, "max": 19, "tooltip": "double blocks (Union-Pro v1: 5)"}),
                "depth_single_blocks": ("INT", {"default": 2, "min": 0, "max": 38, "tooltip": "single blocks (Union-Pro v1: 10)"}),
                "num_modes": ("INT", {"default": 10, "min": 0, "max": 16, "tooltip": "rows of the mode embedding (tile is row 1)"}),
            }
        }

    def load(self, seed, hidden_size, depth, depth_single_blocks, num_modes):
        # The dtype choice core's controlnet_config makes for a file without a dtype hint.
        load_device, offload_device = mm.get_torch_device(), mm.unet_offload_device()
        supported = list(comfy.supported_models.Flux.supported_inference_dtypes)
        unet_dtype = mm.unet_dtype(model_params=-1, supported_dtypes=supported)
        manual_cast = mm.unet_manual_cast(unet_dtype, load_device)
        operations = comfy.ops.pick_operations(unet_dtype, manual_cast, disable_fast_fp8=True)
        cfg = {k: v for k, v in flux_config(hidden_size, depth, depth_single_blocks).items() if k != "image_model"}
        control_model = comfy.ldm.flux.controlnet.ControlNetFlux(
            latent_input=True, num_union_modes=num_modes, control_latent_channels=16, operations=operations,
            device=torch.device("meta"), dtype=unet_dtype, **cfg,
        )  # fmt: skip
        _materialise(control_model, seed + 1, load_device, offload_device)
        return (
            comfy.controlnet.ControlNet(
                control_model, compression_ratio=1, latent_format=comfy.latent_formats.Flux(), concat_mask=False,
                load_device=load_device, manual_cast_dtype=manual_cast, extra_conds=["y", "guidance"],
            ),
        )  # fmt: skip


# -- time spent inside Flux block-replace patches, beside the blocks they wrap ----------------------------------
_TIMERS: dict[str, dict[str, float]] = {}


def _now(t: torch.Tensor) -> float:
    """CPU seconds of this thread on CPU (the server computes single-threaded there); synchronised wall on CUDA."""
    if t.is_cuda:
        torch.cuda.synchronize(t.device)
        return time.perf_counter()
    return time.thread_time()


class _TimedPatch:
    """Wraps one dit replace patch: time of the whole patch and of the original block inside it."""

    def __init__(self, fn, acc: dict[str, float]):
        self.fn, self.acc = fn, acc

    def __call__(self, args: dict, extra: dict) -> dict:
        inner, acc, probe = extra["original_block"], self.acc, args["img"]

        def block(a):
            t0 = _now(probe)
            out = inner(a)
            acc["block_s"] += _now(probe) - t0
            return out

        t0 = _now(probe)
        out = self.fn(args, {**extra, "original_block": block})
        acc["patch_s"] += _now(probe) - t0
        acc["calls"] += 1
        return out

    def to(self, *args, **kwargs):
        if hasattr(self.fn, "to"):
            self.fn = self.fn.to(*args, **kwargs)
        return self

    def __deepcopy__(self, memo):  # ModelPatcher.clone() deep-copies model_options; the counters must stay shared
        return self


def _rewrap_dit_patches(model, token: str, wrapper):
    """A clone of ``model`` whose Flux block-replace patches are each wrapped by ``wrapper(fn, state)``."""
    state = _TIMERS.setdefault(token, {"patch_s": 0.0, "block_s": 0.0, "calls": 0})
    m = model.clone()
    dit = m.model_options.get("transformer_options", {}).get("patches_replace", {}).get("dit", {})
    for (block, idx), fn in list(dit.items()):
        m.set_model_patch_replace(wrapper(fn, state), "dit", block, idx)
    return m


class LikenessBenchPatchTimer:
    DESCRIPTION = "Benchmark: a clone of the model whose Flux block-replace patches (e.g. PuLID's) time themselves."
    CATEGORY = "Likeness/testing"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "wrap"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "token": ("STRING", {"default": "run"})}}

    def wrap(self, model, token):
        return (_rewrap_dit_patches(model, token, _TimedPatch),)


def _step_index(opts: dict, state: dict) -> int:
    """Index of the current sampling step in the schedule (transformer_options sigmas / sample_sigmas), once per forward."""
    sig = opts.get("sigmas")
    if sig is not state.get("obj"):
        state["obj"] = sig
        sched = opts.get("sample_sigmas")
        if torch.is_tensor(sig) and torch.is_tensor(sched):
            state["index"] = int(torch.argmin((sched.to(sig.device, torch.float32) - sig.float().max()).abs()))
        else:
            state["index"] = state.get("index", -1) + 1
        state.setdefault("seen", []).append(state["index"])
    return state["index"]


class _AlternatePatch:
    """Runs the wrapped patch on even sampling steps and only the original block on odd ones."""

    def __init__(self, fn, state: dict):
        self.fn, self.state = fn, state

    def __call__(self, args: dict, extra: dict) -> dict:
        if _step_index(args.get("transformer_options") or {}, self.state) % 2 == 0:
            return self.fn(args, extra)
        return extra["original_block"](args)

    to = _TimedPatch.to

    def __deepcopy__(self, memo):
        return self


class LikenessBenchAlternatePatches:
    DESCRIPTION = (
        "Benchmark: a clone of the model whose Flux block-replace patches (e.g. PuLID's) run on even steps only, so one "
        "sampling run interleaves steps with and without them (A B A B ...)."
    )
    CATEGORY = "Likeness/testing"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "wrap"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "token": ("STRING", {"default": "run"})}}

    def wrap(self, model, token):
        return (_rewrap_dit_patches(model, token, _AlternatePatch),)


class LikenessBenchPatchTimerReport:
    DESCRIPTION = "Benchmark: after sampling, returns the patch timer of a token in /history (key bench_patch_timer)."
    CATEGORY = "Likeness/testing"
    RETURN_TYPES = ()
    FUNCTION = "report"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",), "token": ("STRING", {"default": "run"})}}

    def report(self, samples, token):
        state = _TIMERS.pop(token, {})
        return {"ui": {"bench_patch_timer": [{k: v for k, v in state.items() if k != "obj"}]}}


NODE_CLASS_MAPPINGS = {
    "LikenessBenchAlternatePatches": LikenessBenchAlternatePatches,
    "LikenessBenchPatchTimer": LikenessBenchPatchTimer,
    "LikenessBenchPatchTimerReport": LikenessBenchPatchTimerReport,
    "LikenessBenchFlux": LikenessBenchFlux,
    "LikenessBenchTextEncoder": LikenessBenchTextEncoder,
    "LikenessBenchUnionControlNet": LikenessBenchUnionControlNet,
}
NODE_DISPLAY_NAME_MAPPINGS = {k: k.replace("LikenessBench", "Benchmark stand-in: ") for k in NODE_CLASS_MAPPINGS}
