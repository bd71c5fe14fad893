"""Typed setups against a search context: their curves, their routing re-solved for
per-prompt shares, and what is reachable when no setup meets the SLO.

Inputs: an :class:`EvalContext`, typed :class:`Setup` objects (the spec's vocabulary) and
the search's candidates. Outputs: routing results in the context's model order, latency
curves per deployed model, and the lowest latency / highest rate any setup reaches.
The search's compact share units stay inside this package.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from routerwise.errors import InfeasibleError
from routerwise.latency.curve import LatencyCurve
from routerwise.routing.dual import Hint
from routerwise.routing.problem import RoutingResult
from routerwise.routing.reachable import max_rate_meeting_slo
from routerwise.routing.solvers import solve
from routerwise.search.curves import deployment_curve
from routerwise.search.evaluate import EvalContext, Evaluator
from routerwise.search.search import Candidate
from routerwise.search.space import option_of
from routerwise.spec.deployment import Setup

#: Setups whose highest SLO-meeting rate is computed when nothing is feasible (those with
#: the most capacity first; the rest cannot beat the best found once capacity is below it).
MAX_RATE_CHECKS = 4000


@dataclass(frozen=True, slots=True)
class Routed:
    """A setup's routing: ``result`` is over ``models`` (the deployed ones, in ctx order)."""

    models: tuple[str, ...]
    index: tuple[int, ...]  # positions of ``models`` in the context's models
    result: RoutingResult

    def fractions(self, all_models: Sequence[str]) -> dict[str, float]:
        out = dict.fromkeys(all_models, 0.0)
        for j, m in enumerate(self.models):
            out[m] = float(self.result.fractions[j])
        return out

    def prices(self, all_models: Sequence[str]) -> dict[str, float | None]:
        out: dict[str, float | None] = dict.fromkeys(all_models)
        for j, m in enumerate(self.models):
            out[m] = float(self.result.prices[j])
        return out

    def quality_on(self, labels: np.ndarray) -> float:
        """The routing's per-prompt shares scored on ``labels`` (N × all models)."""
        shares = self.result.shares
        if shares is None:
            raise ValueError("an infeasible routing has no shares to score")
        return float((labels[:, list(self.index)] * shares).sum() / labels.shape[0])


def setup_curves(ctx: EvalContext, setup: Setup) -> dict[str, LatencyCurve]:
    """Each deployed model's latency curve (its shape's curve, replicated)."""
    return {d.model: deployment_curve(ctx.shape_curves[d.shape], d.model, d.replicas)
            for d in setup.deployments}


def route_setup(ctx: EvalContext, setup: Setup, warm: Candidate | None = None) -> Routed:
    """Re-solve ``setup`` for per-prompt shares (warm from the search's prices when given).

    The dual lands where the search did; on the SLO's numerical edge the exact LP settles it.
    """
    evaluator = Evaluator(ctx)
    option = option_of(setup, ctx.models, ctx.gpu_type)
    hint = None
    if warm is not None and warm.prices:
        deployed = [k for k, d in enumerate(option.deployments) if d is not None]
        hint = Hint(alpha=np.array([warm.prices[k] for k in deployed]), beta=warm.multiplier)
    result, idx = evaluator.solve(option, hint)
    if not result.feasible:
        problem, _, idx = evaluator.problem(option)
        result = solve(problem, "exact")
    return Routed(tuple(ctx.models[k] for k in idx), tuple(idx), result)


@dataclass(frozen=True, slots=True)
class ReachableInfo:
    lowest_ttft_mean_ms: float  # inf: the rate exceeds every setup's capacity
    max_rate_rps: float | None  # None: no rate meets the SLO


def reachable(ctx: EvalContext, candidates: Sequence[Candidate]) -> ReachableInfo:
    """Lowest fleet mean TTFT any candidate reaches at the rate, and the highest rate at which
    some candidate meets the SLO (exact over the candidates, bounded by capacity)."""
    evaluator = Evaluator(ctx)
    lowest = min((c.lowest_ttft_ms for c in candidates if not math.isnan(c.lowest_ttft_ms)),
                 default=math.inf)
    by_capacity = sorted(((_capacity(ctx, c.setup), c) for c in candidates),
                         key=lambda t: -t[0])
    best: float | None = None
    for capacity, c in by_capacity[:MAX_RATE_CHECKS]:
        if best is not None and capacity <= best:
            break
        problem, _, _ = evaluator.problem(option_of(c.setup, ctx.models, ctx.gpu_type))
        rate = max_rate_meeting_slo(problem)
        if rate is not None and (best is None or rate > best):
            best = rate
    return ReachableInfo(lowest, best)


def _capacity(ctx: EvalContext, setup: Setup) -> float:
    return sum(c.capacity_rps_ for c in setup_curves(ctx, setup).values())


def round_down(value: float, digits: int = 3) -> float:
    """``value`` rounded *down* to ``digits`` significant digits (a promise that holds)."""
    if value <= 0 or not math.isfinite(value):
        return value
    scale = 10.0 ** (digits - 1 - math.floor(math.log10(value)))
    return math.floor(value * scale) / scale


def require_feasible(routed: Routed, setup: Setup) -> Routed:
    if not routed.result.feasible or routed.result.shares is None:
        raise InfeasibleError(f"the setup re-solved infeasible: {setup.describe()}")
    return routed
