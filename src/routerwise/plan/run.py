"""One call from a spec to a plan: inputs → shape profiles → search → Plan (the library entry
point behind ``routerwise plan``; file writing stays in the CLI)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from routerwise.errors import InfeasibleError
from routerwise.latency.curve import LatencyCurve, capped_at_latency
from routerwise.plan.build import BuiltPlan, build_plan
from routerwise.plan.inputs import PlanInputs, drop_unusable, plan_inputs
from routerwise.plan.settle import (
    TOLERANCE,
    Estimate,
    Settled,
    SettledPlan,
    best_settled,
    lengths_report,
    pool_lengths,
    settle,
    settle_baselines,
    shift,
    unsettled_warning,
)
from routerwise.plan.shapes import ShapeEstimate, ShapeProfiles, estimate_shape, shape_profiles
from routerwise.profiles.estimator import TokenLengths
from routerwise.profiles.table import ProfileTable
from routerwise.search.baselines import BASELINES
from routerwise.search.evaluate import EvalContext
from routerwise.search.methods import run_search
from routerwise.search.resolve import setup_curves
from routerwise.search.search import Candidate, SearchConfig, SearchResult, best_candidate
from routerwise.search.space import shape_of
from routerwise.spec.deployment import InstanceShape
from routerwise.spec.spec_file import Spec


@dataclass(frozen=True, slots=True)
class PlanRun:
    built: BuiltPlan
    inputs: PlanInputs
    shapes: ShapeProfiles
    ctx: EvalContext

    def chosen_curves(self) -> dict[str, LatencyCurve]:
        """Each deployed model's latency curve in the chosen setup."""
        chosen = self.built.plan.chosen
        return {} if chosen is None else setup_curves(self.ctx, chosen)


def profiles_frame(shapes: ShapeProfiles) -> pd.DataFrame:
    """Every curve the plan used, one row per point (``profiles.csv`` beside plan.json)."""
    rows = []
    for shape in sorted(shapes.curves):
        curve = shapes.curves[shape]
        for rate, value in zip(curve.rates_, curve.values_, strict=True):
            rows.append({"model": shape.model, "gpu": shape.gpu_type, "tp": shape.tp,
                         "mps_share": shape.mps_share, "rate_rps": float(rate),
                         "ttft_mean_ms": float(value), "provenance": shapes.provenance[shape]})
    return pd.DataFrame(rows, columns=["model", "gpu", "tp", "mps_share", "rate_rps",
                                       "ttft_mean_ms", "provenance"])


def _cap(shapes: ShapeProfiles, max_ms: float | None) -> ShapeProfiles:
    """Apply ``slo.per_model_max_ms``: each curve ends where it reaches the bound."""
    if max_ms is None:
        return shapes
    curves: dict[InstanceShape, LatencyCurve] = {}
    unusable = dict(shapes.unusable)
    for shape, curve in shapes.curves.items():
        capped = capped_at_latency(curve, max_ms)
        if capped is None:
            unusable[shape] = (f"its mean TTFT at zero load {curve.values_[0]:.1f} ms exceeds "
                               f"slo.per_model_max_ms {max_ms:g} ms")
        else:
            curves[shape] = capped
    return replace(shapes, curves=curves, unusable=unusable)


def make_plan(
    spec: Spec, source: str, spec_path: Path | None, *,
    supplied: Sequence[ProfileTable] = (), config: SearchConfig = SearchConfig(),
    cache_dir: Path | None = None,
    profile_progress: Callable[[int, int, str], None] | None = None,
    search_progress: Callable[[int, int], None] | None = None,
    enumeration_progress: Callable[[int], None] | None = None,
    predictor: Path | None = None,
    correct: bool = True,
    settle_lengths: bool = True,
) -> PlanRun:
    """Profiles → search → the chosen setup settled on its routed lengths
    (``plan/settle.py``; ``settle_lengths=False`` keeps the workload's lengths) → Plan."""
    base = plan_inputs(spec, source, spec_path, predictor)

    def searched(inputs: PlanInputs) -> _Searched:
        return _search(inputs, supplied=supplied, config=config, cache_dir=cache_dir,
                       correct=correct, profile_progress=profile_progress,
                       search_progress=search_progress,
                       enumeration_progress=enumeration_progress)

    first = searched(base)
    if not settle_lengths:
        built = build_plan(first.inputs, first.shapes, first.ctx, first.search)
        return PlanRun(built=built, inputs=first.inputs, shapes=first.shapes, ctx=first.ctx)
    return _settled_plan(base, first, searched, cache_dir)


@dataclass(frozen=True, slots=True)
class _Searched:
    inputs: PlanInputs
    shapes: ShapeProfiles
    ctx: EvalContext
    search: SearchResult


def _search(inputs: PlanInputs, *, supplied: Sequence[ProfileTable], config: SearchConfig,
            cache_dir: Path | None, correct: bool,
            profile_progress: Callable[[int, int, str], None] | None,
            search_progress: Callable[[int, int], None] | None,
            enumeration_progress: Callable[[int], None] | None) -> _Searched:
    spec = inputs.spec
    gpu = inputs.gpu_types
    needed = {shape_of(o.model, d, gpu) for o in inputs.options for d in o.options}
    by_type = {g.name: g for g in inputs.pool_gpus or (inputs.gpu,)}
    shapes = _merged([
        shape_profiles(inputs.archs, g, {n for n in needed if n.gpu_type == name},
                       inputs.lengths, supplied=supplied, cache_dir=cache_dir,
                       progress=profile_progress, correct=correct)
        for name, g in by_type.items()])
    shapes = _cap(shapes, spec.slo.per_model_max_ms)
    if shapes.unusable:
        inputs = drop_unusable(inputs, shapes.unusable)
    ctx = context(inputs, shapes.curves)
    search = run_search(ctx, inputs.options, spec.cluster.total_gpus, inputs.layout, config,
                        progress=search_progress, enumeration_progress=enumeration_progress)
    return _Searched(inputs, shapes, ctx, search)


#: Searches re-run, at most, when the chosen setup misses the SLO on its routed lengths.
MAX_LENGTH_SEARCHES = 2


def _estimator(inputs: PlanInputs, cache_dir: Path | None) -> Estimate:
    """One shape re-estimated with given lengths (per instance of a balanced group of
    replicas), capped like the search's curves."""
    by_type = {g.name: g for g in inputs.pool_gpus or (inputs.gpu,)}
    max_ms = inputs.spec.slo.per_model_max_ms

    def estimate(key: InstanceShape, lengths: TokenLengths, replicas: int) -> ShapeEstimate:
        est = estimate_shape(inputs.archs[key.model], by_type[key.gpu_type], key, lengths,
                             cache_dir, replicas)
        if max_ms is None:
            return est
        capped = capped_at_latency(est.curve, max_ms)
        if capped is None:
            raise InfeasibleError(f"{key.model} {key.describe()}: slower than "
                                  f"slo.per_model_max_ms {max_ms:g} ms at zero load")
        return replace(est, curve=capped)

    return estimate


def _built(current: _Searched, chosen: Candidate, settled: Settled, searches: int,
           pool: Mapping[str, TokenLengths], estimate: Estimate, routed: frozenset[str]
           ) -> PlanRun:
    """The plan from a settled choice, its baselines settled alike; a baseline's setup that
    then predicts a higher quality becomes the plan's."""
    candidates = current.search.candidates
    baselines = settle_baselines(current.shapes, current.ctx, candidates, BASELINES, chosen,
                                 settled, current.inputs.lengths, pool, estimate, routed)
    pick, final, promoted = best_settled(chosen, settled, baselines, candidates)
    choice = SettledPlan(pick, final, lengths_report(final, searches), baselines, promoted)
    built = build_plan(current.inputs, final.shapes, final.ctx, current.search,
                       settled=choice, search_ctx=current.ctx)
    return PlanRun(built=built, inputs=current.inputs, shapes=final.shapes, ctx=final.ctx)


def _settled_plan(base: PlanInputs, first: _Searched,
                  searched: Callable[[PlanInputs], _Searched], cache_dir: Path | None
                  ) -> PlanRun:
    """Settle the chosen setup on its routed lengths; when it then misses the SLO, search
    again with every shape of the shifted models estimated at their routed lengths (at most
    ``MAX_LENGTH_SEARCHES`` times); when no search settles, keep the last plan and warn."""
    pool = pool_lengths(base)
    estimate = _estimator(base, cache_dir)
    current, routed_models, searches = first, frozenset[str](), 0
    missed: Settled | None = None
    while (chosen := best_candidate(current.search.candidates)) is not None:
        settled = settle(current.shapes, current.ctx, chosen, current.inputs.lengths, pool,
                         estimate, routed_basis=routed_models)
        if settled.feasible:
            return _built(current, chosen, settled, searches, pool, estimate, routed_models)
        missed = settled
        if searches == MAX_LENGTH_SEARCHES:
            break
        moved = {m: mix for m, mix in settled.mixes.items()
                 if shift(mix, current.inputs.lengths[m]) > TOLERANCE}
        if not moved:
            break
        again = searched(replace(base, lengths={**current.inputs.lengths, **moved}))
        searches += 1
        if best_candidate(again.search.candidates) is None:
            break
        current, routed_models = again, routed_models | moved.keys()
    built = build_plan(current.inputs, current.shapes, current.ctx, current.search,
                       unsettled=None if missed is None else unsettled_warning(missed))
    return PlanRun(built=built, inputs=current.inputs, shapes=current.shapes, ctx=current.ctx)


def context(inputs: PlanInputs, curves: Mapping[InstanceShape, LatencyCurve]) -> EvalContext:
    spec = inputs.spec
    return EvalContext(models=inputs.workload.models, scores=inputs.workload.scores,
                       shape_curves=curves, total_rps=spec.rate_rps,
                       slo_ms=spec.slo.target_ms, gpu_type=inputs.gpu_types)


def _merged(parts: Sequence[ShapeProfiles]) -> ShapeProfiles:
    """One GPU type's profiles after another's (node pools of several types)."""
    if len(parts) == 1:
        return parts[0]
    def union(name: str) -> dict[Any, Any]:
        return {k: v for p in parts for k, v in getattr(p, name).items()}
    return ShapeProfiles(
        curves=union("curves"), provenance=union("provenance"),
        estimated=sum(p.estimated for p in parts), supplied=sum(p.supplied for p in parts),
        unusable=union("unusable"), saturation_rps=union("saturation_rps"),
        time_scales=union("time_scales"), notes=tuple(n for p in parts for n in p.notes))
