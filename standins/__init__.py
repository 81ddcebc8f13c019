"""Stand-ins for the real models: tiny random models with the official key layouts, for tests, benchmarks
and the demo on a machine without weights.

- ``models.write_model_files``: the tiny files our loaders read from a models folder (``python -m likeness.standins``);
- ``substitution``: switch a shipped workflow's loaders to the stand-ins;
- ``comfy_pack/`` (tiny Flux, text encoder, VAE, Union ControlNet) and ``bench_pack/`` (Flux-shaped, for timing):
  ComfyUI node packs linked into a server's custom_nodes as ``likeness_standins`` / ``likeness_bench``.

Never imported by the nodes, and by the client only when it runs on stand-ins (no real weights found).
"""
