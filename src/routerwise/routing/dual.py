"""Dual-price routing (DESIGN.md §2, stages 1–2): the fast solver.

Each prompt goes to ``argmax_m (score[i,m] − α_m)``; ties are split by a softmax at a tiny
temperature ``t`` (``tie_temperature``, score units), which lets loads hit any target exactly and
costs at most ``t · ln K`` in quality (entropy bound).

For a multiplier β on the SLO, the optimal prices minimise the convex function
``Φ(α) = t/N Σ_i logsumexp((S_i − α)/t) + Σ_m β ψ_m(α_m/β)`` whose gradient is
``supply(α) − demand(α)``: prices ↔ loads at a fixed point. We minimise Φ by damped Newton in
K dimensions (vectorised numpy over prompts; no Python loop over prompts). The SLO is
monotone in β, so a safeguarded secant search on log β finds the smallest β that meets it.
Where a curve makes ``x·ℓ(Λx)`` non-convex we work on the convex envelope (``convexified``)
and still only return routings that meet the SLO on the real curves.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from routerwise.routing.costs import build_cost
from routerwise.routing.problem import FEASIBILITY_RTOL, RoutingProblem, RoutingResult
from routerwise.routing.reachable import capacity_caps_x, infeasible_result, water_fill
from routerwise.routing.supply import Supply, capacity_supply
from routerwise.spec.core import FloatArray

DEFAULT_TIE_TEMPERATURE = 1e-4
GRAD_TOL = 1e-10  # |supply − demand| in fractions of requests
CONTINUATION = (3e-2, 3e-3, 3e-4)  # temperatures for a cold start, before the target one


@dataclass(slots=True)
class _State:
    alpha: FloatArray
    shares: FloatArray  # (K, N) softmax routing at alpha
    demand: FloatArray  # (K,)
    iterations: int


class _Objective:
    """Φ(α) for fixed supplies and temperature.

    Scores are held transposed (K × N) so reductions over models are K-way elementwise
    operations on contiguous length-N rows — several times faster than row-wise reductions.
    """

    def __init__(self, scores_t: FloatArray, t: float, supplies: list[Supply]) -> None:
        self.scaled = scores_t / t
        self.t = t
        self.supplies = supplies
        self.buf = np.empty_like(self.scaled)

    def evaluate(self, alpha: FloatArray) -> _Point:
        """Value, gradient, Hessian and routing shares (K × N) at ``alpha``."""
        z = np.subtract(self.scaled, (alpha / self.t)[:, None], out=self.buf)
        zmax = np.maximum.reduce(z, axis=0)
        np.subtract(z, zmax, out=z)
        np.exp(z, out=z)
        total = np.add.reduce(z, axis=0)
        n = z.shape[1]
        lse_mean = float(zmax.mean() + np.log(total).mean())
        shares = z / total  # fresh array: the buffer is reused by the next evaluation
        demand = shares.sum(axis=1) / n
        pairs = list(zip(self.supplies, alpha.tolist(), strict=True))
        supply = np.array([s.load(a) for s, a in pairs])
        slopes = np.array([s.slope(a) for s, a in pairs])
        psi = sum(s.conjugate(a) for s, a in pairs)
        hess = (np.diag(demand) - shares @ shares.T / n) / self.t + np.diag(slopes)
        return _Point(alpha=alpha, value=self.t * lse_mean + psi, grad=supply - demand,
                      hess=hess, shares=shares, demand=demand)


@dataclass(slots=True)
class _Point:
    alpha: FloatArray
    value: float
    grad: FloatArray
    hess: FloatArray
    shares: FloatArray  # (K, N)
    demand: FloatArray


def _accept(cur: _Point, trial: _Point, s: float, slope: float) -> bool:
    """Armijo on Φ; near the optimum Φ's changes fall below float precision, so a step that
    keeps Φ within rounding and shrinks the gradient is taken as well."""
    if trial.value <= cur.value + 1e-4 * s * slope:
        return True
    flat = abs(trial.value - cur.value) <= 1e-13 * (1.0 + abs(cur.value))
    return flat and np.abs(trial.grad).max() < np.abs(cur.grad).max()


def _newton(obj: _Objective, alpha0: FloatArray, max_iter: int = 100,
            tol: float = GRAD_TOL) -> _State:
    """Damped Newton with Armijo backtracking and a step cap; K is small (≤ ~16)."""
    cur = obj.evaluate(alpha0.astype(np.float64, copy=True))
    max_step = max(0.5, 50 * obj.t)
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 (it is reported)
        if np.abs(cur.grad).max() <= tol:
            break
        damp = 1e-12 * max(float(np.trace(cur.hess)), 1.0) + 1e-14
        step = np.linalg.solve(cur.hess + damp * np.eye(len(cur.alpha)), -cur.grad)
        big = np.abs(step).max()
        if big > max_step:
            step *= max_step / big
        slope = float(cur.grad @ step)
        s = 1.0
        while True:
            trial = obj.evaluate(cur.alpha + s * step)
            if _accept(cur, trial, s, slope) or s <= 1e-12:
                break
            s *= 0.5
        if s <= 1e-12:
            break  # no descent possible at this precision
        cur = trial
    return _State(alpha=cur.alpha, shares=cur.shares, demand=cur.demand, iterations=it)


def _balanced_start(supplies: list[Supply]) -> FloatArray:
    """One common price at which the supplies sum to all requests (scores ignored)."""
    lo = min(float(s.p[0]) for s in supplies) - 1.0
    hi = max(float(s.p[-1]) for s in supplies) + 1.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if sum(s.load(mid) for s in supplies) >= 1.0 else (mid, hi)
    return np.full(len(supplies), hi)


def solve_prices(
    scores_t: FloatArray, supplies: list[Supply], t: float, alpha0: FloatArray | None = None
) -> _State:
    """Prices whose argmax routing (softmax ties at ``t``) equals the supplies' loads.

    A cold start (``alpha0`` None) walks down a temperature ladder first.
    """
    if alpha0 is None:
        alpha = _balanced_start(supplies)
        total_it = 0
        for t_warm in (c for c in CONTINUATION if c > t):
            state = _newton(_Objective(scores_t, t_warm, supplies), alpha, max_iter=40, tol=1e-6)
            alpha, total_it = state.alpha, total_it + state.iterations
        final = _newton(_Objective(scores_t, t, supplies), alpha)
        final.iterations += total_it
        return final
    return _newton(_Objective(scores_t, t, supplies), alpha0)


@dataclass(slots=True)
class _Eval:
    beta: float
    state: _State
    fleet_ms: float
    feasible: bool


@dataclass(frozen=True, slots=True)
class _Ctx:
    problem: RoutingProblem
    scores_t: FloatArray  # (K, N) contiguous
    base: list[tuple[FloatArray, FloatArray]]  # knots (marginal cost ms, fraction) per model
    t: float


def _evaluate(ctx: _Ctx, beta: float, warm: _Eval | None) -> _Eval:
    problem = ctx.problem
    supplies = [Supply.of_cost(p, x, beta, ctx.t) for p, x in ctx.base]
    alpha0 = None if warm is None else warm.state.alpha * (beta / warm.beta)
    state = solve_prices(ctx.scores_t, supplies, ctx.t, alpha0)
    fleet = problem.fleet_ttft_ms(state.demand)
    caps = np.array([c.capacity_rps_ for c in problem.curves]) / problem.total_rps
    ok = fleet <= problem.slo_ms * (1 + FEASIBILITY_RTOL) and bool(
        np.all(state.demand <= caps * (1 + FEASIBILITY_RTOL)))
    return _Eval(beta=beta, state=state, fleet_ms=fleet, feasible=ok)


def _search_beta(ctx: _Ctx) -> tuple[_Eval, int]:
    """Smallest β (to tolerance) whose routing meets the SLO on the real curves."""
    span = max(float(p[-1] - p[0]) for p, _ in ctx.base)
    beta_min = ctx.t / max(span, 1e-12)  # below this the price ramps are narrower than t
    tau = ctx.problem.slo_ms
    cur = _evaluate(ctx, 1.0 / tau, None)
    solves = 1
    lo: _Eval | None = None
    hi: _Eval | None = None
    if cur.feasible:
        hi = cur
        while hi.beta > beta_min:
            nxt = _evaluate(ctx, max(hi.beta / 10, beta_min), hi)
            solves += 1
            if not nxt.feasible:
                lo = nxt
                break
            hi = nxt
        if lo is None:
            return hi, solves  # the SLO does not bind: β ≈ 0
    else:
        lo = cur
        while hi is None and lo.beta < 1e9 / tau:
            nxt = _evaluate(ctx, lo.beta * 10, lo)
            solves += 1
            hi, lo = (nxt, lo) if nxt.feasible else (None, nxt)
        if hi is None:
            return lo, solves
    return _refine(ctx, lo, hi, solves)


def _refine(ctx: _Ctx, lo: _Eval, hi: _Eval, solves: int) -> tuple[_Eval, int]:
    """Illinois regula falsi on log β for fleet_ms(β) = τ, keeping a feasible upper end."""
    tau = ctx.problem.slo_ms
    f_lo, f_hi = lo.fleet_ms - tau, hi.fleet_ms - tau
    side = 0
    for _ in range(60):
        if f_hi >= -1e-6 * tau or math.log(hi.beta / lo.beta) < 1e-9:
            break
        u_lo, u_hi = math.log(lo.beta), math.log(hi.beta)
        u = u_hi - f_hi * (u_hi - u_lo) / (f_hi - f_lo) if np.isfinite(f_lo) else 0.5 * (
            u_lo + u_hi)
        if not (u_lo < u < u_hi) or min(u - u_lo, u_hi - u) < 1e-3 * (u_hi - u_lo):
            u = 0.5 * (u_lo + u_hi)
        nxt = _evaluate(ctx, math.exp(u), hi)
        solves += 1
        f = nxt.fleet_ms - tau
        if nxt.feasible:
            hi, f_hi = nxt, f
            if side == 1:
                f_lo *= 0.5
            side = 1
        else:
            lo, f_lo = nxt, f
            if side == -1:
                f_hi *= 0.5
            side = -1
    return hi, solves


def solve_dual(problem: RoutingProblem, tie_temperature: float = DEFAULT_TIE_TEMPERATURE
               ) -> RoutingResult:
    """Route ``problem`` with the dual-price method; infeasibility is a result, not an error."""
    start = time.perf_counter()
    if problem.scope == "per-model":
        return _solve_per_model(problem, tie_temperature, start)
    costs = [build_cost(c, m, problem.total_rps, problem.slo_ms)
             for m, c in zip(problem.models, problem.curves, strict=True)]
    convexified = any(c.convexified for c in costs)
    floor = water_fill(costs)
    if floor is None or float(sum(c.envelope_cost(x) for c, x in zip(costs, floor, strict=True))
                              ) > problem.slo_ms * (1 + FEASIBILITY_RTOL):
        return infeasible_result(problem, "dual", costs, time.perf_counter() - start)
    ctx = _Ctx(problem=problem, scores_t=np.ascontiguousarray(problem.scores.T),
               base=[(c.supply_p, c.supply_x) for c in costs], t=tie_temperature)
    best, solves = _search_beta(ctx)
    if not best.feasible:
        return infeasible_result(problem, "dual", costs, time.perf_counter() - start)
    return _result(problem, best.state, best.beta, tie_temperature, convexified, solves, start)


def _result(problem: RoutingProblem, state: _State, beta: float, t: float, convexified: bool,
            solves: int, start: float) -> RoutingResult:
    x = state.demand
    return RoutingResult(
        feasible=True, solver="dual", models=problem.models,
        quality=float(np.einsum("ik,ki->", problem.scores, state.shares) / problem.num_prompts),
        fractions=x, prices=state.alpha, shares=np.ascontiguousarray(state.shares.T),
        rates_rps=x * problem.total_rps,
        latency_ms=problem.latencies_ms(x), fleet_ttft_ms=problem.fleet_ttft_ms(x),
        solve_seconds=time.perf_counter() - start, convexified=convexified, multiplier=beta,
        tie_temperature=t, iterations=solves,
    )


def _solve_per_model(problem: RoutingProblem, t: float, start: float) -> RoutingResult:
    """Each model's own latency ≤ τ: a capacity (transportation) problem with capacity prices.

    A model whose latency exceeds τ even at zero load takes no traffic at all (price ``inf``).
    """
    caps = capacity_caps_x(problem)
    if caps.sum() < 1 - 1e-12:
        return infeasible_result(problem, "dual", None, time.perf_counter() - start)
    usable = np.flatnonzero(caps > 0)
    supplies = [capacity_supply(c * (1 - 1e-8), t) for c in caps[usable]]
    state = solve_prices(np.ascontiguousarray(problem.scores[:, usable].T), supplies, t)
    k, n = len(problem.models), problem.num_prompts
    shares = np.zeros((k, n))
    shares[usable] = state.shares
    alpha = np.full(k, np.inf)
    alpha[usable] = state.alpha
    full = _State(alpha=alpha, shares=shares, demand=shares.mean(axis=1), iterations=1)
    return _result(problem, full, 0.0, t, False, 1, start)
