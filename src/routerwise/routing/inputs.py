"""Assemble a :class:`RoutingProblem` from a workload and a profile table (pure; no I/O)."""

from __future__ import annotations

from routerwise.errors import InputError
from routerwise.latency.curve import Adjustment, LatencyCurve, fit_curve
from routerwise.profiles.table import ProfileTable
from routerwise.routing.problem import RoutingProblem, SloScope
from routerwise.spec.workload import Workload


def check_models_match(workload: Workload, profiles: ProfileTable) -> None:
    """Every scored model needs a profile and every profiled model needs scores."""
    no_profile = [m for m in workload.models if m not in profiles.models]
    if no_profile:
        raise InputError(
            f"{workload.source}: model(s) {no_profile} have scores but no rows in "
            f"{profiles.source} (profiled models: {list(profiles.models)})"
        )
    no_scores = [m for m in profiles.models if m not in workload.models]
    if no_scores:
        raise InputError(
            f"{profiles.source}: model(s) {no_scores} are profiled but have no score column in "
            f"{workload.source} (scored models: {list(workload.models)})"
        )


def build_problem(
    workload: Workload,
    profiles: ProfileTable,
    rate_rps: float,
    slo_ms: float,
    *,
    scope: SloScope = "fleet",
    stat: str = "ttft_mean_ms",
) -> tuple[RoutingProblem, tuple[Adjustment, ...]]:
    """The routing problem and the profile points the monotone fit had to move."""
    check_models_match(workload, profiles)
    curves: list[LatencyCurve] = [fit_curve(profiles.points(m, stat)) for m in workload.models]
    adjustments = tuple(a for c in curves for a in c.adjustments_)
    problem = RoutingProblem(
        models=workload.models,
        scores=workload.scores,
        curves=tuple(curves),
        total_rps=rate_rps,
        slo_ms=slo_ms,
        scope=scope,
    )
    return problem, adjustments
