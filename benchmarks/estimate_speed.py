"""Speed of the GPU-free estimator (issue 3): prints timings and ratios to the targets.

1. One shape, full sweep (saturation search + 10 rates x 2,000 requests) after the first
   compile; target <= 5 s on a 2-core machine.
2. Every shape of the paper's four models on A100-SXM-80GB (tp 1/2/4 x MPS shares
   10-100% x 4 models) from a cold cache; target <= 300 s. Shapes that do not fit are
   counted (the memory model rejects them in microseconds).

Run: ``.venv/bin/python benchmarks/estimate_speed.py``
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from pathlib import Path

from routerwise.errors import InfeasibleError
from routerwise.profiles.aic_steps import compile_engine
from routerwise.profiles.estimator import TokenLengths, estimate_profile, estimate_profile_cached
from routerwise.spec.catalog import PAPER_MODELS, get_gpu, get_model

SHARES = tuple(round(0.1 * i, 1) for i in range(1, 11))
TPS = (1, 2, 4)


def one_shape() -> float:
    model, gpu = get_model("llama-3.1-8b"), get_gpu("a100")
    lengths = TokenLengths.fixed(512, 128)
    t0 = time.perf_counter()
    compile_engine(model, gpu.aic_system, 1)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    table = estimate_profile(model, gpu, 1, 1.0, None, lengths, num_requests=2000)
    sweep_s = time.perf_counter() - t0
    frame = table.to_frame()
    print(f"[1] compile {compile_s:.2f} s; sweep of {len(frame)} rates x 2000 requests: "
          f"{sweep_s:.2f} s (target 5 s, ratio {sweep_s / 5:.2f}); saturation sampled up to "
          f"{frame['rate_rps'].max():.1f} req/s")
    return sweep_s


def all_paper_shapes(cache_dir: Path) -> float:
    gpu, lengths = get_gpu("a100"), TokenLengths.fixed(512, 128)
    done = infeasible = 0
    t0 = time.perf_counter()
    for model_id in PAPER_MODELS:
        model = get_model(model_id)
        for tp in TPS:
            for share in SHARES:
                try:
                    estimate_profile_cached(model, gpu, tp, share, None, lengths,
                                            cache_dir=cache_dir)
                    done += 1
                except InfeasibleError:
                    infeasible += 1
    total_s = time.perf_counter() - t0
    print(f"[2] {done + infeasible} shapes ({done} estimated, {infeasible} do not fit) on "
          f"A100 from a cold cache: {total_s:.1f} s (target 300 s, ratio {total_s / 300:.2f})")
    t0 = time.perf_counter()
    for model_id in PAPER_MODELS:
        for tp in TPS:
            for share in SHARES:
                with contextlib.suppress(InfeasibleError):
                    estimate_profile_cached(get_model(model_id), gpu, tp, share, None, lengths,
                                            cache_dir=cache_dir)
    print(f"    warm cache, same {done + infeasible} shapes: {time.perf_counter() - t0:.2f} s")
    return total_s


def main() -> None:
    logging.disable(logging.WARNING)  # aiconfigurator's data-loading notices
    one_shape()
    with tempfile.TemporaryDirectory() as tmp:
        all_paper_shapes(Path(tmp))


if __name__ == "__main__":
    main()
