"""Benchmark stand-ins: the test builder (build.py) at the cost shape of the real models, and patch timers.

The test stand-ins are as small as possible so the suite is fast; at hidden 64 their per-step cost is noise and
fixed overhead. A benchmark needs blocks that dominate, as flux1-dev's do: these nodes call the same builder with
Flux-dev's head size (128) and text/pooled widths (4096/768) at a chosen width, depth and weight dtype; hidden
3072 with 19 double and 38 single blocks is the full Flux-dev shape (random weights), and the Union ControlNet at
5 + 10 blocks is Union-Pro v1's shape. Weights are scaled by fan-in so a wide model's activations stay finite.
In a checkout only (the published archive leaves this file out); registered by this pack's __init__.
"""

from __future__ import annotations

import logging
import time

import torch

from .build import (
    BENCH_CONTEXT_DIM,
    BENCH_HEAD_DIM,
    BENCH_POOLED_DIM,
    WEIGHT_DTYPES,
    HashTextEncoder,
    bench_flux_config,
    flux_patcher,
    union_controlnet,
)
from .nodes import SeededLoader

log = logging.getLogger(__name__)
WIDTH = ("INT", {"default": 512, "min": BENCH_HEAD_DIM, "max": 3072, "step": BENCH_HEAD_DIM, "tooltip": "hidden size (flux1-dev: 3072)"})


class LikenessBenchFlux(SeededLoader):
    DESCRIPTION = "Benchmark stand-in for UNETLoader: ComfyUI's Flux class at a chosen width/depth, random weights."
    RETURN_TYPES = ("MODEL",)
    REQUIRED_EXTRA = {
        "hidden_size": WIDTH,
        "depth": ("INT", {"default": 4, "min": 1, "max": 19, "tooltip": "double blocks (flux1-dev: 19)"}),
        "depth_single_blocks": ("INT", {"default": 8, "min": 1, "max": 38, "tooltip": "single blocks (flux1-dev: 38)"}),
        "weight_dtype": (WEIGHT_DTYPES, {"default": "default", "tooltip": "as core UNETLoader's weight_dtype"}),
    }

    @staticmethod
    def make(seed, hidden_size, depth, depth_single_blocks, weight_dtype):
        patcher = flux_patcher(bench_flux_config(hidden_size, depth, depth_single_blocks), seed, weight_dtype, std="fan_in")
        n = sum(p.numel() for p in patcher.model.diffusion_model.parameters())
        log.info("bench Flux: hidden %d, %d+%d blocks, %.0f M params, %s", hidden_size, depth, depth_single_blocks, n / 1e6, weight_dtype)
        return patcher


class LikenessBenchTextEncoder(SeededLoader):
    DESCRIPTION = "Benchmark stand-in for DualCLIPLoader: Flux-dev-shaped conditioning (T5 pads to 256 tokens in ComfyUI)."
    RETURN_TYPES = ("CLIP",)
    REQUIRED_EXTRA = {"tokens": ("INT", {"default": 256, "min": 1, "max": 4096, "tooltip": "text tokens (ComfyUI's Flux T5: at least 256)"})}

    @staticmethod
    def make(seed, tokens):
        return HashTextEncoder(seed, tokens, BENCH_CONTEXT_DIM, BENCH_POOLED_DIM)


class LikenessBenchUnionControlNet(SeededLoader):
    DESCRIPTION = "Benchmark stand-in for ControlNetLoader: a Flux Union ControlNet (Union-Pro v1 class) at the model's width."
    RETURN_TYPES = ("CONTROL_NET",)
    REQUIRED_EXTRA = {
        "hidden_size": (WIDTH[0], {**WIDTH[1], "tooltip": "must equal the Flux model's"}),
        "depth": ("INT", {"default": 2, "min": 1, "max": 19, "tooltip": "double blocks (Union-Pro v1: 5)"}),
        "depth_single_blocks": ("INT", {"default": 2, "min": 0, "max": 38, "tooltip": "single blocks (Union-Pro v1: 10)"}),
        "num_modes": ("INT", {"default": 10, "min": 0, "max": 16, "tooltip": "rows of the mode embedding (tile is row 1)"}),
    }

    @staticmethod
    def make(seed, hidden_size, depth, depth_single_blocks, num_modes):
        config = bench_flux_config(hidden_size, depth, depth_single_blocks)
        return union_controlnet(config, seed + 1, num_modes, depth, depth_single_blocks, std="fan_in")


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
    WRAPPER = _TimedPatch

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "token": ("STRING", {"default": "run"})}}

    def wrap(self, model, token):
        return (_rewrap_dit_patches(model, token, self.WRAPPER),)


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


class LikenessBenchAlternatePatches(LikenessBenchPatchTimer):
    DESCRIPTION = (
        "Benchmark: a clone of the model whose Flux block-replace patches (e.g. PuLID's) run on even steps only, so one "
        "sampling run interleaves steps with and without them (A B A B ...)."
    )
    WRAPPER = _AlternatePatch


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
