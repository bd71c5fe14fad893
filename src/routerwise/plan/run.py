"""One call from a spec to a plan: inputs → shape profiles → search → Plan (the library entry
point behind ``routerwise plan``; file writing stays in the CLI)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from routerwise.latency.curve import LatencyCurve
from routerwise.plan.build import Plan, build_plan
from routerwise.plan.inputs import PlanInputs, drop_unusable, plan_inputs
from routerwise.plan.shapes import ShapeProfiles, shape_profiles
from routerwise.profiles.table import ProfileTable
from routerwise.search.curves import deployment_curve, shape_key
from routerwise.search.evaluate import EvalContext
from routerwise.search.search import SearchConfig, search_setups
from routerwise.spec.spec_file import Spec


@dataclass(frozen=True, slots=True)
class PlanRun:
    plan: Plan
    inputs: PlanInputs
    shapes: ShapeProfiles
    ctx: EvalContext

    def chosen_curves(self) -> dict[str, LatencyCurve]:
        """Each deployed model's latency curve in the chosen setup."""
        chosen = self.plan.chosen
        if chosen is None:
            return {}
        return {m: deployment_curve(self.shapes.curves[shape_key(m, d)], m, d.replicas)
                for m, d in zip(chosen.setup.models, chosen.setup.deployments, strict=True)
                if d is not None}


def make_plan(
    spec: Spec, source: str, spec_path: Path | None, *,
    supplied: Sequence[ProfileTable] = (), config: SearchConfig = SearchConfig(),
    cache_dir: Path | None = None,
    profile_progress: Callable[[int, int, str], None] | None = None,
    search_progress: Callable[[int, int], None] | None = None,
) -> PlanRun:
    inputs = plan_inputs(spec, source, spec_path)
    shapes_needed = {shape_key(o.model, d) for o in inputs.options for d in o.options}
    shapes = shape_profiles(inputs.archs, inputs.gpu, shapes_needed, inputs.lengths,
                            supplied=supplied, cache_dir=cache_dir, progress=profile_progress)
    if shapes.unusable:
        inputs = drop_unusable(inputs, shapes.unusable)
    ctx = EvalContext(models=inputs.workload.models, scores=inputs.workload.scores,
                      shape_curves=shapes.curves, total_rps=spec.rate_rps,
                      slo_ms=spec.slo.target_ms)
    c = spec.cluster
    search = search_setups(ctx, inputs.options, c.num_gpus, c.gpus_per_node, config,
                           progress=search_progress)
    return PlanRun(plan=build_plan(inputs, shapes, ctx, search), inputs=inputs, shapes=shapes,
                   ctx=ctx)
