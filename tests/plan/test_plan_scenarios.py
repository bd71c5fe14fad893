"""Every built-in scenario, at its rate and a lower one: the plan meets the SLO, beats or
ties every baseline, places validly, never runs a deployment at or past its capacity, and
its plan.json validates against ``routerwise schema plan`` and round-trips through
``load_plan``."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import jsonschema
import pytest

from routerwise.plan.run import make_plan
from routerwise.profiles.memory import fits
from routerwise.scenarios.registry import load_scenario_spec
from routerwise.search.search import SearchConfig
from routerwise.spec.catalog import get_gpu
from routerwise.spec.plan import Plan, dump_plan, load_plan, plan_json_schema
from routerwise.spec.spec_file import Spec


def small(spec: Spec, rate: float) -> Spec:
    workload = spec.workload.model_copy(update={"num_prompts": 600})
    return spec.model_copy(update={"workload": workload, "rate_rps": rate})


def check_placement(plan: Plan, spec: Spec) -> None:
    gpu = get_gpu(spec.cluster.gpu_type)
    archs = {m.name: m.to_arch() for m in spec.models}
    load: dict[int, float] = defaultdict(float)
    owners: dict[int, list[str]] = defaultdict(list)
    for inst in plan.setup:
        assert all(0 <= g < spec.cluster.num_gpus for g in inst.gpu_ids)
        assert len({g // spec.cluster.gpus_per_node for g in inst.gpu_ids}) == 1  # one node
        assert fits(archs[inst.model], gpu, inst.tp, inst.mps_share)
        for g in inst.gpu_ids:
            load[g] += inst.mps_share
            owners[g].append(inst.model)
    assert all(v <= 1.0 + 1e-9 for v in load.values())
    assert all(len(set(o)) == len(o) for o in owners.values())  # one shard per model per GPU


def check_capacity(plan: Plan) -> None:
    """No deployment runs at or past its capacity, and no point past saturation is used."""
    for m, load in plan.predicted.per_model.items():
        if load.deployment is None:
            assert load.rate_rps == 0.0
            continue
        assert load.capacity_rps is not None and load.utilisation is not None
        assert load.rate_rps < load.capacity_rps, m  # strictly below saturation
        assert load.utilisation < 1.0, m
        assert load.ttft_mean_ms is not None
        assert load.ttft_mean_ms < 10 * 1000, f"{m}: {load.ttft_mean_ms} ms"


def check_lengths(plan: Plan) -> None:
    """Every deployed model says what lengths its curve stands for; a re-estimated curve
    stands for what the routing sends it (within 5%) unless the plan says the fixed point
    had not converged after its last round (a small workload's routing moves in steps)."""
    settled = not any("still moved more than" in n for n in plan.provenance.notes)
    for m, load in plan.predicted.per_model.items():
        if load.deployment is None:
            assert load.lengths is None
            continue
        lengths = load.lengths
        assert lengths is not None, m
        assert lengths.basis in ("workload", "routed"), m
        assert lengths.curve_input_tokens_mean is not None
        assert lengths.curve_output_tokens_mean is not None
        if lengths.basis == "routed" and settled:
            assert lengths.curve_input_tokens_mean == pytest.approx(
                lengths.routed_input_tokens_mean, rel=0.05), m
            assert lengths.curve_output_tokens_mean == pytest.approx(
                lengths.routed_output_tokens_mean, rel=0.05), m
    if settled:  # a mix still moving is named in the warnings
        assert not any("its latency curve was estimated with" in w for w in plan.warnings)


def check_contract(plan: Plan, tmp: Path) -> None:
    doc = json.loads(dump_plan(plan))
    jsonschema.validate(doc, plan_json_schema())
    path = tmp / "plan.json"
    path.write_text(dump_plan(plan))
    assert load_plan(path) == plan


@pytest.mark.slow  # ~4 minutes: six plans with cold-cache profiles
@pytest.mark.parametrize("scenario", ["paper-a100-3m", "paper-a100-4m", "h100-mixed"])
def test_plan_beats_baselines_and_meets_slo(scenario: str, profile_cache: Path,
                                            tmp_path: Path) -> None:
    base = load_scenario_spec(scenario)
    # the default (lagrangian) search at the planned rate, the exhaustive one below it
    for rate, method in ((base.rate_rps, "lagrangian"), (base.rate_rps * 0.75, "exhaustive")):
        spec = small(base, rate)
        run = make_plan(spec, scenario, None, cache_dir=profile_cache,
                        config=SearchConfig(method=method, executor="process", workers=2))
        plan = run.built.plan
        assert plan.feasible, plan.infeasible
        quality = plan.quality.predicted
        assert quality is not None
        feasible_baselines = [b for b in plan.baselines.values() if b.feasible]
        assert feasible_baselines, "at least one baseline should be feasible here"
        for b in feasible_baselines:
            assert b.quality is not None and quality >= b.quality - 1e-9
        assert plan.predicted.ttft_mean_ms is not None
        assert plan.predicted.ttft_mean_ms <= spec.slo.target_ms * (1 + 1e-7)
        assert sum(plan.routing.fractions.values()) == pytest.approx(1.0)
        check_placement(plan, spec)
        check_capacity(plan)
        check_contract(plan, tmp_path)
        check_lengths(plan)
        s = plan.search
        assert s.method == method
        # the search's numbers are on its curves; quality.predicted is after the fixed point
        searched = s.chosen_quality
        assert searched is not None
        assert s.upper_bound is not None and s.upper_bound >= searched - 1e-9
        if method == "exhaustive":
            assert s.retained is not None and s.dominated is not None
            assert s.non_dominated is not None and s.pruned_by_bound is not None
            assert s.over_capacity is not None
            assert s.enumerated >= s.retained >= s.evaluated > 0
            assert s.retained == s.dominated + s.non_dominated
            assert s.non_dominated == s.evaluated + s.pruned_by_bound + s.over_capacity
        else:
            assert s.retained is None and s.dual_iterations > 1 and s.gap is not None
        assert s.quality_min is not None and s.quality_max is not None
        assert s.quality_min <= searched <= s.quality_max + 1e-6
        assert plan.quality.truth is not None and plan.quality.score_source == "derived"
        assert plan.provenance.workload == "derived"
        assert plan.provenance.latency == ("estimated",)
