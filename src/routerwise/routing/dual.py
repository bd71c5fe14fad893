"""Dual-price routing (DESIGN.md §2, stages 1–2): the fast solver.

Each prompt goes to ``argmax_m (score[i,m] − α_m)``; ties are split by a softmax at a tiny
temperature ``t`` (``tie_temperature``, score units), which lets loads hit any target exactly and
costs at most ``t · ln K`` in quality (entropy bound).

For a multiplier β on the SLO, the optimal prices minimise the convex function
``Φ(α) = t/N Σ_i logsumexp((S_i − α)/t) + Σ_m β ψ_m(α_m/β)`` whose gradient is
``supply(α) − demand(α)``: prices ↔ loads at a fixed point. We minimise Φ by damped Newton in
K dimensions. The demand side only evaluates each prompt's *candidates*, the models within
~40 temperatures of its best (``demand.py``), so a step costs O(Σ candidates), not O(N·K).
The SLO is monotone in β; a safeguarded Newton iteration on log β, with the derivative of
the fleet latency from the implicit function theorem, finds the smallest β that meets it.
Large workloads are first solved on an evenly strided sample (recursively, at a warmer tie
temperature); the sample only chooses where the full problem's iterations begin.
Where a curve makes ``x·ℓ(Λx)`` non-convex we work on the convex envelope (``convexified``)
and still only return routings that meet the SLO on the real curves.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from routerwise.routing.costs import ModelCost, build_cost
from routerwise.routing.demand import DECIDED_MARGIN_T, Demand, transposed
from routerwise.routing.problem import FEASIBILITY_RTOL, RoutingProblem, RoutingResult
from routerwise.routing.reachable import capacity_caps_x, envelope_floor_ms, infeasible_result
from routerwise.routing.supply import CostKnots, SupplyStack, capacity_supply
from routerwise.spec.core import FloatArray, readonly

DEFAULT_TIE_TEMPERATURE = 1e-4
GRAD_TOL = 1e-10  # |supply − demand| in fractions of requests
#: The β search stops once the fleet latency is within this fraction below the SLO: the
#: quality left on the table is about β·SLO_RTOL·τ, below 1e-6 in practice.
SLO_RTOL = 1e-6
#: … and on a coarse sample (only a warm start) within this fraction, with prices solved to
#: this |supply − demand| (far below the sample's own error).
COARSE_SLO_RTOL = 1e-3
COARSE_GRAD_TOL = 1e-7
CONTINUATION = (1e-2, 1e-3)  # temperatures for a cold start, before the target one
#: The β search steps by at most this factor until it has a bracket, and gives up on meeting
#: the SLO above ``BETA_MAX_PER_MS / τ``.
BETA_GROWTH = 10.0
BETA_MAX_PER_MS = 1e9
MAX_BETA_SOLVES = 80
#: Workloads with at least this many prompts are first solved on every ``COARSE_STRIDE``-th
#: prompt (recursively), whose prices and multiplier warm-start the full solve.
COARSE_MIN_PROMPTS = 10_000
COARSE_STRIDE = 8
#: A sample of n prompts is routed at a tie temperature of at least
#: ``COARSE_TEMPERATURE · sqrt(COARSE_REF_PROMPTS / n)``: few prompts lie within 1e-4 of a
#: tie in a sample, so its demand would be a staircase that Newton's method crawls along.
COARSE_TEMPERATURE = 1e-3
COARSE_REF_PROMPTS = 10_000
#: A hint (a sample's or a similar setup's prices) is first polished at these temperatures
#: (none: measured faster from a sample's prices) …
HINT_LADDER: tuple[float, ...] = ()
#: … and a warm start from a β more than e^FAR_LOG_BETA times larger or smaller at these.
FAR_LADDER = (COARSE_TEMPERATURE,)
FAR_LOG_BETA = 0.02
#: Screening margin (temperatures) at warm-up temperatures and on samples: there the prices
#: only need to be a good start, so e^-12 ≈ 6e-6 is plenty and keeps rows narrow.
WARM_MARGIN_T = 12.0
#: A cold start's warm-up evaluates every (prompt, model) pair up to this many pairs.
COLD_DENSE_ENTRIES = 2_000_000


@dataclass(slots=True)
class _State:
    alpha: FloatArray
    demand: FloatArray  # (K,) fractions routed to each model at alpha
    iterations: int
    hess: FloatArray | None = None  # Φ's Hessian at alpha (for implicit derivatives)
    slopes: FloatArray | None = None  # each supply's slope at alpha


class _Objective:
    """Φ(α) = demand side + Σ_m ψ_m(α_m) for fixed supplies."""

    def __init__(self, demand: Demand, supplies: SupplyStack) -> None:
        self.demand = demand
        self.t = demand.t
        self.supplies = supplies

    def evaluate(self, alpha: FloatArray) -> _Point:
        """Value, gradient and Hessian at ``alpha``."""
        d_value, demand, d_hess = self.demand.evaluate(alpha)
        supply, slopes, psi = self.supplies.evaluate(alpha)
        return _Point(alpha=alpha, value=d_value + float(psi.sum()), grad=supply - demand,
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
    """``(H + μI)⁻¹·rhs`` with the smallest shift ``μ ≥ 1e-9·max diag(H)`` that keeps the
    matrix positive definite.

    Φ is convex but its Hessian can be singular (no prompt near a tie, a supply in a flat
    piece) and rounding can make it slightly indefinite; the shift keeps the Newton direction
    a descent direction (steepest descent along the flat directions). A Cholesky test is used
    rather than an eigendecomposition: LAPACK's ``syevd`` threads even on 32 × 32 matrices and
    stalls for tens of milliseconds per call on a busy machine.
    """
    k = len(rhs)
    shift = max(1e-9 * float(np.abs(np.diag(hess)).max(initial=0.0)), 1e-12)
    sym = 0.5 * (hess + hess.T)
    eye = np.eye(k)
    for _ in range(60):
        shifted = sym + shift * eye
        try:
            np.linalg.cholesky(shifted)
        except np.linalg.LinAlgError:
            shift *= 10.0
            continue
        out: FloatArray = np.asarray(np.linalg.solve(shifted, rhs), dtype=np.float64)
        return out
    raise np.linalg.LinAlgError("no positive shift makes the Hessian positive definite")


def _accept(cur: _Point, trial: _Point, s: float, slope: float) -> bool:
    """Armijo on Φ; near the optimum Φ's changes fall below float precision, so a step that
    keeps Φ within rounding and shrinks the gradient is taken as well."""
    if trial.value <= cur.value + 1e-4 * s * slope:
        return True
    flat = abs(trial.value - cur.value) <= 1e-13 * (1.0 + abs(cur.value))
    return flat and np.abs(trial.grad).max() < np.abs(cur.grad).max()


def _newton(obj: _Objective, alpha0: FloatArray, max_iter: int = 100,
            tol: float = GRAD_TOL) -> _State:
    """Damped Newton with Armijo backtracking inside a trust radius (max-norm, score units).

    Far from the optimum the demand is nearly piecewise constant and full Newton steps are
    rejected again and again; the radius remembers the last step length that worked (twice
    it after a full step), so later iterations do not repeat the same rejected trials, each of
    which may cost a screen of many prompts.
    """
    cur = obj.evaluate(alpha0.astype(np.float64, copy=True))
    max_step = max(0.5, 50 * obj.t)
    min_step = 10 * obj.t  # Newton's model is good within a few temperatures of a kink
    radius = max_step
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 (it is reported)
        if np.abs(cur.grad).max() <= tol:
            break
        step = -_regularized_solve(cur.hess, cur.grad)
        big = float(np.abs(step).max())
        if big > radius:
            # clip the coordinates that run away (flat directions: a model priced where no
            # prompt is near a tie) and keep Newton's step in the others, if still downhill
            clipped = np.clip(step, -radius, radius)
            step = clipped if float(cur.grad @ clipped) < 0 else step * (radius / big)
            big = radius
        slope = float(cur.grad @ step)
        s = 1.0
        while True:
            trial = obj.evaluate(cur.alpha + s * step)
            if _accept(cur, trial, s, slope) or s <= 1e-12:
                break
            s *= 0.5
        if s <= 1e-12:
            break  # no descent possible at this precision
        radius = min(max_step, 2 * big) if s == 1.0 else max(s * big, min_step)
        cur = trial
    return _State(alpha=cur.alpha, demand=cur.demand, iterations=it, hess=cur.hess,
                  slopes=cur.slopes)


def _balanced_start(supplies: SupplyStack) -> FloatArray:
    """One common price at which the supplies sum to all requests (scores ignored)."""
    k = len(supplies.last)
    lo = float(supplies.p[:, 0].min()) - 1.0
    hi = float(supplies.p[np.arange(k), supplies.last].max()) + 1.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        load = supplies.evaluate(np.full(k, mid))[0]
        lo, hi = (lo, mid) if float(load.sum()) >= 1.0 else (mid, hi)
    return np.full(k, hi)


def solve_prices(demand: Demand, supplies: SupplyStack, alpha0: FloatArray | None = None,
                 ladder: Sequence[float] = (), tol: float = GRAD_TOL) -> _State:
    """Prices whose argmax routing (softmax ties at ``demand.t``) equals the supplies' loads.

    Newton's method at a tiny temperature crawls when it starts far away (the demand is
    nearly piecewise constant there), so a start first walks down a ladder of warmer
    temperatures: ``CONTINUATION`` for a cold start (``alpha0`` None), ``ladder`` otherwise.
    """
    cold = alpha0 is None
    if alpha0 is None:
        alpha0, ladder = _balanced_start(supplies), CONTINUATION
    alpha, total_it = alpha0, 0
    for t_warm in (c for c in ladder if c > demand.t):
        # a cold start moves prices far: screening would redo most prompts at every step
        dense = cold and demand.n * demand.k <= COLD_DENSE_ENTRIES
        warm = Demand(demand.scores_t, t_warm, margin_t=WARM_MARGIN_T,
                      screen=False if dense else None)
        state = _newton(_Objective(warm, supplies), alpha, max_iter=40, tol=1e-6)
        alpha, total_it = state.alpha, total_it + state.iterations
        if demand.ref is None and not dense:
            demand.adopt(warm)
    final = _newton(_Objective(demand, supplies), alpha, tol=tol)
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
    demand: Demand  # softmax demand at the target temperature, shared by all β
    base: CostKnots  # supply knots (marginal cost ms, fraction) per model
    t: float
    slo_rtol: float = SLO_RTOL  # accepted window [τ(1 − slo_rtol), τ] for the fleet latency
    grad_tol: float = GRAD_TOL  # |supply − demand| at which the prices count as solved


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
    """Solve at ``beta`` from ``warm``'s prices moved along dα/dβ; a far jump in β walks the
    hint ladder first (the linear prediction is poor there)."""
    if warm is None:
        return _evaluate_from(ctx, beta, None)
    alpha0 = warm.state.alpha + warm.dalpha_dbeta * (beta - warm.beta)
    far = abs(math.log(beta / warm.beta)) > FAR_LOG_BETA
    return _evaluate_from(ctx, beta, alpha0, FAR_LADDER if far else ())


def _evaluate_from(ctx: _Ctx, beta: float, alpha0: FloatArray | None,
                   ladder: Sequence[float] = ()) -> _Eval:
    problem = ctx.problem
    supplies = SupplyStack.of_costs(ctx.base, beta, ctx.t)
    if alpha0 is not None and not np.all(np.isfinite(alpha0)):
        alpha0 = None
    state = solve_prices(ctx.demand, supplies, alpha0, ladder, ctx.grad_tol)
    fleet = problem.fleet_ttft_ms(state.demand)
    caps = np.array([c.capacity_rps_ for c in problem.curves]) / problem.total_rps
    ok = fleet <= problem.slo_ms * (1 + FEASIBILITY_RTOL) and bool(
        np.all(state.demand <= caps * (1 + FEASIBILITY_RTOL)))
    dalpha, dfleet = _sensitivity(state, beta, ctx.t)
    return _Eval(beta=beta, state=state, fleet_ms=fleet, feasible=ok, dalpha_dbeta=dalpha,
                 dfleet_dlogbeta=dfleet)


@dataclass(slots=True)
class _Bracket:
    """The β search's state: the largest infeasible and smallest feasible β seen so far."""

    lo: _Eval | None = None  # misses the SLO
    hi: _Eval | None = None  # meets it
    open_steps: int = 0  # solves so far without a bracket
    steps: list[float] = field(default_factory=list)  # |Δ log β| of each move

    def add(self, e: _Eval, previous: _Eval | None) -> None:
        if e.feasible:
            self.hi = e
        else:
            self.lo = e
        self.open_steps += self.lo is None or self.hi is None
        if previous is not None:
            self.steps.append(abs(math.log(e.beta / previous.beta)))

    def width(self) -> float:
        if self.lo is None or self.hi is None:
            return math.inf
        return abs(math.log(self.hi.beta / self.lo.beta))


def _newton_log_beta(e: _Eval, target_ms: float) -> float | None:
    """Newton's step on ``fleet(log β) = target`` from ``e``; None without a usable slope."""
    slope = e.dfleet_dlogbeta
    if not (math.isfinite(slope) and slope < 0 and math.isfinite(e.fleet_ms)):
        return None
    return math.log(e.beta) + (target_ms - e.fleet_ms) / slope


def _inside(cur: _Eval, br: _Bracket, tau: float, newton: float | None) -> float:
    """Next log β strictly inside the bracket: Newton's step when it lands inside and is at
    most half the step before last (as in *rtsafe*), else regula falsi kept off the ends."""
    assert br.lo is not None and br.hi is not None
    u_lo, u_hi = math.log(br.lo.beta), math.log(br.hi.beta)
    width = u_hi - u_lo
    if newton is not None and u_lo < newton < u_hi and (
            len(br.steps) < 2 or abs(newton - math.log(cur.beta)) <= 0.5 * br.steps[-2]):
        return newton
    f_lo, f_hi = br.lo.fleet_ms - tau, br.hi.fleet_ms - tau
    if not (math.isfinite(f_lo) and f_lo > f_hi):
        return 0.5 * (u_lo + u_hi)
    u = u_hi - f_hi * width / (f_hi - f_lo)
    return min(max(u, u_lo + 0.05 * width), u_hi - 0.05 * width)


def _next_log_beta(ctx: _Ctx, cur: _Eval, br: _Bracket, beta_min: float) -> float:
    """Where to evaluate next: a safeguarded Newton step on log β towards the middle of the
    accepted window ``[τ(1 − slo_rtol), τ]``, at most a factor ``BETA_GROWTH`` away until
    the bracket closes."""
    tau = ctx.problem.slo_ms
    newton = _newton_log_beta(cur, tau * (1 - 0.5 * ctx.slo_rtol))
    if br.lo is not None and br.hi is not None:
        return _inside(cur, br, tau, newton)
    reach = math.log(BETA_GROWTH)
    # a Newton step that fell short makes the next one at least 4× longer (fleet(β) may be
    # flat for a while, e.g. where the SLO does not bind)
    least = min(reach, 1e-3 * 4.0 ** (br.open_steps - 1))
    if br.hi is not None:  # all feasible so far: go down
        u_hi = math.log(br.hi.beta)
        u = u_hi - reach if newton is None else min(max(newton, u_hi - reach), u_hi - least)
        return max(u, math.log(beta_min))
    assert br.lo is not None  # all infeasible so far: go up
    u_lo = math.log(br.lo.beta)
    return u_lo + reach if newton is None else max(min(newton, u_lo + reach), u_lo + least)


def _search_beta(ctx: _Ctx, hint: Hint | None = None) -> tuple[_Eval, int]:
    """Smallest β (to tolerance) whose routing meets the SLO on the real curves.

    The fleet latency falls with β; each solve also gives its derivative (implicit function
    theorem), so a safeguarded Newton iteration on log β from ``1/τ`` (or a hint's β) lands
    in the accepted window ``[τ(1 − slo_rtol), τ]`` in a few solves, each warm-started from
    the nearest solved β.
    """
    knots = ctx.base
    span = float((knots.p[np.arange(len(knots.length)), knots.length - 1] - knots.p[:, 0]).max())
    beta_min = ctx.t / max(span, 1e-12)  # below this the price ramps are narrower than t
    tau = ctx.problem.slo_ms
    if hint is not None and math.isfinite(hint.beta) and hint.beta > 0:
        cur = _evaluate_from(ctx, max(hint.beta, beta_min), hint.alpha, HINT_LADDER)
    else:
        cur = _evaluate(ctx, 1.0 / tau, None)
    br = _Bracket()
    previous: _Eval | None = None
    for solves in range(1, MAX_BETA_SOLVES + 1):
        br.add(cur, previous)
        if br.hi is not None and (br.hi.fleet_ms >= tau * (1 - ctx.slo_rtol) or br.width() < 1e-9
                                  or (br.lo is None and br.hi.beta <= beta_min)):
            return br.hi, solves  # at β_min the SLO does not bind: β ≈ 0
        if br.hi is None and br.lo is not None and br.lo.beta >= BETA_MAX_PER_MS / tau:
            return br.lo, solves
        if solves == MAX_BETA_SOLVES:
            break
        beta = math.exp(_next_log_beta(ctx, cur, br, beta_min))
        beta = beta_min if beta <= beta_min * (1 + 1e-9) else beta
        near = min((e for e in (br.lo, br.hi) if e is not None),
                   key=lambda e: abs(math.log(e.beta / beta)))
        previous, cur = cur, _evaluate(ctx, beta, near)
    best = br.hi if br.hi is not None else br.lo
    assert best is not None
    return best, MAX_BETA_SOLVES


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
    knots = CostKnots.of([(c.supply_p, c.supply_x) for c in costs])
    ctx, best, solves = _solve_fleet(problem, tie_temperature, knots, hint, SLO_RTOL)
    if not best.feasible:
        return infeasible_result(problem, "dual", costs, time.perf_counter() - start)
    shares, counts, score = ctx.demand.routing(best.state.alpha)
    return _result(problem, (shares, counts, score), best.state.alpha, best.beta,
                   tie_temperature, convexified,
                   solves, start)


def _coarse_plan(n: int, t: float) -> tuple[int, float] | None:
    """(stride, tie temperature) of the sample that warm-starts a workload of ``n`` prompts."""
    if n < COARSE_MIN_PROMPTS:
        return None
    sample = n // COARSE_STRIDE
    return COARSE_STRIDE, max(t, COARSE_TEMPERATURE * math.sqrt(COARSE_REF_PROMPTS / sample))


def _solve_fleet(problem: RoutingProblem, t: float, knots: CostKnots, hint: Hint | None,
                 slo_rtol: float) -> tuple[_Ctx, _Eval, int]:
    """The β search for the fleet SLO, warm-started from a coarse sample on large workloads.

    On a large workload the sample's prices and multiplier (within sampling error of the
    optimum) mean the prices move little and few prompts need screening again; the answer is
    still the full problem's, to the same tolerances: the sample only chooses where the
    iterations begin.
    """
    plan = _coarse_plan(problem.num_prompts, t)
    if plan is not None:
        stride, t_coarse = plan
        sample = RoutingProblem(problem.models, readonly(problem.scores[::stride]),
                                problem.curves, problem.total_rps, problem.slo_ms)
        _, found, _ = _solve_fleet(sample, t_coarse, knots, hint,
                                   max(slo_rtol, COARSE_SLO_RTOL))
        if found.feasible:
            hint = Hint(alpha=found.state.alpha, beta=found.beta)
    is_sample = slo_rtol > SLO_RTOL  # its prices are only a warm start: solve them loosely
    demand = Demand(transposed(problem.scores), t,
                    margin_t=WARM_MARGIN_T if is_sample else DECIDED_MARGIN_T)
    ctx = _Ctx(problem=problem, demand=demand, base=knots, t=t, slo_rtol=slo_rtol,
               grad_tol=COARSE_GRAD_TOL if is_sample else GRAD_TOL)
    best, solves = _search_beta(ctx, hint)
    return ctx, best, solves


def _result(problem: RoutingProblem, routing: tuple[FloatArray, FloatArray, float],
            alpha: FloatArray, beta: float, t: float, convexified: bool, solves: int,
            start: float) -> RoutingResult:
    """The result for ``routing`` = (shares N × K, requests per model, Σ score · share)."""
    shares, counts, score = routing
    x = counts / problem.num_prompts
    return RoutingResult(
        feasible=True, solver="dual", models=problem.models,
        quality=score / problem.num_prompts,
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
    supplies = SupplyStack.of([capacity_supply(c * (1 - 1e-8), t) for c in caps[usable]])
    demand = Demand(transposed(problem.scores[:, usable]), t)
    state = solve_prices(demand, supplies)
    k, n = len(problem.models), problem.num_prompts
    shares, counts = np.zeros((n, k)), np.zeros(k)
    shares[:, usable], counts[usable], score = demand.routing(state.alpha)
    alpha = np.full(k, np.inf)
    alpha[usable] = state.alpha
    result = _result(problem, (shares, counts, score), alpha, 0.0, t, False, state.iterations,
                     start)
    if not problem.meets_slo(result.fractions):  # Newton stopped short of the capacities
        return infeasible_result(problem, "dual", None, time.perf_counter() - start)
    return result
