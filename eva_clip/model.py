"""EVA02-CLIP visual tower as PuLID uses it: class embedding plus five intermediate hidden states.

The forward pass is timm's EVA02 implementation (``timm.models.eva.Eva``), which reproduces the official
EVA-CLIP tower (verified against an independent plain-torch reference in tests/unit/test_eva_clip_reference.py).
This module owns what timm does not: reading the configuration out of an official checkpoint, checking the
checkpoint strictly with messages a user can act on, renaming the official keys to timm's, and tapping the
hidden states PuLID feeds to its ID encoder.

Architecture facts (public): EVA-CLIP ``eva_clip/eva_vit_model.py`` and ``rope.py`` (baaivision/EVA, MIT), as
vendored by PuLID (ToTheBeginning/PuLID, Apache-2.0), and tests/reference/README.md.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from ..common.layout import compare
from .errors import EvaClipCheckpointError, first_few

logger = logging.getLogger(__name__)

# EVA-CLIP builds its rotary table for the 224 px pre-training grid (pt_hw_seq_len=16, "224/14" in its factory)
# and, with intp_freq=True, samples it at ft_seq_len = image_size // patch_size positions: t = arange(n) / n * 16.
# Every EVA02-CLIP config uses 16, and the file carries no field for it, so it is a constant here.
PT_HW_SEQ_LEN = 16
# EVA-CLIP's factory sets vision_heads = width // head_width with head_width 64 (CLIPVisionCfg default); the
# weights do not record the head count. The rope tables do (their last dim is head_dim), so they win when present.
EVA_HEAD_DIM = 64
ROPE_THETA = 10000.0
MIN_DEPTH = 6

# Official EVA-CLIP names -> timm Eva names. Our own table; timm.models.eva.checkpoint_filter_fn performs the same
# renames and tests/unit/test_eva_clip_reference.py checks that both agree on the full-size manifest.
_OFFICIAL_TO_TIMM = (
    (".attn.q_bias", ".attn.q_proj.bias"),
    (".attn.v_bias", ".attn.v_proj.bias"),
    (".attn.inner_attn_ln.", ".attn.norm."),
    (".mlp.w1.", ".mlp.fc1_g."),
    (".mlp.w2.", ".mlp.fc1_x."),
    (".mlp.ffn_ln.", ".mlp.norm."),
    (".mlp.w3.", ".mlp.fc2."),
)
_ROPE_SUFFIXES = ("rope.freqs_cos", "rope.freqs_sin")
_BLOCK_RE = re.compile(r"^blocks\.(\d+)\.")


@dataclass(frozen=True)
class EvaClipConfig:
    """What a checkpoint implies about the tower; frozen so it can be compared and logged."""

    image_size: int
    patch_size: int
    width: int
    depth: int
    heads: int
    mlp_hidden: int
    out_dim: int

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid * self.grid

    @property
    def head_dim(self) -> int:
        return self.width // self.heads

    @property
    def tap_blocks(self) -> tuple[int, ...]:
        """Blocks whose INPUT is tapped: k*depth//6 for k=1..5, i.e. 4, 8, 12, 16, 20 at depth 24 (PuLID's
        ``0 < idx <= 20 and idx % 4 == 0`` in its patched forward_features); smaller test towers scale it."""
        return tuple(k * self.depth // 6 for k in range(1, 6))


OFFICIAL_L336 = EvaClipConfig(image_size=336, patch_size=14, width=1024, depth=24, heads=16, mlp_hidden=2730,
                              out_dim=768)


def is_rope_key(key: str) -> bool:
    return key.endswith(_ROPE_SUFFIXES)


def expected_shapes(cfg: EvaClipConfig) -> dict[str, tuple[int, ...]]:
    """The official (unprefixed) key layout, rope buffers included, so checks and tests share one definition."""
    w, h, p = cfg.width, cfg.mlp_hidden, cfg.patch_size
    rope = (cfg.num_patches, cfg.head_dim)
    out: dict[str, tuple[int, ...]] = {
        "cls_token": (1, 1, w),
        "pos_embed": (1, cfg.num_patches + 1, w),
        "patch_embed.proj.weight": (w, 3, p, p),
        "patch_embed.proj.bias": (w,),
        "rope.freqs_cos": rope,
        "rope.freqs_sin": rope,
    }
    for i in range(cfg.depth):
        b = f"blocks.{i}."
        out.update({
            b + "norm1.weight": (w,), b + "norm1.bias": (w,),
            b + "attn.q_bias": (w,), b + "attn.v_bias": (w,),
            b + "attn.q_proj.weight": (w, w), b + "attn.k_proj.weight": (w, w), b + "attn.v_proj.weight": (w, w),
            b + "attn.inner_attn_ln.weight": (w,), b + "attn.inner_attn_ln.bias": (w,),
            b + "attn.proj.weight": (w, w), b + "attn.proj.bias": (w,),
            b + "attn.rope.freqs_cos": rope, b + "attn.rope.freqs_sin": rope,
            b + "norm2.weight": (w,), b + "norm2.bias": (w,),
            b + "mlp.w1.weight": (h, w), b + "mlp.w1.bias": (h,),
            b + "mlp.w2.weight": (h, w), b + "mlp.w2.bias": (h,),
            b + "mlp.ffn_ln.weight": (h,), b + "mlp.ffn_ln.bias": (h,),
            b + "mlp.w3.weight": (w, h), b + "mlp.w3.bias": (w,),
        })
    out.update({"norm.weight": (w,), "norm.bias": (w,), "head.weight": (cfg.out_dim, w), "head.bias": (cfg.out_dim,)})
    return out


def rope_tables(cfg: EvaClipConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The (cos, sin) tables EVA-CLIP stores as rope.freqs_*, used to check a file's copies.

    EVA-CLIP ``VisionRotaryEmbeddingFast(dim=head_dim // 2, pt_seq_len=16, ft_seq_len=grid)``: per axis
    inv_freq = theta^(-arange(0, d, 2) / d) with d = head_dim // 2, positions t = arange(grid) / grid * 16, each
    frequency repeated for an interleaved (x0, x1) pair; the first half of the head dim rotates with the row,
    the second half with the column; rows of the table follow the row-major patch order.
    """
    d = cfg.head_dim // 2
    inv_freq = 1.0 / (ROPE_THETA ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    t = torch.arange(cfg.grid, dtype=torch.float32) / cfg.grid * PT_HW_SEQ_LEN
    f = torch.outer(t, inv_freq).repeat_interleave(2, dim=-1)  # (grid, d)
    g = cfg.grid
    freqs = torch.cat([f[:, None, :].expand(g, g, d), f[None, :, :].expand(g, g, d)], dim=-1).reshape(g * g, 2 * d)
    return freqs.cos(), freqs.sin()


def official_to_timm_key(key: str) -> str:
    for old, new in _OFFICIAL_TO_TIMM:
        if old in key:
            return key.replace(old, new)
    return key


def timm_to_official_key(key: str) -> str:
    for old, new in _OFFICIAL_TO_TIMM:
        if new in key:
            return key.replace(new, old)
    return key


def _describe_foreign(keys: list[str]) -> str:
    """Names the kind of file a user most likely picked by mistake, so the message says more than 'wrong keys'."""
    ks = set(keys)
    if "visual.conv1.weight" in ks or any(k.startswith("visual.transformer.resblocks.") for k in keys):
        kind = "an OpenAI / open_clip CLIP ViT (visual.conv1, visual.transformer.resblocks.*)"
    elif any(k.startswith(("vision_model.", "text_model.")) for k in keys):
        kind = "a Hugging Face CLIP / SigLIP model (vision_model.*)"
    elif any(k.startswith(("double_blocks.", "single_blocks.", "pulid_", "model.diffusion_model.")) for k in keys):
        kind = "a diffusion-model or PuLID file"
    else:
        kind = "no EVA visual-tower keys"
    return f"{kind}; {len(keys)} keys, first: {first_few(sorted(keys))}"


def select_visual(state_dict: Mapping, source: str) -> dict:
    """Reduce any accepted layout to unprefixed official keys (visual.*, bare, or open_clip's visual.trunk.*)."""
    if not isinstance(state_dict, Mapping):
        raise EvaClipCheckpointError(source, f"a {type(state_dict).__name__}, not a state dict (a mapping of names "
                                             "to tensors)")
    keys = [k for k in state_dict if isinstance(k, str)]
    if any(k.startswith("visual.trunk.") for k in keys):
        # open_clip wraps timm's Eva as visual.trunk (hf-hub timm/eva02_*_clip_* open_clip_pytorch_model.bin):
        # timm's names, no rope buffers. Renaming back to the official layout is exact, so convert.
        logger.info("%s: open_clip layout (visual.trunk.*); converting timm names to the EVA-CLIP layout", source)
        n = len("visual.trunk.")
        return {timm_to_official_key(k[n:]): v for k, v in state_dict.items() if k.startswith("visual.trunk.")}
    if any(k.startswith("visual.") for k in keys):
        dropped = sum(1 for k in keys if not k.startswith("visual."))
        if dropped:
            logger.debug("%s: ignoring %d non-visual keys (text tower, logit_scale)", source, dropped)
        if "visual.cls_token" not in state_dict and "visual.blocks.0.attn.q_proj.weight" not in state_dict:
            raise EvaClipCheckpointError(source, _describe_foreign(keys))
        n = len("visual.")
        return {k[n:]: v for k, v in state_dict.items() if k.startswith("visual.")}
    if any(".mlp.fc1_g." in k for k in keys):  # a bare timm Eva state dict
        return {timm_to_official_key(k): v for k, v in state_dict.items()}
    if "cls_token" not in state_dict and "blocks.0.attn.q_proj.weight" not in state_dict:
        raise EvaClipCheckpointError(source, _describe_foreign(keys))
    return dict(state_dict)


def detect_config(sd: Mapping, source: str = "state dict", head_dim: int | None = None) -> EvaClipConfig:
    """Read the configuration from tensor shapes so any EVA02-CLIP size loads without a config file."""
    core = ("cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.mlp.w1.weight", "head.weight")
    missing = [k for k in core if not isinstance(sd.get(k), torch.Tensor)]
    if missing:
        if len(missing) == len(core):
            raise EvaClipCheckpointError(source, _describe_foreign(list(sd)))
        raise EvaClipCheckpointError(source, f"missing core keys {first_few(missing)}")
    cls, pos, patch = sd["cls_token"], sd["pos_embed"], sd["patch_embed.proj.weight"]
    if cls.ndim != 3 or cls.shape[:2] != (1, 1):
        raise EvaClipCheckpointError(source, f"cls_token of shape {tuple(cls.shape)}, expected (1, 1, width)")
    width = int(cls.shape[-1])
    if patch.ndim != 4 or patch.shape[0] != width or patch.shape[1] != 3 or patch.shape[2] != patch.shape[3]:
        raise EvaClipCheckpointError(source, f"patch_embed.proj.weight of shape {tuple(patch.shape)}, expected "
                                             f"({width}, 3, p, p)")
    patch_size = int(patch.shape[-1])
    grid = math.isqrt(max(int(pos.shape[1]) - 1, 0)) if pos.ndim == 3 else 0
    if pos.ndim != 3 or grid < 1 or grid * grid + 1 != pos.shape[1]:
        raise EvaClipCheckpointError(source, f"pos_embed of shape {tuple(pos.shape)}, expected (1, 1 + n*n, width)")
    block_ids = sorted({int(m.group(1)) for k in sd if (m := _BLOCK_RE.match(k))})
    depth = len(block_ids)
    if block_ids != list(range(depth)):
        raise EvaClipCheckpointError(source, f"non-contiguous block indices {first_few([str(i) for i in block_ids])}")
    if depth < MIN_DEPTH:
        raise EvaClipCheckpointError(source, f"{depth} blocks; at least {MIN_DEPTH} are needed to tap five hidden "
                                             "states")
    rope_dims = {int(sd[k].shape[-1]) for k in sd if is_rope_key(k) and isinstance(sd[k], torch.Tensor)
                 and sd[k].ndim == 2}
    if head_dim is None:
        head_dim = rope_dims.pop() if len(rope_dims) == 1 else EVA_HEAD_DIM
    elif rope_dims and rope_dims != {head_dim}:
        raise EvaClipCheckpointError(source, f"rope tables of head dim {sorted(rope_dims)} but head_dim={head_dim} "
                                             "was requested")
    if head_dim <= 0 or head_dim % 4 or width % head_dim:
        raise EvaClipCheckpointError(source, f"width {width} cannot be split into heads of {head_dim} (EVA convention "
                                             "64; the head dim must be a multiple of 4 for 2-D rope)")
    # The most common w1 size, so one damaged block is reported alone instead of making every other block misfit.
    hidden = Counter(int(v.shape[0]) for k, v in sd.items() if k.endswith(".mlp.w1.weight") and
                     isinstance(v, torch.Tensor) and v.ndim == 2).most_common(1)[0][0]
    return EvaClipConfig(image_size=grid * patch_size, patch_size=patch_size, width=width, depth=depth,
                         heads=width // head_dim, mlp_hidden=hidden,
                         out_dim=int(sd["head.weight"].shape[0]))


def validate(sd: Mapping, cfg: EvaClipConfig, source: str = "state dict") -> None:
    """Strict key/shape check against the official layout; only the computed rope buffers may be absent."""
    probs = compare(sd, expected_shapes(cfg), optional=is_rope_key)
    if probs:
        raise EvaClipCheckpointError(source, f"a tower detected as {cfg} with {probs.describe()}")
    rope = [k for k in sd if is_rope_key(k) and not sd[k].is_meta]
    if rope:
        cos, sin = rope_tables(cfg)
        for k in rope:
            ref = cos if k.endswith("cos") else sin
            err = (sd[k].detach().float().cpu() - ref).abs().max().item()
            if not err <= 1e-2:  # fp16 / bf16 copies are within ~4e-3; NaN fails too
                raise EvaClipCheckpointError(
                    source, f"{k} differs from the EVA rope table by {err:.3g} (a rope with pt_hw_seq_len "
                            f"{PT_HW_SEQ_LEN}, theta {ROPE_THETA:g}, interleaved pairs is expected)")


def _build_trunk(cfg: EvaClipConfig) -> nn.Module:
    """An empty timm Eva on the meta device: no random init of ~300M parameters before the real ones arrive."""
    from timm.models.eva import Eva

    mlp_ratio = cfg.mlp_hidden / cfg.width
    if int(cfg.width * mlp_ratio) != cfg.mlp_hidden:  # timm computes int(dim * ratio); guard float round-down
        mlp_ratio = (cfg.mlp_hidden + 0.5) / cfg.width
    # Same arguments as timm's registered eva02_large_patch14_clip_336, with the sizes taken from the checkpoint.
    return Eva(
        img_size=cfg.image_size, patch_size=cfg.patch_size, embed_dim=cfg.width, depth=cfg.depth,
        num_heads=cfg.heads, mlp_ratio=mlp_ratio, num_classes=cfg.out_dim, global_pool="token",
        qkv_fused=False, swiglu_mlp=True, scale_mlp=True, scale_attn_inner=True, use_rot_pos_emb=True,
        ref_feat_shape=(PT_HW_SEQ_LEN, PT_HW_SEQ_LEN), device="meta", dtype=torch.float32,
    )


def _materialize_buffers(model: nn.Module, device: torch.device) -> None:
    """Non-persistent buffers (rope tables) are not in any checkpoint; compute them in float32 on the device."""
    for module in model.modules():
        for name, buf in list(module._buffers.items()):
            if buf is not None and buf.is_meta:
                module._buffers[name] = torch.empty(buf.shape, dtype=buf.dtype, device=device)
    for module in model.modules():
        init = getattr(module, "init_non_persistent_buffers", None)
        if callable(init) and module is not model:
            init()
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise RuntimeError(f"EVA tower left on the meta device: {first_few(left)}")


class EvaClipVision(nn.Module):
    """The tower plus the tap points PuLID needs; returned by load_eva_clip, frozen and in eval mode."""

    def __init__(self, config: EvaClipConfig, trunk: nn.Module):
        super().__init__()
        self.config = config
        self.trunk = trunk

    @property
    def image_size(self) -> int:
        return self.config.image_size

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B,3,S,S) CLIP-normalised pixels -> (class embedding (B,out_dim), five (B,1+P,width) hidden states).

        Hidden state i is the residual stream ENTERING block config.tap_blocks[i] (no final norm), class token
        first, as PuLID's patched EVA forward_features collects it. Input is moved to the weights' device/dtype.
        """
        s = self.config.image_size
        if pixels.ndim != 4 or pixels.shape[1] != 3 or tuple(pixels.shape[-2:]) != (s, s):
            raise ValueError(f"EVA-CLIP expects (B, 3, {s}, {s}) normalised pixels, got {tuple(pixels.shape)}; "
                             "use eva_clip.preprocess")
        ref = self.trunk.patch_embed.proj.weight
        pixels = pixels.to(device=ref.device, dtype=ref.dtype)
        # Output of block b-1 == input of block b.
        final, inter = self.trunk.forward_intermediates(
            pixels, indices=[b - 1 for b in self.config.tap_blocks], return_prefix_tokens=True, norm=False,
            output_fmt="NLC")
        hidden = [torch.cat([prefix, patches], dim=1) for patches, prefix in inter]
        return self.trunk.forward_head(final), hidden


def load_eva_clip(state_dict: Mapping, device="cpu", dtype: torch.dtype = torch.float32, *,
                  head_dim: int | None = None, source: str = "state dict") -> EvaClipVision:
    """Build the tower a checkpoint describes and load it strictly.

    Accepts the official keys with or without ``visual.`` (a whole-CLIP dict keeps only ``visual.*``) and
    open_clip's ``visual.trunk.*``. The head count is width // head_dim, head_dim read from the rope tables when
    present, else ``head_dim`` or EVA's 64. ``device="meta"`` checks a (meta) state dict without allocating.
    Tensors already on the right device and dtype are shared with the model, not copied.
    """
    device = torch.device(device)
    sd = select_visual(state_dict, source)
    cfg = detect_config(sd, source, head_dim)
    validate(sd, cfg, source)
    if device.type != "meta" and any(isinstance(v, torch.Tensor) and v.is_meta for v in sd.values()):
        raise ValueError(f"{source}: meta tensors carry no data; load with device='meta' or pass real tensors")
    logger.info("%s: EVA-CLIP tower %s, tapping the inputs of blocks %s", source, cfg, cfg.tap_blocks)

    trunk = _build_trunk(cfg)
    timm_sd = {official_to_timm_key(k): v.to(device=device, dtype=dtype) for k, v in sd.items() if not is_rope_key(k)}
    try:
        trunk.load_state_dict(timm_sd, strict=True, assign=True)
    except RuntimeError as e:  # validate() should make this unreachable; keep the typed error if it is not
        raise EvaClipCheckpointError(source, f"timm refused the weights: {e}") from e
    if device.type != "meta":
        _materialize_buffers(trunk, device)
    model = EvaClipVision(cfg, trunk)
    model.requires_grad_(False)
    return model.eval()
