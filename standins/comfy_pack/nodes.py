"""The test stand-ins' loader nodes: one thin class per core loader they replace, over build.py."""

from __future__ import annotations

from .build import HashTextEncoder, flux_config, flux_patcher, union_controlnet, vae

TIP = "Test stand-in: random seeded weights."
SEED = ("INT", {"default": 0, "min": 0, "max": 2**31, "tooltip": TIP})


class SeededLoader:
    """A loader node whose required input is a seed; subclasses name the output type and the builder call."""

    CATEGORY = "Likeness/testing"
    FUNCTION = "load"
    RETURN_TYPES: tuple[str, ...] = ()
    REQUIRED_EXTRA: dict = {}  # inputs besides the seed
    OPTIONAL: dict = {}

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seed": SEED, **cls.REQUIRED_EXTRA}, "optional": dict(cls.OPTIONAL)}

    def load(self, seed, **kwargs):
        return (self.make(int(seed), **kwargs),)

    @staticmethod
    def make(seed, **kwargs):
        raise NotImplementedError


class LikenessTestTinyFlux(SeededLoader):
    DESCRIPTION = "Test-only stand-in for UNETLoader: a tiny random Flux built with ComfyUI's Flux class."
    RETURN_TYPES = ("MODEL",)
    OPTIONAL = {
        "depth": ("INT", {"default": 2, "min": 1, "max": 19, "tooltip": "double blocks"}),
        "depth_single_blocks": ("INT", {"default": 4, "min": 1, "max": 38, "tooltip": "single blocks"}),
        "weight_dtype": (["default", "fp8_e4m3fn"], {"default": "default", "tooltip": "as UNETLoader's weight_dtype"}),
    }

    @staticmethod
    def make(seed, depth=2, depth_single_blocks=4, weight_dtype="default"):
        config = flux_config(depth=depth, depth_single_blocks=depth_single_blocks)
        return flux_patcher(config, seed, weight_dtype)


class LikenessTestTinyTextEncoder(SeededLoader):
    DESCRIPTION = "Test-only stand-in for DualCLIPLoader: Flux-shaped conditioning from a hash of the text."
    RETURN_TYPES = ("CLIP",)
    make = staticmethod(HashTextEncoder)


class LikenessTestTinyVAE(SeededLoader):
    DESCRIPTION = "Test-only stand-in for VAELoader: a tiny AutoencoderKL with Flux's 16 latent channels."
    RETURN_TYPES = ("VAE",)
    make = staticmethod(vae)


class LikenessTestTinyUnionControlNet(SeededLoader):
    DESCRIPTION = "Test-only stand-in for ControlNetLoader: a tiny Flux Union ControlNet (7 modes, or 0 like Union-Pro 2.0)."
    RETURN_TYPES = ("CONTROL_NET",)
    REQUIRED_EXTRA = {"num_modes": ("INT", {"default": 7, "min": 0, "max": 16, "tooltip": "rows of the mode embedding"})}

    @staticmethod
    def make(seed, num_modes=7):
        return union_controlnet(seed=seed, num_modes=num_modes)


class LikenessTestBadPixels:
    """Writes NaN or inf into a few pixels, as a broken upstream node (e.g. an fp16 VAE overflow) would."""

    CATEGORY = "Likeness/tests"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "spoil"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "value": (["nan", "inf", "-inf"],), "pixels": ("INT", {"default": 10, "min": 1})}}

    def spoil(self, image, value, pixels):
        out = image.clone()
        flat = out.view(-1)
        flat[: int(pixels)] = float(value)
        return (out,)


NODE_CLASS_MAPPINGS = {
    "LikenessTestBadPixels": LikenessTestBadPixels,
    "LikenessTestTinyFlux": LikenessTestTinyFlux,
    "LikenessTestTinyTextEncoder": LikenessTestTinyTextEncoder,
    "LikenessTestTinyVAE": LikenessTestTinyVAE,
    "LikenessTestTinyUnionControlNet": LikenessTestTinyUnionControlNet,
}
