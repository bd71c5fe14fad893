"""Upper bounds on a setup's routing quality without routing it (weak Lagrangian duality).

For any prices α and SLO multiplier β ≥ 0, every routing of setup θ that meets the fleet
SLO has quality

    Q ≤ D_θ(α) + β·τ + min_ν [ ν + Σ_m max_{0≤x≤cap_m} ((α_m − ν)·x − β·h_m(x)) ]

where ``D_θ(α) = 1/N Σ_i max_{m deployed} (score[i,m] − α_m)`` and ``h_m`` is model m's SLO
cost (its convex envelope, which only loosens the bound). The duals of an evaluated setup
make the bound tight for that setup and informative for its neighbours; a setup whose bound
cannot beat the best quality found is pruned without solving it. The inner maximum is
attained at a vertex of the (chord) envelope, found by ``searchsorted`` on its slopes; all
setups are bounded together, grouped by deployment, with a vectorised bisection on ν.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from routerwise.routing.costs import ModelCost
from routerwise.search.space import DeploymentOption, SetupOption
from routerwise.spec.core import FloatArray

#: Absolute slack added to every bound: the chord envelope lies up to ~1e-7·τ above h.
BOUND_SLACK = 1e-6
BISECTION_STEPS = 60


def demand_value(scores: FloatArray, alpha: FloatArray, mask: tuple[bool, ...]) -> float:
    """``1/N Σ_i max_{m in mask} (score[i,m] − α_m)``."""
    cols = [k for k, on in enumerate(mask) if on]
    return float((scores[:, cols] - alpha[cols]).max(axis=1).mean())


def complete_prices(scores: FloatArray, alpha: FloatArray) -> FloatArray:
    """Replace infinite prices (models not deployed where the duals came from) by the lowest
    price at which that model still attracts no prompt: the bound stays informative."""
    known = np.isfinite(alpha)
    if known.all() or not known.any():
        return np.where(known, alpha, 0.0)
    best_known = (scores[:, known] - alpha[known]).max(axis=1)
    out = alpha.copy()
    for m in np.flatnonzero(~known):
        out[m] = float((scores[:, m] - best_known).max())
    return out


def _vertex(cost: ModelCost, a: FloatArray, beta: float) -> np.ndarray:
    """Index of the envelope vertex maximising ``a·x − β·h(x)`` for each entry of ``a``."""
    if beta <= 0:
        return np.where(a > 0, len(cost.xs) - 1, 0)
    return np.searchsorted(cost.chord_slopes, a / beta, side="left")


def lagrangian_bounds(
    setups: Sequence[SetupOption], costs: dict[tuple[str, DeploymentOption], ModelCost],
    scores: FloatArray,
    alpha: FloatArray, beta: float, slo_ms: float,
) -> FloatArray:
    """The bound above for every setup (``-inf`` where the deployed capacity is < 1)."""
    n = len(setups)
    k = len(alpha)
    alpha = complete_prices(scores, alpha)
    groups: dict[tuple[int, str, DeploymentOption], list[int]] = defaultdict(list)
    masks: dict[tuple[bool, ...], list[int]] = defaultdict(list)
    cap = np.zeros(n)
    for s, setup in enumerate(setups):
        masks[tuple(d is not None for d in setup.deployments)].append(s)
        for m, d in enumerate(setup.deployments):
            if d is not None:
                groups[(m, setup.models[m], d)].append(s)
                cap[s] += costs[(setup.models[m], d)].cap_x
    base = np.zeros(n)
    for mask, members in masks.items():
        base[members] = demand_value(scores, alpha, mask)
    index = {key: np.asarray(v) for key, v in groups.items()}
    lo = np.full(n, float(alpha.min()) - beta * 1e6 - 10.0)
    hi = np.full(n, float(alpha.max()) + 10.0)
    for _ in range(BISECTION_STEPS):
        nu = 0.5 * (lo + hi)
        taken = np.zeros(n)
        for (m, model, dep), idx in index.items():
            c = costs[(model, dep)]
            taken[idx] += c.xs[_vertex(c, alpha[m] - nu[idx], beta)]
        above = taken > 1.0  # Σ x(ν) decreases in ν: the minimiser lies to the right
        lo = np.where(above, nu, lo)
        hi = np.where(above, hi, nu)
    nu = hi
    value = nu.copy()
    for (m, model, dep), idx in index.items():
        c = costs[(model, dep)]
        a = alpha[m] - nu[idx]
        j = _vertex(c, a, beta)
        value[idx] += a * c.xs[j] - beta * c.hs[j]
    bounds = base + beta * slo_ms + value + BOUND_SLACK
    bounds[cap < 1.0 - 1e-12] = -np.inf
    assert bounds.shape == (n,) and k == len(setups[0].models)
    out: FloatArray = bounds
    return out
