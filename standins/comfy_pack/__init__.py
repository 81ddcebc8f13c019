"""Test-only ComfyUI node pack: stand-in models built with ComfyUI's own model classes (one builder: build.py).

Never registered by Likeness itself: the tests, the benchmarks and the stand-in demo link this folder into the
server's custom_nodes as ``likeness_standins``. Each loader node replaces one core loader of a user workflow
(UNETLoader, DualCLIPLoader, VAELoader, ControlNetLoader) and returns an object of the same kind, so every other
node of the workflow runs exactly as it would for a user. Weights are random but seeded: the same seed gives the
same model in every process. The benchmark nodes (bench.py: Flux-dev-shaped, timers) are in a checkout only;
the published archive leaves them out (.comfyignore).
"""

from __future__ import annotations

from importlib.util import find_spec

from . import coexist, families, nodes

NODE_CLASS_MAPPINGS = {**nodes.NODE_CLASS_MAPPINGS, **families.NODE_CLASS_MAPPINGS, **coexist.NODE_CLASS_MAPPINGS}
NODE_DISPLAY_NAME_MAPPINGS = {k: k.replace("LikenessTest", "Test stand-in: ") for k in NODE_CLASS_MAPPINGS}

if find_spec(f"{__name__}.bench") is not None:
    from . import bench

    NODE_CLASS_MAPPINGS.update(bench.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update({k: k.replace("LikenessBench", "Benchmark stand-in: ") for k in bench.NODE_CLASS_MAPPINGS})
