"""Stand-ins for the real models: tiny random models with the official key layouts, for tests, benchmarks
and the demo on a machine without weights.

- ``models.write_model_files``: the tiny files our loaders read from a models folder (``python -m likeness.standins``);
- ``substitution``: switch a shipped workflow's loaders to the stand-ins;
- ``comfy_pack/``: the ComfyUI node pack linked into a server's custom_nodes as ``likeness_standins``; its one
  builder (``build.py``: Flux family, Union ControlNet, VAE, text encoder) serves the test nodes at tiny shapes
  and the benchmark nodes (``bench.py``, a checkout only) at Flux-dev's head size and widths.

Never imported by the nodes, and by the client only when it runs on stand-ins (no real weights found).
"""
