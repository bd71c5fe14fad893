"""The exact reference for routing: a linear program solved by HiGHS (scipy).

Variables: shares ``w[i,m] ≥ 0`` (N·K), loads ``x_m`` and cost epigraphs ``z_m``. The fleet
cost ``h_m(x) = x·ℓ_m(Λx)`` enters through the chords of its (convexified) samples — a
piecewise-linear approximation within ``1e-7·τ`` of ``h`` that lies above a convex ``h``, so
every LP solution meets the SLO on the real curves. Prices are the duals of the load rows.

When a curve makes ``h`` non-convex the LP works on the envelope: its optimum is an upper
bound (``quality_upper_bound``); we then tighten τ until the routing meets the SLO on the real
curves, so a reported feasible routing is always truly feasible.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from routerwise.routing.costs import ModelCost, build_cost
from routerwise.routing.problem import FEASIBILITY_RTOL, RoutingProblem, RoutingResult
from routerwise.routing.reachable import capacity_caps_x, infeasible_result
from routerwise.spec.core import FloatArray

#: scipy-stubs' overloads reject sparse constraint matrices, which HiGHS accepts natively.
_linprog: Any = linprog


def _lp(problem: RoutingProblem, caps_x: FloatArray, costs: list[ModelCost] | None,
        budget_ms: float) -> tuple[FloatArray, FloatArray, float] | None:
    """Solve the LP; returns (shares N×K, prices K, quality) or None when infeasible."""
    S = problem.scores
    N, K = S.shape
    nw = N * K
    nz = K if costs is not None else 0
    nvar = nw + K + nz
    c = np.zeros(nvar)
    c[:nw] = -S.ravel() / N
    # rows: Σ_m w[i,m] = 1 (N rows); x_m − 1/N Σ_i w[i,m] = 0 (K rows)
    rows = np.concatenate([np.repeat(np.arange(N), K), N + np.tile(np.arange(K), N),
                           N + np.arange(K)])
    cols = np.concatenate([np.arange(nw), np.arange(nw), nw + np.arange(K)])
    vals = np.concatenate([np.ones(nw), np.full(nw, -1.0 / N), np.ones(K)])
    a_eq = sp.csr_matrix((vals, (rows, cols)), shape=(N + K, nvar))
    b_eq = np.concatenate([np.ones(N), np.zeros(K)])
    a_ub, b_ub = None, None
    if costs is not None:
        a_ub, b_ub = _chord_rows(costs, nw, K, nvar, budget_ms)
    bounds = [(0.0, None)] * nw + [(0.0, float(v)) for v in caps_x] + [(None, None)] * nz
    res = _linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs-ipm")
    if res.status == 2:
        return None
    if res.status != 0:
        raise RuntimeError(f"HiGHS failed: {res.message}")
    shares = np.clip(res.x[:nw].reshape(N, K), 0.0, 1.0)
    # the dual y_m of load row m is the price: a basic w[i,m] has reduced cost
    # −S[i,m]/N − y_i + y_m/N = 0, so prompt i picks argmax_m S[i,m] − y_m
    prices = np.asarray(res.eqlin.marginals[N:], dtype=np.float64)
    return shares, prices, float(-res.fun)


def _chord_rows(costs: list[ModelCost], nw: int, K: int, nvar: int,
                budget_ms: float) -> tuple[sp.csr_matrix, FloatArray]:
    """``g_j x_m − z_m ≤ −a_j`` for every chord j of model m, and ``Σ z_m ≤ budget``."""
    r, cidx, v, b = [], [], [], []
    row = 0
    for m, cost in enumerate(costs):
        g = cost.chord_slopes
        a = cost.hs[:-1] - g * cost.xs[:-1]
        n = len(g)
        idx = row + np.arange(n)
        r += [idx, idx]
        cidx += [np.full(n, nw + m), np.full(n, nw + K + m)]
        v += [g, -np.ones(n)]
        b.append(-a)
        row += n
    r.append(np.full(K, row))
    cidx.append(nw + K + np.arange(K))
    v.append(np.ones(K))
    b.append(np.array([budget_ms]))
    mat = sp.csr_matrix((np.concatenate(v), (np.concatenate(r), np.concatenate(cidx))),
                        shape=(row + 1, nvar))
    return mat, np.concatenate(b)


def envelope_quality(problem: RoutingProblem, budget_ms: float) -> float | None:
    """The LP's best quality over routings whose convexified (chord) cost
    ``Σ_m envelope_m(x_m)`` is at most ``budget_ms``; None when no routing is that cheap.

    A reference for any routing: none with that envelope cost can do better.
    """
    costs = [build_cost(c, m, problem.total_rps, problem.slo_ms)
             for m, c in zip(problem.models, problem.curves, strict=True)]
    out = _lp(problem, np.array([c.cap_x for c in costs]), costs, budget_ms)
    return None if out is None else out[2]


def solve_exact(problem: RoutingProblem) -> RoutingResult:
    """Route ``problem`` by the LP reference; infeasibility is a result, not an error."""
    start = time.perf_counter()
    costs: list[ModelCost] | None = None
    if problem.scope == "per-model":
        caps = capacity_caps_x(problem) * (1 - 1e-9)
    else:
        costs = [build_cost(c, m, problem.total_rps, problem.slo_ms)
                 for m, c in zip(problem.models, problem.curves, strict=True)]
        caps = np.array([c.cap_x for c in costs])
    convexified = bool(costs and any(c.convexified for c in costs))
    budget = problem.slo_ms * (1 + FEASIBILITY_RTOL)  # the same tolerance as the dual's check
    bound: float | None = None
    for _ in range(30):
        out = _lp(problem, caps, costs, budget)
        if out is None:
            return infeasible_result(problem, "exact", costs, time.perf_counter() - start)
        shares, prices, quality = out
        bound = quality if bound is None else bound
        x = shares.mean(axis=0)
        if problem.meets_slo(x):
            break
        # only reachable on a convexified curve: tighten the budget by the overshoot
        budget -= problem.fleet_ttft_ms(x) - problem.slo_ms * (1 - FEASIBILITY_RTOL)
    else:
        return infeasible_result(problem, "exact", costs, time.perf_counter() - start)
    return RoutingResult(
        feasible=True, solver="exact", models=problem.models, quality=quality, fractions=x,
        prices=prices, shares=shares, rates_rps=x * problem.total_rps,
        latency_ms=problem.latencies_ms(x), fleet_ttft_ms=problem.fleet_ttft_ms(x),
        solve_seconds=time.perf_counter() - start, convexified=convexified,
        quality_upper_bound=bound if convexified else None,
    )
