"""What *is* reachable when the SLO is not: the lowest mean latency at this rate, and the
highest rate at which the SLO can still be met (for infeasible answers, exit code 2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from routerwise.routing.costs import ModelCost, build_cost
from routerwise.routing.problem import RoutingProblem, RoutingResult
from routerwise.spec.core import FloatArray

#: Steps of the grid that brackets the common marginal cost in each round of water_fill.
WATER_FILL_GRID = 64


def water_fill(costs: list[ModelCost]) -> FloatArray | None:
    """Fractions minimising ``Σ_m h_m(x_m)`` (envelope) with ``Σ x = 1``; None past capacity.

    Equalises marginal costs: the common marginal cost ν with Σ supply(ν) = 1, bracketed by
    rounds of a 64-step grid (each round one vectorised call per model; 64 bisections' worth
    of narrowing in 11 rounds).
    """
    if sum(c.cap_x for c in costs) < 1 - 1e-12:
        return None
    lo = min(float(c.supply_p[0]) for c in costs) - 1.0
    hi = max(float(c.supply_p[-1]) for c in costs) + 1.0
    for _ in range(16):  # the bracket shrinks to float resolution of the marginal cost
        grid = np.linspace(lo, hi, WATER_FILL_GRID + 1)
        total = sum(c.supply(grid) for c in costs)
        j = min(max(int(np.searchsorted(total >= 1.0, True)), 1), WATER_FILL_GRID)
        if grid[j - 1] == lo and grid[j] == hi:
            break
        lo, hi = float(grid[j - 1]), float(grid[j])
    # between lo and hi only models whose supply jumps (a flat marginal cost) change:
    # they share the remainder, which keeps every marginal cost equal
    x_lo = np.array([float(c.supply(lo)) for c in costs])
    x_hi = np.array([float(c.supply(hi)) for c in costs])
    gap = x_hi.sum() - x_lo.sum()
    theta = 1.0 if gap <= 0 else min(max((1.0 - x_lo.sum()) / gap, 0.0), 1.0)
    out: FloatArray = x_lo + theta * (x_hi - x_lo)
    return out


def envelope_floor_ms(costs: Sequence[ModelCost]) -> float:
    """Lowest ``Σ_m h_m(x_m)`` over routings (on the envelopes); ``inf`` past capacity."""
    x = water_fill(list(costs))
    if x is None:
        return math.inf
    return float(sum(c.envelope_cost(v) for c, v in zip(costs, x, strict=True)))


def lowest_fleet_ms(problem: RoutingProblem, total_rps: float) -> float:
    """Lowest request-weighted mean latency any routing reaches at ``total_rps`` (envelope)."""
    return envelope_floor_ms([build_cost(c, m, total_rps, problem.slo_ms)
                              for m, c in zip(problem.models, problem.curves, strict=True)])


def capacity_caps_x(problem: RoutingProblem) -> FloatArray:
    """Per-model scope: the largest fraction each model takes with its own latency ≤ τ."""
    return np.array([min(_own_cap_rps(problem, k) / problem.total_rps, 1.0)
                     for k in range(len(problem.models))])


def max_rate_meeting_slo(problem: RoutingProblem) -> float | None:
    """Highest total rate (req/s) at which some routing meets the SLO; None if none does."""
    if problem.scope == "per-model":
        total = sum(_own_cap_rps(problem, k) for k in range(len(problem.models)))
        return total if total > 0 else None
    hi = sum(c.capacity_rps_ for c in problem.curves) * (1 - 1e-9)
    lo = min(float(c.rates_[0]) for c in problem.curves) * 1e-6
    if lowest_fleet_ms(problem, lo) > problem.slo_ms:
        return None
    if lowest_fleet_ms(problem, hi) <= problem.slo_ms:
        return hi
    for _ in range(50):
        mid = math.sqrt(lo * hi)
        if lowest_fleet_ms(problem, mid) <= problem.slo_ms:
            lo = mid
        else:
            hi = mid
        if hi / lo < 1 + 1e-6:
            break
    return lo


def _own_cap_rps(problem: RoutingProblem, k: int) -> float:
    """Highest rate (req/s) at which model k's own latency stays ≤ τ (0 if never)."""
    curve = problem.curves[k]
    r, v = curve.rates_, curve.values_
    ok = np.flatnonzero(v <= problem.slo_ms)
    if len(ok) == 0:
        return 0.0
    j = int(ok[-1])
    if j == len(r) - 1:
        return float(r[j])
    return float(r[j] + (problem.slo_ms - v[j]) * (r[j + 1] - r[j]) / (v[j + 1] - v[j]))


def infeasible_result(problem: RoutingProblem, solver: str, costs: list[ModelCost] | None,
                      seconds: float) -> RoutingResult:
    """A ``feasible: false`` result whose message says what is reachable."""
    lowest = lowest_fleet_ms(problem, problem.total_rps)
    max_rate = max_rate_meeting_slo(problem)
    capacity = sum(c.capacity_rps_ for c in problem.curves)
    convexified = bool(costs and any(c.convexified for c in costs))
    if math.isinf(lowest):
        why = (f"rate_rps={problem.total_rps:g} exceeds the total profiled capacity "
               f"{capacity:g} req/s")
    elif problem.scope == "per-model":
        why = (f"each model's own mean TTFT stays within it only up to {max_rate or 0:.3g} "
               f"req/s in total, below the {problem.total_rps:g} req/s asked")
    else:
        bound = " at least" if convexified else ""
        why = (f"the lowest mean TTFT any routing reaches at {problem.total_rps:g} req/s is"
               f"{bound} {lowest:.1f} ms" + (" (a convex-envelope bound: a curve is not convex)"
                                             if convexified else ""))
    idle = min(float(c.values_[0]) for c in problem.curves)
    rate_txt = (f"the highest rate that meets it: none (even at zero load the fastest model's "
                f"mean TTFT is {idle:.1f} ms)" if max_rate is None
                else f"the highest rate that meets it is {max_rate:.3g} req/s")
    scope = "fleet mean TTFT SLO" if problem.scope == "fleet" else "per-model mean TTFT SLO"
    message = (f"infeasible: no routing meets the {scope} of {problem.slo_ms:g} ms; "
               f"{why}; {rate_txt}")
    k = len(problem.models)
    nan = np.full(k, np.nan)
    return RoutingResult(
        feasible=False, solver=solver, models=problem.models, quality=math.nan, fractions=nan,
        prices=nan, shares=None, rates_rps=nan, latency_ms=nan, fleet_ttft_ms=math.nan,
        solve_seconds=seconds,
        convexified=convexified, message=message,
        reachable={"lowest_ttft_mean_ms": None if math.isinf(lowest) else lowest,
                   "max_rate_rps": max_rate, "capacity_rps": capacity},
    )
