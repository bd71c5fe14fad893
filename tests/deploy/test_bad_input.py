"""Bad input gets an error naming what is wrong, before anything is written: a plan whose setup
does not fit its declared cluster (ids, nodes, shares, memory, GPU type, routed models without
an instance), an infeasible plan, a model without a path, bad options; and the CLI's exits."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from routerwise.cli.app import run
from routerwise.deploy.build import DeployOptions, build_ir
from routerwise.deploy.run import parse_model_paths
from routerwise.errors import InputError
from routerwise.spec.plan import plan_from_dict
from tests.deploy.conftest import fixture_path

Edit = Callable[[dict[str, Any]], None]


def data(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(fixture_path(name).read_text())
    return loaded


def deploy_error(name: str, edit: Edit, options: DeployOptions | None = None) -> str:
    doc = copy.deepcopy(data(name))
    edit(doc)
    plan = plan_from_dict(doc, "bad.json")
    with pytest.raises(InputError) as exc:
        build_ir(plan, json.dumps(doc), "bad.json", options or DeployOptions())
    return str(exc.value)


def _instance(doc: dict[str, Any], model: str, k: int = 0) -> dict[str, Any]:
    found: list[dict[str, Any]] = [i for i in doc["setup"] if i["model"] == model]
    return found[k]


def _deployment(doc: dict[str, Any], model: str) -> dict[str, Any]:
    found: dict[str, Any] = next(d for d in doc["deployments"] if d["model"] == model)
    return found


def test_gpu_ids_outside_the_cluster() -> None:
    def edit(doc: dict[str, Any]) -> None:
        doc["cluster"]["num_gpus"] = 4

    msg = deploy_error("h100-mixed", edit)
    assert "does not fit its cluster (4× H100-SXM" in msg
    assert "llama-3.1-8b#0: GPU id(s) [4, 5] outside the cluster (4 GPUs: ids 0-3)" in msg
    assert "qwen2.5-32b#0" in msg


def test_shares_over_one_gpu() -> None:
    def edit(doc: dict[str, Any]) -> None:
        for inst in doc["setup"]:
            if inst["model"] == "qwen2.5-7b":
                inst["mps_share"] = 0.5
        _deployment(doc, "qwen2.5-7b")["mps_share"] = 0.5

    msg = deploy_error("two-node", edit)
    assert "GPU 5: MPS shares add up to 110% of one GPU (qwen2.5-32b#0 60%, qwen2.5-7b#0 50%)" \
        in msg
    assert "GPU 13:" in msg


def test_tensor_parallelism_across_nodes() -> None:
    def edit(doc: dict[str, Any]) -> None:
        _instance(doc, "llama-3.1-70b")["gpu_ids"] = [6, 7, 8, 9]

    msg = deploy_error("two-node", edit)
    assert "llama-3.1-70b#0: tp=4 on GPUs [6, 7, 8, 9] spans nodes [0, 1]" in msg


def test_a_shard_that_does_not_fit_in_memory() -> None:
    def edit(doc: dict[str, Any]) -> None:
        inst = _instance(doc, "llama-3.1-70b")
        inst.update(tp=1, gpu_ids=[0])
        _deployment(doc, "llama-3.1-70b")["tp"] = 1

    msg = deploy_error("h100-mixed", edit)
    assert "llama-3.1-70b#0: tp1@100% does not fit in GPU memory" in msg
    assert "GiB" in msg


def test_gpu_type_of_another_cluster() -> None:
    def edit(doc: dict[str, Any]) -> None:
        _instance(doc, "mistral-7b", 2)["gpu_type"] = "H100-SXM"

    msg = deploy_error("paper-a100-3m", edit)
    assert "mistral-7b#2: GPU type 'H100-SXM' is not the cluster's A100-SXM-80GB" in msg


def test_a_routed_model_without_an_instance() -> None:
    def edit(doc: dict[str, Any]) -> None:
        doc["routing"]["fractions"]["llama-2-13b"] = 0.05

    msg = deploy_error("paper-a100-3m", edit)
    assert "model 'llama-2-13b' receives 5.0% of requests" in msg


def test_an_infeasible_plan() -> None:
    def edit(doc: dict[str, Any]) -> None:
        doc["feasible"] = False
        doc["infeasible"] = {"message": "too fast", "lowest_ttft_mean_ms": 40.0,
                             "max_rate_rps": 20.0}

    assert "the plan is infeasible" in deploy_error("h100-mixed", edit)


def _facts_model(doc: dict[str, Any]) -> None:
    """llama-3.1-8b described by architecture facts: no catalog entry, so no default path."""
    models = doc["inputs"]["spec"]["models"]
    i = next(k for k, m in enumerate(models) if m["name"] == "llama-3.1-8b")
    models[i] = {"name": "llama-3.1-8b", "num_layers": 32, "hidden_size": 4096,
                 "num_attention_heads": 32, "num_kv_heads": 8, "intermediate_size": 14336,
                 "vocab_size": 128256}


def test_a_model_without_a_path() -> None:
    msg = deploy_error("h100-mixed", _facts_model)
    assert "no model path for 'llama-3.1-8b'" in msg
    assert "--model-path llama-3.1-8b=PATH_OR_HF_ID" in msg
    doc = copy.deepcopy(data("h100-mixed"))
    _facts_model(doc)
    ir = build_ir(plan_from_dict(doc), "{}", "ok.json",
                  DeployOptions(model_paths={"llama-3.1-8b": "/models/llama"}))
    assert next(e for e in ir.engines if e.model == "llama-3.1-8b").model_path == "/models/llama"


def test_model_path_for_a_model_the_plan_does_not_have() -> None:
    msg = deploy_error("h100-mixed", lambda d: None,
                       DeployOptions(model_paths={"llama-3-8b": "x"}))
    assert "--model-path names model(s) ['llama-3-8b'] that the plan does not have" in msg


@pytest.mark.parametrize(("items", "expected"), [
    (["llama"], "must be MODEL=PATH_OR_HF_ID"),
    (["=x"], "must be MODEL=PATH_OR_HF_ID"),
    (["a=x", "a=y"], "gives model 'a' twice"),
])
def test_model_path_syntax(items: list[str], expected: str) -> None:
    with pytest.raises(InputError, match=expected):
        parse_model_paths(items)


def test_ports_out_of_range() -> None:
    msg = deploy_error("two-node", lambda d: None, DeployOptions(gateway_port=65530))
    assert "need ports 65530-65537, within 1-65535" in msg


def test_context_length_that_does_not_fit() -> None:
    msg = deploy_error("two-node", lambda d: None, DeployOptions(max_model_len=10_000_000))
    assert "--max-model-len 10000000: one request of that length does not fit" in msg


# --- the command line ---------------------------------------------------------------------


def test_cli_bad_plan_exits_1_naming_the_problem(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    doc = data("two-node")
    _instance(doc, "llama-3.1-70b")["gpu_ids"] = [6, 7, 8, 9]
    bad = tmp_path / "plan.json"
    bad.write_text(json.dumps(doc))
    out = tmp_path / "out"
    assert run(["deploy", str(bad), "--target", "compose", "--out", str(out)]) == 1
    assert "spans nodes [0, 1]" in capsys.readouterr().err
    assert not out.exists()


def test_cli_checks_out_before_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    code = run(["deploy", str(fixture_path("h100-mixed")), "--target", "kubernetes",
                "--out", str(target)])
    assert code == 1
    def err() -> str:  # rich wraps long lines at the terminal's width
        return " ".join(capsys.readouterr().err.split())

    assert "is a file, not a directory" in err()
    assert run(["deploy", str(fixture_path("h100-mixed")), "--target", "helm",
                "--out", str(tmp_path / "o")]) == 1
    assert "--target 'helm' is not one of vllm-script, compose, kubernetes" in err()
    assert run(["deploy", str(fixture_path("h100-mixed")), "--target", "compose"]) == 1
    assert "--out DIR is required" in err()


def test_cli_check_explains_and_writes_nothing(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert run(["deploy", str(fixture_path("two-node")), "--target", "kubernetes", "--check",
                "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=33 (rounded down from 33.33%" in text
    assert "first-fit-decreasing placement" in text
    assert "cannot express unequal shares" in text
    assert not out.exists()


def test_cli_writes_and_replaces_an_older_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    plan = str(fixture_path("h100-mixed"))
    assert run(["deploy", plan, "--target", "vllm-script", "--out", str(out)]) == 0
    assert (out / "node-0.sh").stat().st_mode & 0o111
    (out / "mine.txt").write_text("the user's own file")
    assert run(["deploy", plan, "--target", "compose", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == \
        ["README.md", "compose.yaml", "mine.txt", "plan.json"]
