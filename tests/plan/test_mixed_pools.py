"""Clusters of node pools with different GPU types: the spec form, its errors, and a plan
that puts models on both types and beats planning on either pool alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from routerwise.errors import InfeasibleError, InputError, SpecError
from routerwise.plan.inputs import plan_inputs
from routerwise.plan.run import make_plan
from routerwise.scenarios.registry import load_scenario_spec
from routerwise.search.search import SearchConfig
from routerwise.spec.spec_file import Spec, parse_spec

BASE: dict[str, Any] = {
    "models": [{"name": "llama-3.1-8b", "catalog_id": "llama-3.1-8b"}],
    "workload": {"builtin": "h100-mixed", "num_prompts": 200},
    "rate_rps": 5, "slo": {"metric": "ttft", "stat": "mean", "target_ms": 200}}
POOLS = [{"gpu_type": "H100", "nodes": 1, "gpus_per_node": 4},
         {"gpu_type": "a100", "nodes": 2, "gpus_per_node": 2}]


def _spec(cluster: dict[str, Any], **more: Any) -> Spec:
    return parse_spec({**BASE, **more, "cluster": cluster}, "pools.yaml")


def test_pools_are_counted_and_the_old_form_still_works() -> None:
    mixed = _spec({"pools": POOLS}).cluster
    assert mixed.mixed and mixed.total_gpus == 8 and mixed.gpu_type is None
    assert mixed.groups() == (("H100-SXM", 4, 4), ("A100-SXM-80GB", 4, 2))
    single = _spec({"gpu_type": "H100-SXM", "num_gpus": 6, "gpus_per_node": 4}).cluster
    assert not single.mixed and single.groups() == (("H100-SXM", 6, 4),)


@pytest.mark.parametrize(("cluster", "needle"), [
    ({"pools": [{"gpu_type": "H100", "nodes": 0}]}, "cluster.pools[0].nodes"),
    ({"pools": [{"gpu_type": "TPU-v5", "nodes": 1}]}, "cluster.pools[0].gpu_type: unknown GPU"),
    ({"pools": POOLS, "gpu_type": "H100", "num_gpus": 8}, "either pools or gpu_type"),
    ({"gpu_type": "H100"}, "num_gpus is required"),
])
def test_bad_pools_name_the_field(cluster: dict[str, Any], needle: str) -> None:
    with pytest.raises(SpecError, match=r"pools\.yaml") as err:
        _spec(cluster)
    assert needle in str(err.value)


def test_a_model_that_fits_on_no_pool_is_infeasible_naming_them() -> None:
    spec = _spec({"pools": [{"gpu_type": "L40S", "nodes": 1, "gpus_per_node": 1},
                            {"gpu_type": "L40S", "nodes": 1, "gpus_per_node": 1}]},
                 models=[{"name": "llama-3.1-70b", "catalog_id": "llama-3.1-70b"}],
                 workload={"builtin": "h100-mixed", "num_prompts": 50,
                           "ignore_models": ["llama-3.1-8b", "qwen2.5-7b", "qwen2.5-32b"]})
    with pytest.raises(InfeasibleError, match=r"llama-3\.1-70b.*fits on no pool of 1× L40S"):
        plan_inputs(spec, "pools.yaml", None)


@pytest.mark.slow  # estimates the A100 shapes of four models (minutes on a cold cache)
def test_mixed_plan_uses_both_types_and_beats_either_pool_alone(profile_cache: Path) -> None:
    spec = load_scenario_spec("mixed-h100-a100")
    spec = spec.model_copy(update={"workload": spec.workload.model_copy(
        update={"num_prompts": 600})})
    config = SearchConfig(executor="serial")
    mixed = make_plan(spec, "mixed-h100-a100", None, cache_dir=profile_cache,
                      config=config).built.plan
    assert mixed.feasible and mixed.quality.predicted is not None
    assert {i.gpu_type for i in mixed.setup} == {"H100-SXM", "A100-SXM-80GB"}
    for inst in mixed.setup:  # each instance inside its own pool
        pool = next(p for p in mixed.cluster.pools if p.gpu_type == inst.gpu_type)
        assert all(pool.first_gpu <= g < pool.first_gpu + pool.num_gpus for g in inst.gpu_ids)
    for pool in spec.cluster.pools or ():
        alone = spec.model_copy(update={"cluster": spec.cluster.model_copy(update={
            "pools": None, "gpu_type": pool.gpu_type, "num_gpus": pool.num_gpus,
            "gpus_per_node": pool.gpus_per_node})})
        try:
            single = make_plan(alone, "one pool", None, cache_dir=profile_cache,
                               config=config).built.plan
        except InfeasibleError:
            continue  # this pool alone cannot even place every model: mixed wins
        if single.quality.predicted is not None:
            assert mixed.quality.predicted >= single.quality.predicted - 1e-9, pool.gpu_type


def test_simulate_and_deploy_refuse_mixed_plans_by_name(tmp_path: Path,
                                                       profile_cache: Path) -> None:
    import json

    from routerwise.deploy.build import DeployOptions, build_ir
    from routerwise.simulate.inputs import load_target
    from routerwise.spec.plan import dump_plan, load_plan
    from tests.simulate.builders import Placed, PlanSpec, write_plan

    path = write_plan(tmp_path / "p", PlanSpec(
        instances=(Placed("a", 1, 1.0, (0,)),), prices={"a": 0.0}, rate_rps=2.0,
        baselines={}), profile_cache)
    doc = json.loads(path.read_text())
    doc["cluster"] = {"gpu_type": "mixed", "num_gpus": 8, "gpus_per_node": 4, "pools": [
        {"gpu_type": "H100-SXM", "first_gpu": 0, "num_gpus": 4, "gpus_per_node": 4},
        {"gpu_type": "A100-SXM-80GB", "first_gpu": 4, "num_gpus": 4, "gpus_per_node": 4}]}
    path.write_text(json.dumps(doc))
    plan = load_plan(path)
    assert plan.cluster.mixed
    with pytest.raises(InputError, match="several GPU types"):
        build_ir(plan, dump_plan(plan), str(path), DeployOptions())
    with pytest.raises(InputError, match="several GPU types"):
        load_target(path)


def test_a_pools_spec_dumps_as_written_and_validates_again() -> None:
    """plan.json keeps the resolved spec; `route --plan` parses it back."""
    spec = load_scenario_spec("mixed-h100-a100")
    dumped = spec.model_dump(mode="json")
    assert set(dumped["cluster"]) == {"pools"}
    assert parse_spec(dumped).cluster.groups() == spec.cluster.groups()
    single = load_scenario_spec("h100-mixed").model_dump(mode="json")["cluster"]
    assert set(single) == {"gpu_type", "num_gpus", "gpus_per_node"}  # as before pools
