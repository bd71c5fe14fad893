"""Re-route a plan's setup at another rate, SLO or workload without searching again
(``routerwise route --plan``).

Inputs: a plan.json (read through :func:`~routerwise.spec.plan.load_plan`), the
``profiles.csv`` beside it (every curve the plan used, keyed by instance shape), and
optionally a rate, an SLO and a workload file. The plan's own workload is rebuilt from the
resolved spec it records. Output: the routing problem over the deployed models, the
workload it routes, and the curves' provenance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from routerwise.errors import InputError
from routerwise.latency.curve import LatencyCurve, fit_curve
from routerwise.plan.inputs import restrict_workload, spec_workload
from routerwise.predict.apply import predicted_workload
from routerwise.profiles.table import ProfileTable, load_profiles
from routerwise.routing.problem import RoutingProblem
from routerwise.search.curves import deployment_curve
from routerwise.spec.deployment import Deployment
from routerwise.spec.plan import PLAN_FILE, Plan, load_plan
from routerwise.spec.spec_file import parse_spec
from routerwise.spec.workload import Workload
from routerwise.spec.workload_io import load_workload


@dataclass(frozen=True, slots=True)
class Rerouted:
    plan: Plan
    problem: RoutingProblem
    workload: Workload  # restricted to the deployed models, in the problem's order
    latency_provenance: tuple[str, ...]


def _plan_path(path: Path) -> Path:
    return path / PLAN_FILE if path.is_dir() else path


def _curve(table: ProfileTable, dep: Deployment) -> LatencyCurve:
    """The deployment's curve from the plan's profiles.csv: its knots were written after the
    saturation cut and the per-model cap, so they are fitted as they are."""
    rows = table.select_shape(dep.model, dep.gpu_type, dep.tp, dep.mps_share)
    if rows.frame.empty:
        raise InputError(f"{table.source}: no rows for {dep.model} {dep.shape.describe()} on "
                         f"{dep.gpu_type}, which the plan deploys")
    return deployment_curve(fit_curve(rows.points(dep.model)), dep.model, dep.replicas)


def _workload(plan: Plan, scores: Path | None, models: tuple[str, ...],
              predictor: Path | None) -> Workload:
    """The workload to route: ``scores`` or the plan's own, scored like the plan (or by
    ``predictor``)."""
    if predictor is None and plan.inputs.predictor is not None:
        predictor = Path(plan.inputs.predictor)
    if scores is not None:
        workload = load_workload(scores)
        missing = [m for m in models if m not in workload.models]
        if missing:
            raise InputError(f"{scores}: no scores for deployed model(s) {missing}; it has "
                             f"{list(workload.models)}")
        workload = workload.select_models(models)
    else:
        spec = parse_spec(plan.inputs.spec, "plan.json: inputs.spec")
        full = restrict_workload(spec, spec_workload(spec, None), "plan.json: inputs.spec")
        workload = full.select_models(models)
    return workload if predictor is None else predicted_workload(workload, predictor)


def reroute_plan(path: Path, *, rate_rps: float | None = None, slo_ms: float | None = None,
                 scores: Path | None = None, predictor: Path | None = None) -> Rerouted:
    """The routing problem of a plan's chosen setup, with any of rate, SLO, workload changed."""
    plan_file = _plan_path(path)
    plan = load_plan(plan_file)
    if not plan.feasible:
        raise InputError(f"{plan_file}: the plan is infeasible: it has no setup to route on")
    table = load_profiles(plan_file.parent / plan.profiles_file)
    curves = tuple(_curve(table, d) for d in plan.deployments)
    models = tuple(d.model for d in plan.deployments)
    workload = _workload(plan, scores, models, predictor)
    provenance = sorted(set(table.frame["provenance"].astype(str))) \
        if "provenance" in table.frame.columns else ["measured"]
    problem = RoutingProblem(models=models, scores=workload.scores, curves=curves,
                             total_rps=rate_rps or plan.rate_rps,
                             slo_ms=slo_ms or plan.slo.target_ms)
    return Rerouted(plan, problem, workload, tuple(provenance))
