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
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from routerwise.routing.costs import ModelCost, build_cost
from routerwise.routing.problem import FEASIBILITY_RTOL, RoutingProblem, RoutingResult
from routerwise.routing.reachable import capacity_caps_x, envelope_floor_ms, infeasible_result
from routerwise.routing.supply import Supply, capacity_supply
from routerwise.spec.core import FloatArray

DEFAULT_TIE_TEMPERATURE = 1e-4
GRAD_TOL = 1e-10  # |supply − demand| in fractions of requests
#: The β search stops once the fleet latency is within this fraction below the SLO: the
#: quality left on the table is about β·SLO_RTOL·τ, below 1e-5 in practice.
SLO_RTOL = 1e-5
CONTINUATION = (1e-2, 1e-3)  # temperatures for a cold start, before the target one


@dataclass(slots=True)
class _State:
    alpha: FloatArray
    demand: FloatArray  # (K,) fractions routed to each model at alpha
    iterations: int
    hess: FloatArray | None = None  # Φ's Hessian at alpha (for implicit derivatives)
    slopes: FloatArray | None = None  # each supply's slope at alpha


#: A prompt whose best model beats the runner-up by more than this many temperatures routes
#: to it with share 1 − O(e^-40): it is "decided" and handled in closed form.
DECIDED_MARGIN_T = 40.0
#: How far prices may move (score units) before the decided/active split is recomputed.
REBASE_BUDGET = 0.02
#: Below this many prompts the split costs more than it saves.
ACTIVE_SET_MIN_PROMPTS = 10_000


def softmax_shares(scores_t: FloatArray, alpha: FloatArray, t: float) -> FloatArray:
    """The routing (K × N): argmax of score − α, ties split by a softmax at temperature t."""
    z = (scores_t - alpha[:, None]) / t
    z -= z.max(axis=0)
    np.exp(z, out=z)
    z /= z.sum(axis=0)
    return z


class _Demand:
    """The softmax demand side of Φ for one score matrix and temperature.

    Scores are held transposed (K × N) so reductions over models are K-way elementwise
    operations on contiguous rows. Only prompts near a tie (the *active* set) are evaluated
    by softmax; decided prompts contribute in closed form (their counts and score sums), which
    stays exact while prices move less than ``REBASE_BUDGET`` from where the split was made.
    One instance serves every β of a search, so the split is rarely recomputed.
    """

    def __init__(self, scores_t: FloatArray, t: float) -> None:
        self.scores_t = scores_t
        self.k, self.n = scores_t.shape
        self.t = t
        self.ref: FloatArray | None = None
        self.active = np.empty((self.k, 0))
        self.counts = np.zeros(self.k)
        self.decided_score_sum = 0.0

    def _rebase(self, alpha: FloatArray) -> None:
        if self.n < ACTIVE_SET_MIN_PROMPTS:  # small workloads: every prompt stays active
            self.active = self.scores_t / self.t
            self.counts = np.zeros(self.k)
            self.decided_score_sum = 0.0
            self.ref = np.full(self.k, np.nan)  # never stale
            return
        z = self.scores_t - alpha[:, None]
        top = np.maximum.reduce(z, axis=0)
        is_top = z >= top
        second = np.maximum.reduce(np.where(is_top, -np.inf, z), axis=0)
        ties = is_top.sum(axis=0) > 1
        margin = np.where(ties, 0.0, top - second)
        active = margin < DECIDED_MARGIN_T * self.t + 2 * REBASE_BUDGET
        self.active = np.ascontiguousarray(self.scores_t[:, active]) / self.t
        winners = is_top[:, ~active]  # exactly one True per decided column
        self.counts = winners.sum(axis=1).astype(float)
        self.decided_score_sum = float(self.scores_t[:, ~active][winners].sum())
        self.ref = alpha.copy()

    def evaluate(self, alpha: FloatArray) -> tuple[float, FloatArray, FloatArray]:
        """(mean t·logsumexp, demand (K,), Hessian of the demand side) at ``alpha``."""
        if self.ref is None or np.abs(alpha - self.ref).max() > REBASE_BUDGET:  # NaN: never
            self._rebase(alpha)
        z = self.active - (alpha / self.t)[:, None]
        zmax = np.maximum.reduce(z, axis=0) if z.shape[1] else np.zeros(0)
        z -= zmax
        np.exp(z, out=z)
        total = np.add.reduce(z, axis=0)
        lse_sum = float(zmax.sum() + np.log(total).sum())
        z /= total
        active_demand = z.sum(axis=1)
        demand = (active_demand + self.counts) / self.n
        # t·logsumexp of a decided prompt is its best score minus that model's price
        value = (self.t * lse_sum + self.decided_score_sum - float(self.counts @ alpha)) / self.n
        hess = (np.diag(active_demand) - z @ z.T) / (self.t * self.n)
        return value, demand, hess


class _Objective:
    """Φ(α) = demand side + Σ_m ψ_m(α_m) for fixed supplies."""

    def __init__(self, demand: _Demand, supplies: list[Supply]) -> None:
        self.demand = demand
        self.t = demand.t
        self.supplies = supplies

    def evaluate(self, alpha: FloatArray) -> _Point:
        """Value, gradient and Hessian at ``alpha``."""
        d_value, demand, d_hess = self.demand.evaluate(alpha)
        pairs = list(zip(self.supplies, alpha.tolist(), strict=True))
        supply = np.array([s.load(a) for s, a in pairs])
        slopes = np.array([s.slope(a) for s, a in pairs])
        psi = sum(s.conjugate(a) for s, a in pairs)
        return _Point(alpha=alpha, value=d_value + psi, grad=supply - demand,
                      hess=d_hess + np.diag(slopes), demand=demand, slopes=slopes)


@dataclass(slots=True)
class _Point:
    alpha: FloatArray
    value: float
    grad: FloatArray
    hess: FloatArray
    demand: FloatArray
    slopes: FloatArray


def _regularized_solve(hess: FloatArray, rhs: FloatArray) -> FloatArray:
    """``H⁻¹·rhs`` with H's eigenvalues floored at a small positive value.

    Φ is convex but its Hessian can be singular (no prompt near a tie, a supply in a flat
    piece) and rounding can make it slightly indefinite; flooring the spectrum keeps the
    Newton direction a descent direction (steepest descent along the flat directions).
    """
    lam, vec = np.linalg.eigh(0.5 * (hess + hess.T))
    floor = max(1e-9 * float(lam.max(initial=0.0)), 1e-12)
    out: FloatArray = vec @ ((vec.T @ rhs) / np.maximum(lam, floor))
    return out


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
        step = -_regularized_solve(cur.hess, cur.grad)
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
    return _State(alpha=cur.alpha, demand=cur.demand, iterations=it, hess=cur.hess,
                  slopes=cur.slopes)


def _balanced_start(supplies: list[Supply]) -> FloatArray:
    """One common price at which the supplies sum to all requests (scores ignored)."""
    lo = min(float(s.p[0]) for s in supplies) - 1.0
    hi = max(float(s.p[-1]) for s in supplies) + 1.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if sum(s.load(mid) for s in supplies) >= 1.0 else (mid, hi)
    return np.full(len(supplies), hi)


def solve_prices(
    demand: _Demand, supplies: list[Supply], alpha0: FloatArray | None = None
) -> _State:
    """Prices whose argmax routing (softmax ties at ``demand.t``) equals the supplies' loads.

    A cold start (``alpha0`` None) walks down a temperature ladder first.
    """
    if alpha0 is not None:
        return _newton(_Objective(demand, supplies), alpha0)
    alpha = _balanced_start(supplies)
    total_it = 0
    for t_warm in (c for c in CONTINUATION if c > demand.t):
        warm = _Demand(demand.scores_t, t_warm)
        state = _newton(_Objective(warm, supplies), alpha, max_iter=40, tol=1e-6)
        alpha, total_it = state.alpha, total_it + state.iterations
    final = _newton(_Objective(demand, supplies), alpha)
    final.iterations += total_it
    return final


@dataclass(slots=True)
class _Eval:
    beta: float
    state: _State
    fleet_ms: float
    feasible: bool
    dalpha_dbeta: FloatArray  # implicit derivative of the optimal prices
    dfleet_dlogbeta: float  # ≈ d(fleet mean latency)/d(log β), ms; ≤ 0


@dataclass(frozen=True, slots=True)
class _Ctx:
    problem: RoutingProblem
    demand: _Demand  # softmax demand at the target temperature, shared by all β
    base: list[tuple[FloatArray, FloatArray]]  # knots (marginal cost ms, fraction) per model
    t: float


def _sensitivity(state: _State, beta: float, t: float) -> tuple[FloatArray, float]:
    """dα/dβ and d fleet / d log β at an inner optimum, by the implicit function theorem.

    Optimality is ``supply(α; β) = demand(α)`` with ``supply_m`` the inverse of
    ``α = β·p_m(x) + t·x``; so ``∂supply_m/∂β = −slope_m·p_m`` and ``J·dα/dβ = slope·p``.
    """
    assert state.hess is not None and state.slopes is not None
    x = state.demand
    marginal_ms = (state.alpha - t * x) / beta  # p_m(x_m), each model's marginal cost
    rhs = state.slopes * marginal_ms
    dalpha = _regularized_solve(state.hess, rhs)
    demand_hess = state.hess - np.diag(state.slopes)
    dx = -demand_hess @ dalpha
    return dalpha, float(beta * marginal_ms @ dx)


@dataclass(frozen=True, slots=True)
class Hint:
    """Prices and multiplier of a similar problem (e.g. the previous setup of a search), used
    as a warm start; any hint is safe — it only changes where the iterations begin."""

    alpha: FloatArray
    beta: float


def _evaluate(ctx: _Ctx, beta: float, warm: _Eval | None) -> _Eval:
    alpha0 = None if warm is None else warm.state.alpha + warm.dalpha_dbeta * (beta - warm.beta)
    return _evaluate_from(ctx, beta, alpha0)


def _evaluate_from(ctx: _Ctx, beta: float, alpha0: FloatArray | None) -> _Eval:
    problem = ctx.problem
    supplies = [Supply.of_cost(p, x, beta, ctx.t) for p, x in ctx.base]
    if alpha0 is not None and not np.all(np.isfinite(alpha0)):
        alpha0 = None
    state = solve_prices(ctx.demand, supplies, alpha0)
    fleet = problem.fleet_ttft_ms(state.demand)
    caps = np.array([c.capacity_rps_ for c in problem.curves]) / problem.total_rps
    ok = fleet <= problem.slo_ms * (1 + FEASIBILITY_RTOL) and bool(
        np.all(state.demand <= caps * (1 + FEASIBILITY_RTOL)))
    dalpha, dfleet = _sensitivity(state, beta, ctx.t)
    return _Eval(beta=beta, state=state, fleet_ms=fleet, feasible=ok, dalpha_dbeta=dalpha,
                 dfleet_dlogbeta=dfleet)


def _search_beta(ctx: _Ctx, hint: Hint | None = None) -> tuple[_Eval, int]:
    """Smallest β (to tolerance) whose routing meets the SLO on the real curves.

    Brackets by factors of ``growth`` from ``1/τ`` (or from a hint's β, by smaller factors),
    then refines by regula falsi.
    """
    span = max(float(p[-1] - p[0]) for p, _ in ctx.base)
    beta_min = ctx.t / max(span, 1e-12)  # below this the price ramps are narrower than t
    tau = ctx.problem.slo_ms
    if hint is not None and hint.beta > 0:
        cur = _evaluate_from(ctx, max(hint.beta, beta_min), hint.alpha)
        growth = 3.0
    else:
        cur = _evaluate(ctx, 1.0 / tau, None)
        growth = 10.0
    solves = 1
    lo: _Eval | None = None
    hi: _Eval | None = None
    if cur.feasible:
        hi = cur
        while hi.beta > beta_min:
            nxt = _evaluate(ctx, max(hi.beta / growth, beta_min), hi)
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
            nxt = _evaluate(ctx, lo.beta * growth, lo)
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
        if f_hi >= -SLO_RTOL * tau or math.log(hi.beta / lo.beta) < 1e-9:
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


def solve_dual(problem: RoutingProblem, tie_temperature: float = DEFAULT_TIE_TEMPERATURE,
               costs: Sequence[ModelCost] | None = None, hint: Hint | None = None
               ) -> RoutingResult:
    """Route ``problem`` with the dual-price method; infeasibility is a result, not an error.

    ``costs`` (one per model, built by :func:`build_cost` for this rate and SLO) may be passed
    in when a search reuses them across setups; ``hint`` warm-starts prices and multiplier.
    """
    start = time.perf_counter()
    if problem.scope == "per-model":
        return _solve_per_model(problem, tie_temperature, start)
    if costs is None:
        costs = [build_cost(c, m, problem.total_rps, problem.slo_ms)
                 for m, c in zip(problem.models, problem.curves, strict=True)]
    costs = list(costs)
    convexified = any(c.convexified for c in costs)
    if envelope_floor_ms(costs) > problem.slo_ms * (1 + FEASIBILITY_RTOL):
        return infeasible_result(problem, "dual", costs, time.perf_counter() - start)
    scores_t = np.ascontiguousarray(problem.scores.T)
    ctx = _Ctx(problem=problem, demand=_Demand(scores_t, tie_temperature),
               base=[(c.supply_p, c.supply_x) for c in costs], t=tie_temperature)
    best, solves = _search_beta(ctx, hint)
    if not best.feasible:
        return infeasible_result(problem, "dual", costs, time.perf_counter() - start)
    shares = softmax_shares(scores_t, best.state.alpha, tie_temperature)
    return _result(problem, shares, best.state.alpha, best.beta, tie_temperature, convexified,
                   solves, start)


def _result(problem: RoutingProblem, shares_t: FloatArray, alpha: FloatArray, beta: float,
            t: float, convexified: bool, solves: int, start: float) -> RoutingResult:
    shares = np.ascontiguousarray(shares_t.T)
    x = shares.mean(axis=0)
    return RoutingResult(
        feasible=True, solver="dual", models=problem.models,
        quality=float(np.einsum("ik,ik->", problem.scores, shares) / problem.num_prompts),
        fractions=x, prices=alpha, shares=shares, rates_rps=x * problem.total_rps,
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
    scores_t = np.ascontiguousarray(problem.scores[:, usable].T)
    state = solve_prices(_Demand(scores_t, t), supplies)
    k, n = len(problem.models), problem.num_prompts
    shares = np.zeros((k, n))
    shares[usable] = softmax_shares(scores_t, state.alpha, t)
    alpha = np.full(k, np.inf)
    alpha[usable] = state.alpha
    result = _result(problem, shares, alpha, 0.0, t, False, state.iterations, start)
    if not problem.meets_slo(result.fractions):  # Newton stopped short of the capacities
        return infeasible_result(problem, "dual", None, time.perf_counter() - start)
    return result
