"""Simulate stage — what a simulation of a plan needs, read through the typed plan contract.

Inputs: a plan.json (or its directory; :func:`~routerwise.spec.plan.load_plan` names a bad
file, a missing or unknown key, another ``plan_version``), the ``profiles.csv`` beside it,
and optionally the name of one of its baselines. Output: a :class:`SimTarget` — the placed
instances, the routing rule, the workload's per-prompt token lengths (tokens), every
instance's engine model (step times in ms, KV capacity in tokens) and the latency curves
that give the plan's predictions at any rate (req/s → mean TTFT ms).

The workload is rebuilt from the resolved spec the plan records (and scored by its
predictor when it was planned with one), so the simulated router sees the same prompts and
scores as the planner; a mismatch in the routing fractions is reported as a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from routerwise.errors import InputError
from routerwise.latency.curve import LatencyCurve, capped_at_latency, fit_curve
from routerwise.plan.inputs import (
    FALLBACK_INPUT_TOKENS,
    FALLBACK_OUTPUT_TOKENS,
    restrict_workload,
    spec_workload,
)
from routerwise.plan.shapes import below_saturation
from routerwise.profiles.estimator import InstanceShape as EngineShape
from routerwise.profiles.table import ProfileTable, load_profiles
from routerwise.search.curves import deployment_curve
from routerwise.simulate.router import RoutingRule, routing_rule
from routerwise.spec.catalog import GpuSpec, ModelArch, get_gpu
from routerwise.spec.core import FloatArray, readonly
from routerwise.spec.deployment import Deployment, Setup, setup_from_instances
from routerwise.spec.plan import PLAN_FILE, Plan, load_plan
from routerwise.spec.spec_file import parse_spec
from routerwise.spec.workload import Workload


@dataclass(frozen=True, slots=True)
class Planned:
    """What the plan predicts for the simulated setup at its planned rate."""

    rate_rps: float
    fractions: dict[str, float]  # share of requests per deployed model
    quality: float | None  # on the scores routing was solved on
    quality_truth: float | None  # on outcome labels, when the workload has them
    ttft_mean_ms: float | None  # None: no prediction (e.g. a curve is missing)
    per_model_ttft_ms: dict[str, float | None]
    capacity_rps: dict[str, float | None]


@dataclass(frozen=True, slots=True)
class SimTarget:
    """One setup of a plan (its chosen setup or a baseline) with everything to simulate it."""

    plan_file: Path
    plan: Plan
    name: str  # "plan" or "baseline <name>"
    setup: Setup
    rule: RoutingRule  # over the deployed models, in ``setup.models`` order
    workload: Workload  # restricted to the deployed models, same order
    input_tokens: FloatArray  # (N,) per prompt
    output_tokens: FloatArray  # (N, K) per prompt and deployed model
    lengths_note: str
    gpu: GpuSpec
    archs: dict[str, ModelArch]
    curves: dict[str, LatencyCurve | None]  # deployment curves (all replicas), for predictions
    planned: Planned

    @property
    def models(self) -> tuple[str, ...]:
        return self.rule.models

    def engine_shape(self, model: str) -> EngineShape:
        """The estimator's instance shape of ``model``'s replicas (the engine model)."""
        dep = self.setup.deployment(model)
        assert dep is not None
        return EngineShape(self.archs[model], self.gpu, dep.tp, dep.mps_share)

    def predicted_at(self, rate_rps: float) -> Planned:
        """The plan's prediction at another total rate: same fractions, curves re-evaluated."""
        if rate_rps == self.planned.rate_rps:
            return self.planned
        per_model: dict[str, float | None] = {}
        for m, frac in self.planned.fractions.items():
            curve = self.curves.get(m)
            value = float(curve(rate_rps * frac)) if curve is not None and frac > 0 else None
            per_model[m] = value if value is not None and np.isfinite(value) else None
        return Planned(rate_rps, self.planned.fractions, self.planned.quality,
                       self.planned.quality_truth, _fleet(self.planned.fractions, per_model),
                       per_model, self.planned.capacity_rps)


def _fleet(fractions: dict[str, float], per_model: dict[str, float | None]) -> float | None:
    used = {m: f for m, f in fractions.items() if f > 0}
    if not used:
        return None
    total = 0.0
    for m, f in used.items():
        v = per_model.get(m)
        if v is None:
            return None
        total += f * v
    return total / sum(used.values())


def plan_file_of(path: Path) -> Path:
    return path / PLAN_FILE if path.is_dir() else path


def _workload(plan: Plan, models: tuple[str, ...]) -> Workload:
    spec = parse_spec(plan.inputs.spec, "plan.json: inputs.spec")
    full = restrict_workload(spec, spec_workload(spec, None), "plan.json: inputs.spec")
    workload = full.select_models(models)
    if plan.inputs.predictor is None:
        return workload
    from routerwise.predict.apply import predicted_workload

    return predicted_workload(workload, Path(plan.inputs.predictor))


def _lengths(workload: Workload) -> tuple[FloatArray, FloatArray, str]:
    """Per-prompt lengths, with the planner's fallbacks for what the workload lacks."""
    n, k = workload.num_prompts, workload.num_models
    inp, out = workload.input_tokens, workload.output_tokens
    notes = []
    if inp is None:
        inp = np.full(n, float(FALLBACK_INPUT_TOKENS))
        notes.append(f"{FALLBACK_INPUT_TOKENS} input tokens assumed")
    if out is None:
        out = np.full((n, k), float(FALLBACK_OUTPUT_TOKENS))
        notes.append(f"{FALLBACK_OUTPUT_TOKENS} output tokens assumed")
    note = "; ".join(notes) or f"token lengths from {workload.source}"
    return readonly(np.ceil(inp)), readonly(np.ceil(out)), note


def _curve(table: ProfileTable, dep: Deployment, cap_ms: float | None) -> LatencyCurve | None:
    rows = table.select_shape(dep.model, dep.gpu_type, dep.tp, dep.mps_share)
    if len(rows.frame) < 2:
        return None
    curve: LatencyCurve | None = fit_curve(below_saturation(rows.points(dep.model)))
    if cap_ms is not None and curve is not None:
        curve = capped_at_latency(curve, cap_ms)
    return None if curve is None else deployment_curve(curve, dep.model, dep.replicas)


def _chosen(plan: Plan, where: str) -> tuple[str, Setup, dict[str, float | None], dict[str, float],
                                             float | None, float | None]:
    if not plan.feasible or not plan.setup:
        raise InputError(f"{where}: the plan is infeasible: it has no setup to simulate "
                         "(simulate one of its baselines with --baseline NAME, or re-plan)")
    return ("plan", setup_from_instances(plan.setup), dict(plan.routing.prices),
            dict(plan.routing.fractions), plan.quality.predicted, plan.quality.truth)


def _baseline(plan: Plan, name: str, where: str) -> tuple[str, Setup, dict[str, float | None],
                                                          dict[str, float], float | None,
                                                          float | None]:
    base = plan.baselines.get(name)
    if base is None:
        raise InputError(f"{where}: no baseline {name!r}; the plan has "
                         f"{', '.join(sorted(plan.baselines)) or 'none'}")
    if not base.setup or not base.prices:
        raise InputError(f"{where}: baseline {name!r} has no routed setup to simulate "
                         f"({base.reason})")
    return (f"baseline {name}", setup_from_instances(base.setup), dict(base.prices),
            dict(base.fractions), base.quality, base.quality_truth)


def load_target(path: Path, baseline: str | None = None) -> SimTarget:
    """The plan's chosen setup (or ``baseline``) ready to simulate."""
    plan_file = plan_file_of(Path(path))
    plan = load_plan(plan_file)
    where = str(plan_file)
    name, setup, prices, fractions, quality, truth = (
        _chosen(plan, where) if baseline is None else _baseline(plan, baseline, where))
    models = setup.models
    workload = _workload(plan, models)
    rule = routing_rule(models, workload.scores, prices, plan.routing.tie_temperature, where)
    inp, out, note = _lengths(workload)
    if plan.cluster.mixed:
        raise InputError(f"{where}: the plan spans node pools of several GPU types "
                         f"({', '.join(p.gpu_type for p in plan.cluster.pools)}); simulating "
                         "mixed clusters is not supported yet")
    spec = parse_spec(plan.inputs.spec, f"{where}: inputs.spec")
    archs = {m.name: m.to_arch() for m in spec.models if m.name in models}
    profiles = plan_file.parent / plan.profiles_file
    if not profiles.is_file():
        raise InputError(f"{profiles}: the plan's profiles file does not exist")
    table = load_profiles(profiles)
    curves = {d.model: _curve(table, d, plan.slo.per_model_max_ms) for d in setup.deployments}
    used = {m: float(fractions.get(m, 0.0)) for m in models}
    planned = _planned(plan, name, used, quality, truth, curves)
    return SimTarget(plan_file=plan_file, plan=plan, name=name, setup=setup, rule=rule,
                     workload=workload, input_tokens=inp, output_tokens=out, lengths_note=note,
                     gpu=get_gpu(plan.cluster.gpu_type), archs=archs, curves=curves,
                     planned=planned)


def _planned(plan: Plan, name: str, fractions: dict[str, float], quality: float | None,
             truth: float | None, curves: dict[str, LatencyCurve | None]) -> Planned:
    rate = plan.rate_rps
    if name == "plan":
        per_model = {m: plan.predicted.per_model[m].ttft_mean_ms
                     if m in plan.predicted.per_model else None for m in fractions}
        caps = {m: plan.predicted.per_model[m].capacity_rps
                if m in plan.predicted.per_model else None for m in fractions}
        return Planned(rate, fractions, quality, truth, plan.predicted.ttft_mean_ms,
                       per_model, caps)
    per_model = {}
    for m, frac in fractions.items():
        curve = curves.get(m)
        value = float(curve(rate * frac)) if curve is not None and frac > 0 else None
        per_model[m] = value if value is not None and np.isfinite(value) else None
    no_caps: dict[str, float | None] = dict.fromkeys(fractions)  # not recorded for baselines
    return Planned(rate, fractions, quality, truth, _fleet(fractions, per_model), per_model,
                   no_caps)
