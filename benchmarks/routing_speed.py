"""Routing speed: the dual-price solver against the exact HiGHS LP, in one run.

Prints, for 36,000 prompts × 4 models (RouterBench's size, the paper's setting) and 200,000
prompts × 8 models, the solve time of each solver, their ratio and their quality gap.
Goals (issue: routing core): dual ≥ 20× faster than the LP and < 0.25 s at 36,000 × 4.

Instances: predicted scores from an item-response model (shared prompt difficulty, per-model
ability: correlated, continuous like a router's predictor), M/M/1-shaped mean-TTFT curves
sampled at 10 rates up to 95% of each model's capacity, a rate at 70% of total capacity and
an SLO 30% above the lowest mean TTFT reachable (so the SLO binds).

Run: ``.venv/bin/python benchmarks/routing_speed.py [--quick]`` (``--quick`` skips 200k × 8).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from routerwise.latency.curve import PiecewiseLinearCurve
from routerwise.profiles.table import ProfilePoints
from routerwise.routing.dual import solve_dual
from routerwise.routing.exact import solve_exact
from routerwise.routing.problem import RoutingProblem
from routerwise.routing.reachable import lowest_fleet_ms
from routerwise.spec.core import readonly


def instance(num_prompts: int, num_models: int, seed: int = 0) -> RoutingProblem:
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(0, 1.5, num_prompts)
    ability = np.linspace(-0.5, 1.5, num_models)  # bigger models answer more
    noise = rng.normal(0, 0.8, (num_prompts, num_models))
    scores = 1 / (1 + np.exp(-(ability[None, :] - difficulty[:, None] + noise)))
    curves = []
    for m in range(num_models):
        cap = 40.0 / (1 + m)  # bigger models sustain fewer requests/s
        base = 30.0 * (1 + m)  # … and prefill more slowly
        rates = np.linspace(0.05, 0.95, 10) * cap
        values = base * (1 + rates / (cap - rates))
        points = ProfilePoints(f"model-{m}", readonly(rates), readonly(values), "ttft_mean_ms",
                               (), "<benchmark>")
        curves.append(PiecewiseLinearCurve().fit(points))
    rate = 0.7 * sum(c.capacity_rps_ for c in curves)
    models = tuple(f"model-{m}" for m in range(num_models))
    draft = RoutingProblem(models, readonly(scores), tuple(curves), rate, 1e9)
    slo = 1.3 * lowest_fleet_ms(draft, rate)
    return RoutingProblem(models, readonly(scores), tuple(curves), rate, slo)


def timed(fn, problem, repeats):  # type: ignore[no-untyped-def]
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn(problem)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="only 36,000 × 4")
    args = parser.parse_args()
    sizes = [(36_000, 4)] if args.quick else [(36_000, 4), (200_000, 8)]
    print(f"{'prompts':>8} {'models':>6} {'dual s':>8} {'exact s':>9} {'ratio':>7} "
          f"{'dual Q':>8} {'exact Q':>8} {'|ΔQ|':>8} {'SLO ms':>7} {'dual ms':>8}")
    for n, k in sizes:
        problem = instance(n, k)
        t_dual, dual = timed(solve_dual, problem, repeats=5)
        t_exact, exact = timed(solve_exact, problem, repeats=1)
        gap = abs(dual.quality - exact.quality)
        print(f"{n:>8} {k:>6} {t_dual:>8.3f} {t_exact:>9.2f} {t_exact / t_dual:>6.0f}x "
              f"{dual.quality:>8.4f} {exact.quality:>8.4f} {gap:>8.1e} "
              f"{problem.slo_ms:>7.1f} {dual.fleet_ttft_ms:>8.1f}")
        if n == 36_000 and k == 4:
            ok = t_dual < 0.25 and t_exact / t_dual >= 20
            verdict = "met" if ok else "MISSED"
            print(f"  goal at 36,000 × 4 (dual < 0.25 s and ≥ 20× the LP): {verdict}")


if __name__ == "__main__":
    main()
