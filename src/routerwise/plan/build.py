"""Build the Plan artifact (DESIGN.md §6 ``plan.json``) from a search.

Inputs: resolved :class:`PlanInputs`, the shape curves and the :class:`SearchResult`.
Output: a JSON-ready dict; every number is labelled with its provenance.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from routerwise import __version__
from routerwise.plan.inputs import PlanInputs
from routerwise.plan.shapes import ShapeProfiles
from routerwise.routing.dual import Hint
from routerwise.routing.problem import RoutingResult
from routerwise.routing.reachable import max_rate_meeting_slo
from routerwise.routing.solvers import solve
from routerwise.search.baselines import BASELINES
from routerwise.search.evaluate import EvalContext, Evaluator
from routerwise.search.search import Candidate, SearchResult, best_candidate


def _num(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


@dataclass(frozen=True, slots=True)
class Plan:
    """The plan document and what the shell needs to render it."""

    doc: dict[str, Any]
    chosen: Candidate | None
    result: RoutingResult | None
    feasible_qualities: tuple[float, ...]
    baseline_qualities: Mapping[str, float | None]


def _instances(c: Candidate, gpu_type: str) -> list[dict[str, Any]]:
    return [{"model": i.model, "gpu_type": gpu_type, "tp": i.tp, "mps_share": i.share_units / 10,
             "gpu_ids": list(i.gpu_ids)} for i in c.instances]


def _baselines(search: SearchResult, gpu_type: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in BASELINES:
        mine = [c for c in search.candidates if name in c.baselines]
        best = best_candidate(mine)
        if best is None:
            why = mine[0].reason if mine else "no setup of this kind fits the cluster"
            out[name] = {"feasible": False, "quality": None, "setup": [], "reason": why}
        else:
            out[name] = {"feasible": True, "quality": best.quality,
                         "setup": _instances(best, gpu_type),
                         "deployments": best.setup.describe()}
    return out


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _infeasible(inputs: PlanInputs, ctx: EvalContext, search: SearchResult) -> dict[str, Any]:
    """What is reachable when no setup meets the SLO: lowest mean TTFT and highest rate."""
    evaluator = Evaluator(ctx)
    evaluated = [c for c in search.candidates if c.status == "infeasible"]
    lowest = [(evaluator.lowest_fleet_ms(c.setup), c) for c in evaluated]
    lowest.sort(key=lambda t: t[0])
    best_rate = None
    for _, c in lowest[:8]:
        problem, _, _ = evaluator.problem(c.setup)
        rate = max_rate_meeting_slo(problem)
        if rate is not None and (best_rate is None or rate > best_rate):
            best_rate = rate
    low = lowest[0][0] if lowest else math.inf
    slo = inputs.spec.slo.target_ms
    rate_txt = ("no rate meets it" if best_rate is None
                else f"the highest rate any setup serves within it is {best_rate:.3g} req/s")
    low_txt = (f"{inputs.spec.rate_rps:g} req/s exceeds the capacity of every setup"
               if math.isinf(low) else f"the lowest mean TTFT any setup reaches is {low:.1f} ms")
    message = (f"infeasible: no setup meets the mean TTFT SLO of {slo:g} ms at "
               f"{inputs.spec.rate_rps:g} req/s; {low_txt}; {rate_txt}")
    return {"message": message, "lowest_ttft_mean_ms": _num(low), "max_rate_rps": best_rate}


def build_plan(inputs: PlanInputs, shapes: ShapeProfiles, ctx: EvalContext,
               search: SearchResult) -> Plan:
    """Choose the best candidate, re-route it for per-prompt shares, and write the document."""
    spec = inputs.spec
    chosen = best_candidate(search.candidates)
    feasible_q = tuple(sorted(c.quality for c in search.candidates if c.status == "feasible"))
    baselines = _baselines(search, inputs.gpu.name)
    doc: dict[str, Any] = {
        "feasible": chosen is not None,
        "scenario": inputs.source,
        "rate_rps": spec.rate_rps,
        "slo": {"metric": spec.slo.metric, "stat": spec.slo.stat, "target_ms": spec.slo.target_ms},
        "cluster": {"gpu_type": inputs.gpu.name, "num_gpus": spec.cluster.num_gpus,
                    "gpus_per_node": spec.cluster.gpus_per_node},
        "models": list(ctx.models),
    }
    result = None
    if chosen is None:
        doc.update({"quality": {"predicted": None, "truth": None}, "setup": [],
                    "routing": {"prices": {}, "fractions": {}}, "predicted": {}})
        doc["infeasible"] = _infeasible(inputs, ctx, search)
    else:
        result, doc_part = _chosen(inputs, ctx, chosen)
        doc.update(doc_part)
    spread = (feasible_q[-1] / feasible_q[0] - 1) if feasible_q and feasible_q[0] > 0 else None
    doc["search"] = {
        "enumerated": search.enumerated, "retained": search.retained,
        "evaluated": search.evaluated, "dominated": search.dominated,
        "pruned_by_bound": search.pruned, "over_capacity": search.over_capacity,
        "sampled_for_spread": search.sampled,
        "seconds": round(search.seconds, 3),
        "quality_min": _num(feasible_q[0]) if feasible_q else None,
        "quality_max": _num(feasible_q[-1]) if feasible_q else None,
        "spread": _num(spread) if spread is not None else None,
        "spread_over": "evaluated setups and a uniform sample of retained ones",
        "feasible_evaluated": len(feasible_q),
    }
    doc["baselines"] = baselines
    doc["provenance"] = {
        "workload": inputs.workload.provenance,
        "workload_source": inputs.workload.source,
        "scores": f"{inputs.workload.provenance} (predicted scores, used to plan and route)",
        "latency": sorted(set(shapes.provenance.values())),
        "profiles": {"estimated": shapes.estimated, "supplied": shapes.supplied},
        "quality_predicted": "derived (routing solved on predicted scores)",
        "quality_truth": "derived (the chosen routing scored on measured/outcome truth)",
        "notes": list(inputs.notes) + list(inputs.workload.notes),
    }
    doc["inputs"] = {
        "spec_sha256": _digest(spec.model_dump(mode="json")),
        "workload_sha256": hashlib.sha256(np.ascontiguousarray(ctx.scores).tobytes())
        .hexdigest()[:16],
        "num_prompts": int(ctx.scores.shape[0]),
        "routerwise_version": __version__,
    }
    base_q = {name: b["quality"] for name, b in baselines.items()}
    return Plan(doc=doc, chosen=chosen, result=result, feasible_qualities=feasible_q,
                baseline_qualities=base_q)


def _chosen(inputs: PlanInputs, ctx: EvalContext, chosen: Candidate
            ) -> tuple[RoutingResult, dict[str, Any]]:
    evaluator = Evaluator(ctx)
    deployed_idx = [k for k, d in enumerate(chosen.setup.deployments) if d is not None]
    hint = Hint(alpha=np.array([chosen.prices[k] for k in deployed_idx]),
                beta=chosen.multiplier) if chosen.prices else None
    result, idx = evaluator.solve(chosen.setup, hint)  # warm: lands where the search did
    if not result.feasible:  # numerically on the SLO's edge: the exact LP settles it
        problem, _, idx = evaluator.problem(chosen.setup)
        result = solve(problem, "exact")
    if not result.feasible or result.shares is None:
        raise RuntimeError(f"the chosen setup re-solved infeasible: {chosen.setup.describe()}")
    truth = inputs.workload.truth
    q_truth = None
    if truth is not None:
        q_truth = float((truth[:, idx] * result.shares).sum() / truth.shape[0])
    deployed = [ctx.models[k] for k in idx]
    fractions = dict.fromkeys(ctx.models, 0.0)
    prices: dict[str, float | None] = dict.fromkeys(ctx.models)
    per_model: dict[str, Any] = {}
    for j, m in enumerate(deployed):
        fractions[m] = float(result.fractions[j])
        prices[m] = float(result.prices[j])
    for m, dep in zip(chosen.setup.models, chosen.setup.deployments, strict=True):
        entry: dict[str, Any] = {"deployment": dep.describe() if dep else None,
                                 "rate_rps": 0.0, "ttft_mean_ms": None}
        if m in deployed:
            j = deployed.index(m)
            entry.update(rate_rps=float(result.rates_rps[j]),
                         ttft_mean_ms=float(result.latency_ms[j]))
        per_model[m] = entry
    doc = {
        "quality": {"predicted": result.quality, "truth": q_truth},
        "setup": _instances(chosen, inputs.gpu.name),
        "deployments": chosen.setup.describe(),
        "routing": {"prices": prices, "fractions": fractions,
                    "tie_temperature": result.tie_temperature,
                    "multiplier_per_ms": result.multiplier},
        "predicted": {"ttft_mean_ms": result.fleet_ttft_ms, "per_model": per_model,
                      "convexified": result.convexified},
    }
    return result, doc
