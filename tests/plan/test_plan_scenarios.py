"""Every built-in scenario, at its rate and a higher one: the plan meets the SLO, beats or
ties every baseline, and its placement is valid."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from routerwise.plan.run import make_plan
from routerwise.profiles.memory import fits
from routerwise.scenarios.registry import load_scenario_spec
from routerwise.search.search import SearchConfig
from routerwise.spec.catalog import get_gpu
from routerwise.spec.spec_file import Spec


def small(spec: Spec, rate: float) -> Spec:
    workload = spec.workload.model_copy(update={"num_prompts": 600})
    return spec.model_copy(update={"workload": workload, "rate_rps": rate})


def check_placement(doc: dict[str, Any], spec: Spec) -> None:
    gpu = get_gpu(spec.cluster.gpu_type)
    archs = {m.name: m.to_arch() for m in spec.models}
    load: dict[int, float] = defaultdict(float)
    owners: dict[int, list[str]] = defaultdict(list)
    for inst in doc["setup"]:
        ids = inst["gpu_ids"]
        assert len(ids) == inst["tp"]
        assert all(0 <= g < spec.cluster.num_gpus for g in ids)
        assert len({g // spec.cluster.gpus_per_node for g in ids}) == 1  # tp inside a node
        assert fits(archs[inst["model"]], gpu, inst["tp"], inst["mps_share"])
        for g in ids:
            load[g] += inst["mps_share"]
            owners[g].append(inst["model"])
    assert all(v <= 1.0 + 1e-9 for v in load.values())
    assert all(len(set(o)) == len(o) for o in owners.values())  # one shard per model per GPU


@pytest.mark.slow  # 0.5-3 minutes per scenario on 2 cores (estimates every shape, then searches)
@pytest.mark.parametrize("scenario", ["paper-a100-3m", "paper-a100-4m", "h100-mixed"])
def test_plan_beats_baselines_and_meets_slo(scenario: str, profile_cache: Path) -> None:
    base = load_scenario_spec(scenario)
    for rate in (base.rate_rps, base.rate_rps * 0.75):
        spec = small(base, rate)
        run = make_plan(spec, scenario, None, cache_dir=profile_cache,
                        config=SearchConfig(executor="process", workers=2))
        doc = run.plan.doc
        assert doc["feasible"], doc.get("infeasible")
        quality = doc["quality"]["predicted"]
        feasible_baselines = [b for b in doc["baselines"].values() if b["feasible"]]
        assert feasible_baselines, "at least one baseline should be feasible here"
        for b in feasible_baselines:
            assert quality >= b["quality"] - 1e-9
        assert doc["predicted"]["ttft_mean_ms"] <= spec.slo.target_ms * (1 + 1e-7)
        assert sum(doc["routing"]["fractions"].values()) == pytest.approx(1.0)
        check_placement(doc, spec)
        s = doc["search"]
        assert s["enumerated"] >= s["retained"] >= s["evaluated"] > 0
        assert s["quality_min"] <= quality <= s["quality_max"] + 1e-6  # re-solved: solver tol
        assert doc["quality"]["truth"] is not None
        assert doc["provenance"]["workload"] == "derived"
        assert doc["provenance"]["latency"] == ["estimated"]
