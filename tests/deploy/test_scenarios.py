"""Every built-in scenario, planned now (not a fixture), deployed to every target: the
artifacts are valid and consistent with the plan (the checks of test_consistency.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from routerwise.deploy.build import DeployOptions, build_ir
from routerwise.deploy.targets import TARGETS
from routerwise.scenarios.registry import SCENARIOS, load_scenario_spec
from routerwise.spec.plan import Plan, dump_plan, load_plan
from tests.deploy.artifacts import check_consistent, read_compose, read_kubernetes, run_scripts
from tests.deploy.conftest import write_files
from tests.deploy.test_consistency import check_scripts_syntax, validate_k8s

#: Scenarios small enough to plan here on every run; fleet-16m-64g (16 models on 64 GPUs:
#: many minutes on 2 cores) is planned by the `scale` tests instead, and deploy refuses
#: mixed GPU pools (tests/plan/test_mixed_pools.py checks that).
SMALL = [n for n in SCENARIOS if (c := load_scenario_spec(n).cluster).total_gpus <= 16
         and not c.mixed]


@pytest.fixture(scope="session")
def scenario_plans(profile_cache: Path, tmp_path_factory: pytest.TempPathFactory
                   ) -> dict[str, tuple[Plan, str]]:
    from routerwise.plan.run import make_plan

    out: dict[str, tuple[Plan, str]] = {}
    for name in SMALL:
        spec = load_scenario_spec(name)
        spec = spec.model_copy(update={
            "workload": spec.workload.model_copy(update={"num_prompts": 600})})
        plan = make_plan(spec, name, None, cache_dir=profile_cache).built.plan
        path = tmp_path_factory.mktemp(name) / "plan.json"
        path.write_text(dump_plan(plan))
        out[name] = (load_plan(path), path.read_text())
    return out


@pytest.mark.slow  # plans every built-in scenario (minutes on a cold profile cache)
@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("scenario", SMALL)
def test_every_scenario_deploys_to_every_target(
    scenario: str, target: str, scenario_plans: dict[str, tuple[Plan, str]], tmp_path: Path
) -> None:
    plan, text = scenario_plans[scenario]
    assert plan.feasible, plan.infeasible
    ir = build_ir(plan, text, f"{scenario}/plan.json",
                  DeployOptions(api_key_env="ROUTERWISE_API_KEY"))
    out = write_files(TARGETS[target].files(ir, text), tmp_path / "out")
    if target == "vllm-script":
        check_scripts_syntax(out)
        art = run_scripts(out, tmp_path, plan)[0]
    elif target == "compose":
        art = read_compose(out, plan)
    else:
        validate_k8s(out)
        art = read_kubernetes(out, plan)
    check_consistent(art, plan, host_ports=target != "kubernetes")
