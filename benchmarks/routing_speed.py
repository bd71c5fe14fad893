"""Routing speed: the dual-price solver against the exact HiGHS LP, in one run.

Prints, for 36,000 prompts × 4 models (RouterBench's size, the paper's setting) and 200,000
prompts × 8 models, the solve time of each solver, their ratio and their quality gap.
Goals (issue: routing core): dual ≥ 20× faster than the LP and < 0.25 s at 36,000 × 4.

Then the scaling in the number of models (issue 7): 100,000 prompts × 4, 16, 32 and 64
models, each row's dual time also as a multiple of the 100,000 × 4 row measured in the same
run. Goal: no row above 10× the 4-model row. The LP is not run there (at 64 × 100,000 it
has 6.4 million variables and takes far longer than the benchmark); instead the dual's
quality is checked against the LP at 16, 32 and 64 models on fewer prompts (5,000; 2,000 at
64 models, where the LP alone takes about a minute on 2 cores).

Instances: predicted scores from an item-response model (shared prompt difficulty, per-model
ability: correlated, continuous like a router's predictor), M/M/1-shaped mean-TTFT curves
sampled at 10 rates up to 95% of each model's capacity, a rate at 70% of total capacity and
an SLO 30% above the lowest mean TTFT reachable (so the SLO binds).

Run: ``.venv/bin/python benchmarks/routing_speed.py [--quick]`` (``--quick`` skips the
200,000 × 8 row and the 64-model LP check).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from routerwise.latency.curve import PiecewiseLinearCurve
from routerwise.profiles.table import ProfilePoints
from routerwise.routing.dual import solve_dual
from routerwise.routing.exact import solve_exact
from routerwise.routing.problem import RoutingProblem, RoutingResult
from routerwise.routing.reachable import lowest_fleet_ms
from routerwise.spec.core import readonly

SCALING_PROMPTS = 100_000
SCALING_MODELS = (4, 16, 32, 64)
MAX_RATIO_TO_4_MODELS = 10.0
#: (prompts, models) where the dual is checked against the LP, and the largest |ΔQ| allowed
AGREEMENT = ((5_000, 16), (5_000, 32), (2_000, 64))
AGREEMENT_TOL = 1e-6


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


Solver = Callable[[RoutingProblem], RoutingResult]


def timed(fn: Solver, problem: RoutingProblem, repeats: int) -> tuple[float, RoutingResult]:
    """Median wall-clock seconds of ``repeats`` solves, and the last result."""
    times: list[float] = []
    result: RoutingResult | None = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn(problem)
        times.append(time.perf_counter() - start)
    assert result is not None
    return statistics.median(times), result


HEADER = (f"{'prompts':>8} {'models':>6} {'dual s':>8} {'×4-mod':>7} {'exact s':>9} {'ratio':>7} "
          f"{'dual Q':>8} {'exact Q':>8} {'|ΔQ|':>8} {'SLO ms':>7} {'dual ms':>8}")


def row(n: int, k: int, t_dual: float, t_ref: float | None, dual: RoutingResult,
        exact: tuple[float, RoutingResult] | None, slo_ms: float) -> str:
    """One table line; ``t_ref`` is the 4-model reference time (None: not a scaling row)."""
    rel = "" if t_ref is None else f"{t_dual / t_ref:.1f}x"
    if exact is None:
        t_exact = ratio = q_exact = gap = "—"
    else:
        t_lp, lp = exact
        t_exact, ratio = f"{t_lp:.2f}", f"{t_lp / t_dual:.0f}x"
        q_exact, gap = f"{lp.quality:.4f}", f"{abs(dual.quality - lp.quality):.1e}"
    return (f"{n:>8} {k:>6} {t_dual:>8.3f} {rel:>7} {t_exact:>9} {ratio:>7} "
            f"{dual.quality:>8.4f} {q_exact:>8} {gap:>8} {slo_ms:>7.1f} "
            f"{dual.fleet_ttft_ms:>8.1f}")


def paper_rows(quick: bool) -> None:
    """The original rows: dual vs LP at RouterBench's size (and 200k × 8)."""
    sizes = [(36_000, 4)] if quick else [(36_000, 4), (200_000, 8)]
    for n, k in sizes:
        problem = instance(n, k)
        t_dual, dual = timed(solve_dual, problem, repeats=5)
        exact = timed(solve_exact, problem, repeats=1)
        print(row(n, k, t_dual, None, dual, exact, problem.slo_ms))
        if n == 36_000 and k == 4:
            ok = t_dual < 0.25 and exact[0] / t_dual >= 20
            verdict = "met" if ok else "MISSED"
            print(f"  goal at 36,000 × 4 (dual < 0.25 s and ≥ 20× the LP): {verdict}")


def scaling_rows() -> None:
    """Dual time at 100,000 prompts against the number of models (no LP: too large)."""
    t_ref: float | None = None
    worst = 0.0
    for k in SCALING_MODELS:
        problem = instance(SCALING_PROMPTS, k)
        t_dual, dual = timed(solve_dual, problem, repeats=5)
        t_ref = t_dual if t_ref is None else t_ref
        worst = max(worst, t_dual / t_ref)
        print(row(SCALING_PROMPTS, k, t_dual, t_ref, dual, None, problem.slo_ms))
    verdict = "met" if worst <= MAX_RATIO_TO_4_MODELS else "MISSED"
    print(f"  goal at 100,000 prompts (every row ≤ {MAX_RATIO_TO_4_MODELS:g}× the 4-model row; "
          f"LP skipped, too large): {verdict} (worst {worst:.1f}×)")


def agreement_rows(quick: bool) -> None:
    """Dual vs LP quality at 16+ models on workloads small enough for the LP."""
    cases = [c for c in AGREEMENT if not (quick and c[1] >= 64)]
    worst = 0.0
    for n, k in cases:
        problem = instance(n, k)
        t_dual, dual = timed(solve_dual, problem, repeats=3)
        exact = timed(solve_exact, problem, repeats=1)
        worst = max(worst, abs(dual.quality - exact[1].quality))
        print(row(n, k, t_dual, None, dual, exact, problem.slo_ms))
    verdict = "met" if worst <= AGREEMENT_TOL else "MISSED"
    print(f"  goal at 16+ models (dual within {AGREEMENT_TOL:g} of the LP's quality): {verdict} "
          f"(worst {worst:.1e})")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="skip 200,000 × 8 and the 64-model LP check")
    args = parser.parse_args()
    print(HEADER)
    paper_rows(args.quick)
    scaling_rows()
    agreement_rows(args.quick)


if __name__ == "__main__":
    main()
