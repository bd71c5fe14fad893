"""Evaluate setups: route the workload over each setup's curves with the dual solver.

Workers hold the shared context (scores, shape curves, rate, SLO) once — set by
:func:`init_worker` in each process — and receive only small setup descriptions, so a
process pool ships kilobytes per task, not the score matrix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from routerwise.routing.costs import ModelCost, build_cost
from routerwise.routing.dual import Hint, solve_dual
from routerwise.routing.problem import RoutingProblem, RoutingResult
from routerwise.routing.reachable import envelope_floor_ms
from routerwise.search.curves import ShapeCurves, deployment_curve
from routerwise.search.space import DeploymentOption, GpuTypes, SetupOption, shape_of
from routerwise.spec.core import FloatArray, readonly


@dataclass(frozen=True, slots=True)
class EvalContext:
    """Everything an evaluation needs besides the setup."""

    models: tuple[str, ...]
    scores: FloatArray  # (N, K) in the order of ``models``
    shape_curves: ShapeCurves
    total_rps: float
    slo_ms: float
    gpu_type: GpuTypes  # one type, or the type of each node pool


@dataclass(frozen=True, slots=True)
class Outcome:
    """What evaluating one setup found (small: no per-prompt arrays)."""

    index: int
    feasible: bool
    quality: float
    fleet_ttft_ms: float
    fractions: tuple[float, ...]  # per model of the context (0 when not deployed)
    prices: tuple[float, ...]
    multiplier: float
    reason: str
    convexified: bool = False
    lowest_ttft_ms: float = math.nan


@dataclass(slots=True)
class Evaluator:
    """Evaluates setups of one context, caching each deployment's cost function."""

    ctx: EvalContext
    costs: dict[tuple[str, DeploymentOption], ModelCost] = field(default_factory=dict)
    #: envelopes scaled from one replica's (``h_r(x) = r·h_1(x/r)``): cheap, for bounds only
    envelopes: dict[tuple[str, DeploymentOption], ModelCost] = field(default_factory=dict)
    #: last solution per set of deployed models: a warm start for the next similar setup
    _hints: dict[tuple[int, ...], Hint] = field(default_factory=dict)

    def cost(self, model: str, dep: DeploymentOption) -> ModelCost:
        key = (model, dep)
        if key not in self.costs:
            shape = shape_of(model, dep, self.ctx.gpu_type)
            curve = deployment_curve(self.ctx.shape_curves[shape], model, dep.replicas)
            self.costs[key] = build_cost(curve, model, self.ctx.total_rps, self.ctx.slo_ms)
        return self.costs[key]

    def envelope(self, model: str, dep: DeploymentOption) -> ModelCost:
        """The SLO-cost envelope of ``dep`` scaled from its shape's one-replica envelope,
        cut at ``x = 1`` — below or at the deployment's own envelope, so bounds built on it
        stay valid; its supply knots are the one replica's (not for routing)."""
        key = (model, dep)
        if key not in self.envelopes:
            self.envelopes[key] = scaled_envelope(
                self.cost(model, DeploymentOption(dep.tp, dep.share_units, 1, dep.pool)),
                dep.replicas)
        return self.envelopes[key]

    def problem(self, setup: SetupOption) -> tuple[RoutingProblem, list[ModelCost], list[int]]:
        idx = [k for k, d in enumerate(setup.deployments) if d is not None]
        costs = [self.cost(setup.models[k], d) for k, d in enumerate(setup.deployments)
                 if d is not None]
        problem = RoutingProblem(
            models=tuple(setup.models[k] for k in idx),
            scores=np.ascontiguousarray(self.ctx.scores[:, idx]),
            curves=tuple(c.curve for c in costs),
            total_rps=self.ctx.total_rps,
            slo_ms=self.ctx.slo_ms,
        )
        return problem, costs, idx

    def lowest_fleet_ms(self, setup: SetupOption) -> float:
        """Lowest mean TTFT any routing reaches on this setup (envelope water-filling)."""
        costs = [self.cost(setup.models[k], d) for k, d in enumerate(setup.deployments)
                 if d is not None]
        return envelope_floor_ms(costs)

    def solve(self, setup: SetupOption, hint: Hint | None = None
              ) -> tuple[RoutingResult, list[int]]:
        problem, costs, idx = self.problem(setup)
        key = tuple(idx)
        result = solve_dual(problem, costs=costs, hint=hint or self._hints.get(key))
        if result.feasible:
            self._hints[key] = Hint(alpha=result.prices, beta=result.multiplier)
        return result, idx

    def evaluate(self, index: int, setup: SetupOption) -> Outcome:
        k = len(self.ctx.models)
        lowest = self.lowest_fleet_ms(setup)
        if lowest > self.ctx.slo_ms:
            why = ("rate exceeds its capacity" if math.isinf(lowest)
                   else f"lowest mean TTFT {lowest:.1f} ms > SLO {self.ctx.slo_ms:g} ms")
            return Outcome(index, False, math.nan, math.nan, (0.0,) * k, (math.nan,) * k,
                           math.nan, why, lowest_ttft_ms=lowest)
        result, idx = self.solve(setup)
        fractions = np.zeros(k)
        prices = np.full(k, math.inf)
        if result.feasible:
            fractions[idx] = result.fractions
            prices[idx] = result.prices
        return Outcome(
            index=index, feasible=result.feasible, quality=result.quality,
            fleet_ttft_ms=result.fleet_ttft_ms, fractions=tuple(fractions.tolist()),
            prices=tuple(prices.tolist()), multiplier=result.multiplier,
            reason="meets the SLO" if result.feasible else result.message,
            convexified=result.convexified, lowest_ttft_ms=lowest,
        )


def scaled_envelope(one: ModelCost, replicas: int) -> ModelCost:
    """``r`` replicas of a shape: ``h_r(x) = r·h_1(x/r)`` on ``x ≤ min(r·cap_1, 1)``."""
    if replicas == 1:
        return one
    limit = min(1.0 / replicas, float(one.xs[-1]))
    keep = one.xs < limit
    ys = np.append(one.xs[keep], limit)
    hs = np.append(one.hs[keep], float(np.interp(limit, one.xs, one.hs)))
    return replace(one, xs=readonly(replicas * ys), hs=readonly(replicas * hs),
                   cap_x=min(replicas * one.cap_x, 1.0))


# Per-process evaluator for pool workers (set once by ``init_worker``).
_WORKER: Evaluator | None = None


def init_worker(ctx: EvalContext) -> None:
    global _WORKER  # noqa: PLW0603 (one evaluator per worker process, by design)
    _WORKER = Evaluator(ctx)


def evaluate_batch(batch: Sequence[tuple[int, SetupOption]]) -> list[Outcome]:
    """Pool task: evaluate a batch of (index, setup) with this worker's evaluator."""
    assert _WORKER is not None, "init_worker was not called in this process"
    return [_WORKER.evaluate(i, s) for i, s in batch]
