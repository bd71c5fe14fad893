"""Serve stage — prices for a measured rate and an SLO target, from the plan's own problem.

``PriceModel`` holds the plan's routing problem (deployed models, the workload's scores,
each deployment's latency curve: ``plan.reroute.reroute_plan``) and re-solves it with the
dual solver at another rate and SLO, warm-started from the last solution. Pure apart from
the clock the solver reads; the gateway runs it off the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from routerwise.routing.dual import Hint, solve_dual
from routerwise.routing.problem import RoutingProblem, RoutingResult
from routerwise.spec.core import FloatArray, readonly


@dataclass(frozen=True, slots=True)
class PriceModel:
    problem: RoutingProblem  # at the plan's rate and SLO; models in the routed order

    @property
    def prior(self) -> FloatArray:
        """Mean predicted score per model over the plan's workload."""
        return readonly(np.asarray(self.problem.scores.mean(axis=0), dtype=np.float64))

    def predicted_ttft_ms(self, prices: FloatArray, tie_temperature: float,
                          rate_rps: float) -> float | None:
        """Fleet mean TTFT the curves give for ``prices``' routing at ``rate_rps`` (None:
        past a model's capacity)."""
        from routerwise.simulate.router import routing_probabilities

        x = routing_probabilities(self.problem.scores, prices, tie_temperature).mean(axis=0)
        total = 0.0
        for curve, share in zip(self.problem.curves, x, strict=True):
            load = rate_rps * float(share)
            if load > curve.capacity_rps_:
                return None
            total += float(share) * float(curve(load))
        return total

    def solve(self, rate_rps: float, slo_ms: float, hint: Hint | None = None) -> RoutingResult:
        capacity = sum(c.capacity_rps_ for c in self.problem.curves)
        rate = min(max(rate_rps, 1e-3), capacity * 0.999)
        problem = RoutingProblem(self.problem.models, self.problem.scores,
                                 self.problem.curves, rate, slo_ms)
        return solve_dual(problem, hint=hint)


def load_price_model(plan_path: Path, models: tuple[str, ...]) -> PriceModel:
    """The plan's problem over ``models`` (the deployed ones, in this order)."""
    from routerwise.plan.reroute import reroute_plan

    problem = reroute_plan(plan_path).problem
    order = [problem.models.index(m) for m in models]
    return PriceModel(RoutingProblem(models, readonly(problem.scores[:, order]),
                                     tuple(problem.curves[i] for i in order),
                                     problem.total_rps, problem.slo_ms))
