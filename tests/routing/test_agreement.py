"""Dual solver vs the exact LP on random instances (the issue's agreement property).

Guarantees tested:
* convex curves (``x·ℓ(Λx)`` convex): both solvers agree on feasibility, their qualities are
  within 1e-3, and both routings meet the SLO on the real interpolated curves;
* non-convex curves (``convexified: true``): both solvers work on the convex envelope of the
  costs and only report routings that meet the SLO on the *real* curves, which we recompute
  here from the returned fractions. Neither beats the envelope LP's optimum
  (``quality_upper_bound``, an upper bound on every feasible routing). Neither is guaranteed
  to reach it (the envelope may need a load inside a non-convex dip), but each is optimal
  *for the envelope cost it uses*: no routing whose envelope cost is at most the returned
  routing's has a higher quality (the LP's value at that budget), up to the dual's softmax and
  ramp smoothing (≤ t·ln K + K·t/2 < 1e-3) — Lagrangian sufficiency for the dual's (α, β),
  and monotonicity of the LP's value in its budget for the exact solver, whose budget is τ
  tightened until the real SLO holds.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routerwise.routing.costs import build_cost
from routerwise.routing.dual import solve_dual
from routerwise.routing.exact import envelope_quality, solve_exact
from routerwise.routing.problem import RoutingProblem, RoutingResult
from routerwise.routing.reachable import lowest_fleet_ms
from tests.routing.builders import make_curve, make_problem

TOL = 1e-3


@st.composite
def instances(draw: st.DrawFn) -> tuple[RoutingProblem, bool]:
    seed = draw(st.integers(0, 2**32 - 1))
    k = draw(st.integers(2, 6))
    n = draw(st.sampled_from([50, 200, 800, 3000]))
    kind = draw(st.sampled_from(["continuous", "binary", "graded"]))
    convex = draw(st.booleans())
    rng = np.random.default_rng(seed)
    if kind == "continuous":
        scores = rng.beta(2, 2, (n, k)) * rng.uniform(0.5, 1.0, k)
    elif kind == "binary":
        scores = (rng.random((n, k)) < rng.uniform(0.3, 0.9, k)).astype(float)
    else:  # RouterBench-like quarter grades
        scores = rng.integers(0, 5, (n, k)) / 4.0
    curves = []
    for m in range(k):
        p = int(rng.integers(2, 9))
        cap = rng.uniform(5, 40)
        rates = np.sort(rng.uniform(0.05, 1.0, p)) * cap
        rates[-1] = cap
        rates = np.unique(rates)
        if len(rates) < 2:
            rates = np.array([cap / 2, cap])
        base = rng.uniform(20, 300)
        if convex:
            values = base + rng.uniform(10, 500) * (rates / cap) ** rng.uniform(1, 4)
        else:
            values = base + np.cumsum(rng.exponential(60, len(rates)))
        curves.append(make_curve(f"m{m}", rates, values))
    total_cap = sum(c.capacity_rps_ for c in curves)
    rate = rng.uniform(0.2, 0.9) * total_cap
    problem = make_problem(scores, curves, rate, 100.0)
    floor = lowest_fleet_ms(problem, rate)
    slo = floor * draw(st.sampled_from([0.9, 1.02, 1.2, 1.6, 3.0]))
    return make_problem(scores, curves, rate, slo), convex


def real_fleet_ms(problem: RoutingProblem, fractions: np.ndarray) -> float:
    """``Σ_m x_m ℓ_m(Λ x_m)`` on the real interpolated curves (a load within float noise of a
    model's capacity counts as at capacity; past it the curve is infinite)."""
    total = 0.0
    for x, curve in zip(fractions, problem.curves, strict=True):
        if x <= 0:
            continue
        rate = x * problem.total_rps
        if rate <= curve.capacity_rps_ * (1 + 1e-7):
            rate = min(rate, curve.capacity_rps_)
        total += x * float(curve(rate))
    return total


def envelope_ms(problem: RoutingProblem, fractions: np.ndarray) -> float:
    """The routing's cost on the convexified (chord) envelopes the solvers optimise."""
    costs = [build_cost(c, m, problem.total_rps, problem.slo_ms)
             for m, c in zip(problem.models, problem.curves, strict=True)]
    return sum(float(c.envelope_cost(x)) for c, x in zip(costs, fractions, strict=True))


def _check_valid(problem: RoutingProblem, r: RoutingResult) -> None:
    assert r.shares is not None
    assert np.allclose(r.shares.sum(axis=1), 1.0, atol=1e-9)
    assert np.all(r.shares >= -1e-12)
    assert np.allclose(r.fractions, r.shares.mean(axis=0), atol=1e-9)
    assert problem.meets_slo(r.fractions), (r.fleet_ttft_ms, problem.slo_ms)
    quality = float((problem.scores * r.shares).sum() / problem.num_prompts)
    assert abs(quality - r.quality) < 1e-9


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=True)  # CI runs a fixed sample; run with more examples locally to hunt
@given(instances())
def test_dual_agrees_with_exact(case: tuple[RoutingProblem, bool]) -> None:
    problem, _ = case
    dual, exact = solve_dual(problem), solve_exact(problem)
    for r in (dual, exact):
        if r.feasible:
            _check_valid(problem, r)
    if not (dual.convexified or exact.convexified):
        assert dual.feasible == exact.feasible, (dual.message, exact.message)
        if dual.feasible:
            assert abs(dual.quality - exact.quality) <= TOL
        return
    assert dual.convexified and exact.convexified
    for r, slack in ((dual, TOL), (exact, 1e-6)):
        if r.feasible:
            assert real_fleet_ms(problem, r.fractions) <= problem.slo_ms * (1 + 1e-7)
            best = envelope_quality(problem, envelope_ms(problem, r.fractions))
            assert best is not None  # the routing itself has that envelope cost
            assert r.quality >= best - slack, (r.solver, r.quality, best)
    if exact.feasible:
        bound = exact.quality_upper_bound
        assert bound is not None
        assert exact.quality <= bound + 1e-9
        if dual.feasible:
            assert dual.quality <= bound + TOL


@settings(max_examples=25, deadline=None, derandomize=True)
@given(instances())
def test_per_model_scope_agrees(case: tuple[RoutingProblem, bool]) -> None:
    base, _ = case
    problem = RoutingProblem(base.models, base.scores, base.curves, base.total_rps,
                             base.slo_ms, "per-model")
    dual, exact = solve_dual(problem), solve_exact(problem)
    assert dual.feasible == exact.feasible
    if dual.feasible:
        for r in (dual, exact):
            _check_valid(problem, r)
            used = r.fractions > 1e-9
            assert np.all(r.latency_ms[used] <= problem.slo_ms * (1 + 1e-7))
        assert abs(dual.quality - exact.quality) <= TOL
