"""Assemble the typed :class:`~routerwise.spec.plan.Plan` from a search (assembly only).

Inputs: resolved :class:`PlanInputs`, the shape curves, the evaluation context, the
:class:`SearchResult`, and the chosen setup's routing re-solved next to the search
(:mod:`routerwise.search.resolve`). Output: a frozen Plan; every quality says what it was
computed on (``score_source``) and every curve its provenance.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from routerwise import __version__
from routerwise.plan.inputs import PlanInputs
from routerwise.plan.settle import (
    LengthReport,
    Settled,
    SettledPlan,
    mean_lengths,
    pool_lengths,
    routed_mixes,
    shift,
)
from routerwise.plan.shapes import ShapeProfiles
from routerwise.profiles.estimator import TokenLengths
from routerwise.search.baselines import BASELINES
from routerwise.search.evaluate import EvalContext
from routerwise.search.resolve import (
    ReachableInfo,
    Routed,
    reachable,
    require_feasible,
    round_down,
    route_setup,
    setup_curves,
)
from routerwise.search.search import Candidate, SearchResult, best_candidate
from routerwise.spec.plan import (
    PLAN_VERSION,
    PROFILES_FILE,
    BaselineResult,
    ClusterInfo,
    CurveLengths,
    ModelLoad,
    Plan,
    PlanInputsInfo,
    PlanProvenance,
    PoolInfo,
    Prediction,
    Quality,
    Reachable,
    Routing,
    SearchSummary,
    SloTarget,
)
from routerwise.spec.workload import Workload

#: A model whose own mean TTFT exceeds this multiple of the fleet target gets a warning.
PER_MODEL_WARN_FACTOR = 4.0


def _num(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


@dataclass(frozen=True, slots=True)
class BuiltPlan:
    """The plan and what the shell needs to render it (kept out of the file contract)."""

    plan: Plan
    chosen: Candidate | None
    routed: Routed | None
    feasible_qualities: tuple[float, ...]


def _truth(workload: Workload, routed: Routed) -> float | None:
    """The routing scored on outcome labels, when they differ from the scores routed on."""
    if workload.truth is None or workload.is_oracle:
        return None
    return routed.quality_on(workload.truth)


def _quality(workload: Workload, routed: Routed | None) -> Quality:
    source = workload.score_source
    notes = {
        "oracle": "ORACLE: the workload's scores are its outcome labels, so this routing "
                  "knows every answer's quality in advance; no deployment reaches it. Train a "
                  "predictor (or give pred:<model> columns) for a prediction.",
        "predicted": "predicted: solved on predicted scores; truth: the same routing scored on "
                     "the outcome labels",
        "derived": "derived: solved on a built-in scenario's simulated predictor; truth: the "
                   "same routing scored on its simulated outcomes",
    }
    predicted = None if routed is None else routed.result.quality
    truth = None if routed is None else _truth(workload, routed)
    return Quality(predicted=predicted, truth=truth, score_source=source, note=notes[source])


#: Why a baseline whose setup the length fixed point moved past the SLO is infeasible.
UNSETTLED_BASELINE = ("misses the SLO once its curves are re-estimated with the prompts its "
                      "routing sends each model (length fixed point)")


def _baseline(ctx: EvalContext, workload: Workload, search: SearchResult, name: str,
              settled: Settled | None = None) -> BaselineResult:
    mine = [c for c in search.candidates if name in c.baselines]
    best = best_candidate(mine)
    if best is None:
        why = mine[0].reason if mine else "no setup of this kind fits the cluster"
        return BaselineResult(False, None, None, (), (), why)
    if settled is not None:
        if not settled.feasible:
            return BaselineResult(False, None, None, best.setup.instances,
                                  best.setup.deployments, UNSETTLED_BASELINE)
        r = settled.routed
        return BaselineResult(
            feasible=True, quality=r.result.quality, quality_truth=_truth(workload, r),
            setup=best.setup.instances, deployments=best.setup.deployments,
            reason=best.reason, fractions=r.fractions(ctx.models), prices=r.prices(ctx.models))
    routed = route_setup(ctx, best.setup, best)
    ok = routed.result.feasible and routed.result.shares is not None
    return BaselineResult(
        feasible=True, quality=best.quality, quality_truth=_truth(workload, routed) if ok else None,
        setup=best.setup.instances, deployments=best.setup.deployments, reason=best.reason,
        fractions=routed.fractions(ctx.models) if ok else {},
        prices=routed.prices(ctx.models) if ok else {})


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _reachable_message(inputs: PlanInputs, info: ReachableInfo) -> Reachable:
    spec = inputs.spec
    slo = spec.slo.target_ms
    rate = None if info.max_rate_rps is None else round_down(info.max_rate_rps)
    rate_txt = ("no rate meets it" if rate is None
                else f"the highest rate any setup serves within it is {rate:.3g} req/s")
    low = info.lowest_ttft_mean_ms
    low_txt = (f"{spec.rate_rps:g} req/s exceeds the capacity of every setup"
               if math.isinf(low) else f"the lowest mean TTFT any setup reaches is {low:.1f} ms")
    message = (f"infeasible: no setup meets the mean TTFT SLO of {slo:g} ms at "
               f"{spec.rate_rps:g} req/s; {low_txt}; {rate_txt}")
    return Reachable(message=message, lowest_ttft_mean_ms=_num(low), max_rate_rps=rate)


def _curve_lengths(report: LengthReport, model: str) -> CurveLengths | None:
    mix = report.mixes.get(model)
    if mix is None or model not in report.basis:
        return None
    lengths, kind = report.basis[model]
    ri, ro = mean_lengths(mix)
    if kind == "measured":
        return CurveLengths("measured", None, None, ri, ro)
    ci, co = mean_lengths(lengths)
    return CurveLengths("routed" if kind == "routed" else "workload", ci, co, ri, ro,
                        report.replicas.get(model, 1))


def _per_model(ctx: EvalContext, shapes: ShapeProfiles, chosen: Candidate, routed: Routed,
               report: LengthReport) -> dict[str, ModelLoad]:
    curves = setup_curves(ctx, chosen.setup)
    out: dict[str, ModelLoad] = {}
    for m in ctx.models:
        dep = chosen.setup.deployment(m)
        if dep is None:
            out[m] = ModelLoad(None, 0.0, None, None, None)
            continue
        j = routed.models.index(m)
        rate = float(routed.result.rates_rps[j])
        sat = shapes.saturation_rps.get(dep.shape)
        cap = sat * dep.replicas if sat is not None else curves[m].capacity_rps_
        name = dep.describe() if isinstance(ctx.gpu_type, str) else (
            f"{dep.describe()} on {dep.gpu_type}")
        out[m] = ModelLoad(name, rate, _num(float(routed.result.latency_ms[j])),
                           _num(cap), _num(rate / cap) if cap > 0 else None,
                           _curve_lengths(report, m))
    return out


def _warnings(inputs: PlanInputs, per_model: Mapping[str, ModelLoad]) -> tuple[str, ...]:
    target = inputs.spec.slo.target_ms
    out = []
    for m, load in per_model.items():
        if load.ttft_mean_ms is not None and load.ttft_mean_ms > PER_MODEL_WARN_FACTOR * target:
            out.append(f"{m}: its own mean TTFT {load.ttft_mean_ms:.0f} ms is over "
                       f"{PER_MODEL_WARN_FACTOR:g}× the fleet target {target:g} ms (it gets "
                       f"{load.rate_rps:.3g} req/s); set slo.per_model_max_ms to bound it")
    return tuple(out)


#: A model's routed mean prompt length may differ this much (relative) from the lengths its
#: latency curve was estimated with before the plan warns (prefill time follows it).
LENGTH_MIX_TOLERANCE = 0.2


def length_mix_warnings(models: Sequence[str], index: Sequence[int], shares: np.ndarray,
                        input_tokens: np.ndarray, profiled_mean: Mapping[str, float],
                        tolerance: float = LENGTH_MIX_TOLERANCE) -> list[str]:
    """Warnings for models whose routed prompts are much longer or shorter on average than
    the prompts their curves were estimated with: the router's mix is not the workload's."""
    out = []
    for j, k in enumerate(index):
        m, weight = models[k], float(shares[:, j].sum())
        if weight <= 0 or m not in profiled_mean:
            continue
        routed = float(shares[:, j] @ input_tokens) / weight
        ratio = routed / profiled_mean[m]
        if abs(ratio - 1) > tolerance:
            out.append(f"{m}: the router sends it prompts of {routed:.0f} input tokens on "
                       f"average, {ratio:.2f}× the {profiled_mean[m]:.0f} its latency curve "
                       f"was estimated with; its TTFT will be {'higher' if ratio > 1 else 'lower'}"
                       " than planned — check with `routerwise simulate`")
    return out


def _routed_length_warnings(inputs: PlanInputs, ctx: EvalContext, routed: Routed | None,
                            report: LengthReport | None) -> list[str]:
    """Length-mix warnings against the lengths each curve was estimated with (a measured
    curve: the workload's)."""
    tokens = inputs.workload.input_tokens
    if routed is None or routed.result.shares is None or tokens is None or report is None:
        return []
    pool = pool_lengths(inputs)
    profiled = {}
    for m in routed.models:
        lengths, kind = report.basis.get(m, (pool[m], "workload"))
        profiled[m] = (pool[m] if kind == "measured" else lengths).means()[0]
    return length_mix_warnings(ctx.models, routed.index, routed.result.shares, tokens,
                               profiled)


def _unsettled_report(inputs: PlanInputs, shapes: ShapeProfiles, chosen: Candidate,
                      routed: Routed) -> LengthReport:
    """The lengths behind a plan that was not settled: each curve's own, and the routed."""
    basis: dict[str, tuple[TokenLengths, str]] = {}
    routed_models = set(routed.models)
    pool = pool_lengths(inputs)
    for d in chosen.setup.deployments:
        if d.model not in routed_models:
            continue
        kind = shapes.provenance.get(d.shape, "estimated")
        lengths = inputs.lengths[d.model]
        basis[d.model] = (lengths, "measured" if "measured" in kind.split(",") else
                          "workload" if shift(lengths, pool[d.model]) == 0 else "routed")
    return LengthReport(basis, routed_mixes(routed, pool), 0, 0, None,
                        dict.fromkeys(basis, 1))


def _search_summary(search: SearchResult, feasible_q: tuple[float, ...]) -> SearchSummary:
    spread = (feasible_q[-1] / feasible_q[0] - 1) if feasible_q and feasible_q[0] > 0 else None
    return SearchSummary(
        enumerated=search.enumerated, retained=search.retained, dominated=search.dominated,
        non_dominated=search.non_dominated, evaluated=search.evaluated,
        pruned_by_bound=search.pruned, over_capacity=search.over_capacity,
        baselines_evaluated=search.baselines_evaluated, sampled_for_spread=search.sampled,
        seconds=round(search.seconds, 3),
        quality_min=_num(feasible_q[0]) if feasible_q else None,
        quality_max=_num(feasible_q[-1]) if feasible_q else None,
        spread=_num(spread) if spread is not None else None,
        spread_over=("evaluated setups (baselines included) and a uniform sample of "
                     "retained ones") if search.method == "exhaustive"
        else "evaluated setups (baselines included)",
        feasible_evaluated=len(feasible_q), method=search.method,
        upper_bound=_num(search.upper_bound) if math.isfinite(search.upper_bound) else None,
        gap=_num(search.gap) if feasible_q and math.isfinite(search.gap) else None,
        dual_iterations=search.dual_iterations)


def _provenance(inputs: PlanInputs, shapes: ShapeProfiles, report: LengthReport | None,
                settled: SettledPlan | None = None) -> PlanProvenance:
    w = inputs.workload
    by_kind: dict[str, int] = {}
    for kind in shapes.provenance.values():
        by_kind[kind] = by_kind.get(kind, 0) + 1
    truth = {"oracle": "none: the labels are the scores (an oracle)",
             "predicted": "measured outcome labels of the workload file",
             "derived": "derived (simulated outcomes of the built-in scenario)"}
    return PlanProvenance(
        workload=w.provenance, workload_source=w.source, scores=w.score_source,
        latency=tuple(sorted(set(shapes.provenance.values()))), profiles=by_kind,
        quality_predicted=f"{w.score_source} (routing solved on these scores)",
        quality_truth=truth[w.score_source],
        notes=(*inputs.notes, *w.notes, *shapes.notes,
               *(() if report is None or report.note is None else (report.note,)),
               *(() if settled is None or settled.promoted is None else (
                   f"after the length fixed point the {settled.promoted} baseline's setup "
                   "predicts a higher quality than the search's choice (ranked on the "
                   "workload's lengths); it is the plan's setup",))))


def _inputs_info(inputs: PlanInputs, ctx: EvalContext) -> PlanInputsInfo:
    spec = inputs.spec.model_dump(mode="json")
    return PlanInputsInfo(
        spec=spec, spec_sha256=_digest(spec),
        workload_sha256=hashlib.sha256(np.ascontiguousarray(ctx.scores).tobytes())
        .hexdigest()[:16],
        num_prompts=int(ctx.scores.shape[0]), routerwise_version=__version__,
        predictor=None if inputs.predictor is None else str(inputs.predictor))


def build_plan(inputs: PlanInputs, shapes: ShapeProfiles, ctx: EvalContext,
               search: SearchResult, *, settled: SettledPlan | None = None,
               search_ctx: EvalContext | None = None, unsettled: str | None = None
               ) -> BuiltPlan:
    """Choose the best candidate, re-route it for per-prompt shares, assemble the Plan; or
    take the choice ``settled`` by the length fixed point (``ctx``: its re-estimated curves;
    its baselines settled alike; ``search_ctx``: the curves the search ran on).
    ``unsettled``: why the fixed point failed (a plan warning)."""
    spec = inputs.spec
    searched = best_candidate(search.candidates)
    chosen = searched if settled is None else settled.chosen
    feasible_q = tuple(sorted(c.quality for c in search.candidates if c.status == "feasible"))
    report = None if settled is None else settled.report
    routed = None
    if chosen is not None:
        routed = settled.settled.routed if settled is not None else require_feasible(
            route_setup(ctx, chosen.setup, chosen), chosen.setup)
        if report is None:
            report = _unsettled_report(inputs, shapes, chosen, routed)
    per_model: dict[str, ModelLoad] = {}
    if chosen is not None and routed is not None and report is not None:
        per_model = _per_model(ctx, shapes, chosen, routed, report)
    base_ctx = search_ctx or ctx
    plan = Plan(
        plan_version=PLAN_VERSION, feasible=chosen is not None, scenario=inputs.source,
        rate_rps=spec.rate_rps,
        slo=SloTarget("ttft", "mean", spec.slo.target_ms, spec.slo.per_model_max_ms),
        cluster=_cluster_info(inputs),
        models=tuple(ctx.models), quality=_quality(inputs.workload, routed),
        setup=() if chosen is None else chosen.setup.instances,
        deployments=() if chosen is None else chosen.setup.deployments,
        routing=_routing(ctx, routed),
        predicted=Prediction(
            ttft_mean_ms=None if routed is None else _num(routed.result.fleet_ttft_ms),
            per_model=per_model, convexified=bool(routed and routed.result.convexified),
            length_rounds=0 if report is None else report.rounds,
            length_searches=0 if report is None else report.searches),
        search=replace(_search_summary(search, feasible_q),
                       chosen_quality=None if searched is None else _num(searched.quality)),
        baselines={n: _baseline(base_ctx, inputs.workload, search, n,
                                None if settled is None else settled.baselines.get(n))
                   for n in BASELINES},
        infeasible=None if chosen is not None
        else _reachable_message(inputs, reachable(base_ctx, search.candidates)),
        warnings=(*_warnings(inputs, per_model),
                  *_routed_length_warnings(inputs, ctx, routed, report),
                  *(() if unsettled is None else (unsettled,))),
        provenance=_provenance(inputs, shapes, report, settled), inputs=_inputs_info(inputs, ctx),
        profiles_file=PROFILES_FILE)
    return BuiltPlan(plan, chosen, routed, feasible_q)


def _cluster_info(inputs: PlanInputs) -> ClusterInfo:
    c = inputs.spec.cluster
    if not c.mixed:
        return ClusterInfo(inputs.gpu.name, c.total_gpus, c.gpus_per_node)
    pools, first = [], 0
    for gpu, count, per_node in c.groups():
        pools.append(PoolInfo(gpu, first, count, per_node))
        first += count
    return ClusterInfo("mixed", c.total_gpus, c.gpus_per_node, tuple(pools))


def _routing(ctx: EvalContext, routed: Routed | None) -> Routing:
    if routed is None:
        return Routing({}, {}, 0.0, None)
    r = routed.result
    return Routing(prices=routed.prices(ctx.models), fractions=routed.fractions(ctx.models),
                   tie_temperature=r.tie_temperature, multiplier_per_ms=_num(r.multiplier))
