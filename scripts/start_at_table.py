"""Print the Apply PuLID-Flux start_at that starts identity injection at the official PuLID-Flux ``start_step``.

The official pipeline injects ID from step index ``start_step`` of N (0-based); Apply PuLID-Flux compares the
current sigma with ``percent_to_sigma(start_at)``. This prints, per scheduler and step count, the first step that
start_at = k/N and (k - 0.5)/N give, and the interval of start_at that starts exactly at step k (its middle is the
safe value), using ComfyUI's own Flux model sampling (shift 1.15, flux1-dev) and schedulers.

    LIKENESS_COMFYUI=~/.cache/likeness/comfyui-0.3.75 python scripts/start_at_table.py
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger("start_at_table")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.path.insert(0, os.path.expanduser(os.environ.get("LIKENESS_COMFYUI", "~/.cache/likeness/comfyui-0.3.75")))
    sys.argv = sys.argv[:1] + ["--cpu"]
    import comfy.options

    comfy.options.enable_args_parsing()
    import comfy.model_sampling as ms
    import comfy.samplers as cs

    class Flux(ms.ModelSamplingFlux, ms.CONST):
        pass

    class Settings:
        sampling_settings = {"shift": 1.15}

    m = Flux(Settings())
    grid = [i / 10000 for i in range(10001)]
    log.info("scheduler | N | k | first step at k/N | at (k-0.5)/N | start_at range for step k | middle")
    for sched in ("simple", "beta"):
        for n in (20, 28):
            sig = [float(s) for s in cs.calculate_sigmas(m, sched, n)]

            def first(p: float, sig=sig, n=n) -> int:
                s0 = float(m.percent_to_sigma(p))
                return next((i for i in range(n) if sig[i] <= s0), n)

            firsts = [first(p) for p in grid]
            for k in range(0, 6):
                hits = [p for p, f in zip(grid, firsts) if f == k]
                rng = f"{hits[0]:.4f}-{hits[-1]:.4f}" if hits else "none"
                mid = f"{(hits[0] + hits[-1]) / 2:.3f}" if hits else "-"
                log.info(f"{sched} | {n} | {k} | {first(k / n)} | {first(max(0.0, (k - 0.5) / n))} | {rng} | {mid}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
