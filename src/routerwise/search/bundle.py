"""A proven upper bound on the quality of every placeable setup (docs/architecture.md §4).

Weak Lagrangian duality with the routing's two coupling constraints priced out — each
model's routed fraction (prices ``α``) and the fleet SLO (multiplier ``β ≥ 0``) — gives, for
every setup θ that can be placed and every routing of it that meets the SLO,

    Q(θ) ≤ D(α) + β·τ + Σ_m g_{θ_m}(α_m, β) ≤ D(α) + β·τ + P(α, β) =: U(α, β)

with ``D(α) = 1/N Σ_i max_m (s_im − α_m)`` over all models and ``P`` the pricing problem's
optimum (:mod:`routerwise.search.columns`, HiGHS; its proven dual bound is used). ``U`` is
convex in ``(α, b = β·τ)``, and the pricing solution gives a subgradient
(``∂U/∂α_m = x*_m − demand_m``, ``∂U/∂b = 1 − Σ h*/τ``). We minimise it with a trust-region
cutting-plane (bundle) method: each step solves a small LP over the cuts in a box around the
best point (HiGHS), moves the box on a sufficient decrease and shrinks it otherwise. Every
point's value is a valid bound, so stopping early only loosens the certificate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from routerwise.search.bounds import BOUND_SLACK
from routerwise.search.columns import Columns, Pricing, price_columns, solve_pricing
from routerwise.spec.core import FloatArray

#: Serious step: the bound fell by at least this fraction of the model's predicted decrease.
SERIOUS = 0.1
#: Stop when the model predicts less than this decrease of the bound (quality units).
TOLERANCE = 2e-5


@dataclass(frozen=True, slots=True)
class DualPoint:
    """The bound at one dual point ``p = (α, b)`` with a subgradient and the pricing answer."""

    p: FloatArray  # (K + 1,): prices α, then b = β·τ
    value: float
    grad: FloatArray
    pricing: Pricing
    values: FloatArray  # (C,) every column's worth g_c at this point


@dataclass(slots=True)
class BundleResult:
    best: DualPoint
    points: list[DualPoint] = field(default_factory=list)
    seconds: float = 0.0


def dual_point(scores: FloatArray, cols: Columns, p: FloatArray, slo_ms: float,
               pool_gpus: tuple[int, ...]) -> DualPoint:
    """``U(α, b)``, a subgradient, and the pricing problem's chosen columns."""
    k = scores.shape[1]
    alpha, b = p[:k], float(p[k])
    shifted = scores - alpha
    arg = shifted.argmax(axis=1)
    demand = np.bincount(arg, minlength=k) / len(arg)
    prices = price_columns(cols, alpha, b / slo_ms)
    pricing = solve_pricing(cols, prices.value, pool_gpus)
    x = np.zeros(k)
    chosen = list(pricing.chosen)
    x[cols.model[chosen]] = prices.x[chosen]
    h_sum = float(prices.h[chosen].sum())
    value = float(shifted.max(axis=1).mean()) + b + pricing.bound + BOUND_SLACK
    grad = np.concatenate((x - demand, [1.0 - h_sum / slo_ms]))
    return DualPoint(p.copy(), value, grad, pricing, prices.value)


def _model_step(cuts: list[DualPoint], center: FloatArray, delta: float
                ) -> tuple[FloatArray, float]:
    """Minimise the cutting-plane model over the box ``|p − center| ≤ delta`` (b ≥ 0)."""
    from scipy.optimize import linprog  # heavy: imported on use

    n = len(center)
    a_ub = np.array([[*c.grad, -1.0] for c in cuts])
    b_ub = np.array([float(c.grad @ c.p) - c.value for c in cuts])
    bounds = [(float(v - delta), float(v + delta)) for v in center]
    bounds[-1] = (max(0.0, float(center[-1] - delta)), float(center[-1] + delta))
    res = linprog(np.r_[np.zeros(n), 1.0], A_ub=a_ub, b_ub=b_ub,
                  bounds=[*bounds, (None, None)], method="highs")
    if res.x is None:
        return center, cuts[-1].value
    return np.asarray(res.x[:n]), float(res.x[n])


def minimise_bound(evaluate: Callable[[FloatArray], DualPoint], start: FloatArray, *,
                   max_iter: int = 60, delta: float = 0.02, budget_s: float = 120.0,
                   tick: Callable[[DualPoint], None] | None = None) -> BundleResult:
    """Trust-region cutting planes on ``U``; every point evaluated is kept."""
    t0 = time.perf_counter()
    center = evaluate(start)
    result = BundleResult(best=center, points=[center])
    for _ in range(max_iter):
        p, model = _model_step(result.points, center.p, delta)
        predicted = center.value - model
        if predicted <= TOLERANCE or time.perf_counter() - t0 > budget_s:
            break
        new = evaluate(p)
        result.points.append(new)
        if tick is not None:
            tick(new)
        if center.value - new.value >= SERIOUS * predicted:
            center, delta = new, min(2.0 * delta, 1.0)
        else:
            delta = max(0.5 * delta, 1e-4)
    result.best = min(result.points, key=lambda q: q.value)
    result.seconds = time.perf_counter() - t0
    return result
