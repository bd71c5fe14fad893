"""``routerwise simulate`` through the real entry point: output, and named errors with a
non-zero exit for every bad input (plan version, missing or unknown keys, trace rows,
durations, baselines, output paths)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.simulate.conftest import Cli


def _copy_plan(src: Path, dst: Path, edit: Any = None) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    data = json.loads(src.read_text(encoding="utf-8"))
    if edit is not None:
        edit(data)
    (dst / "plan.json").write_text(json.dumps(data), encoding="utf-8")
    (dst / "profiles.csv").write_bytes((src.parent / "profiles.csv").read_bytes())
    return dst / "plan.json"


def test_json_report(cli: Cli, shared_plan: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    res = cli(["simulate", shared_plan, "--duration-s", "30", "--seed", "1", "--json",
               "--out", out])
    assert res.exit_code == 0, res.stderr
    payload = json.loads(res.stdout)
    assert payload["requests"] > 0 and payload["seed"] == 1
    assert json.loads(out.read_text(encoding="utf-8"))["requests"] == payload["requests"]


def test_tables_and_plan_directory(cli: Cli, shared_plan: Path) -> None:
    res = cli(["simulate", shared_plan.parent, "--duration-s", "30", "--arrivals", "gamma:2",
               "--interference", "none"])
    assert res.exit_code == 0, res.stderr
    assert "mean TTFT" in res.stdout and "Per model" in res.stdout
    assert "gamma:2" in res.stdout


def test_trace_arrivals(cli: Cli, shared_plan: Path, tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("arrival_s\n" + "\n".join(f"{i * 0.25:.2f}" for i in range(200)) + "\n",
                     encoding="utf-8")
    res = cli(["simulate", shared_plan, "--duration-s", "40", "--arrivals", f"trace:{trace}",
               "--json"])
    assert res.exit_code == 0, res.stderr
    payload = json.loads(res.stdout)
    assert payload["rate_rps"] == pytest.approx(160 / 40)  # 160 arrivals before 40 s


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.update(plan_version=1), "plan_version 1 is not supported"),
    (lambda d: d.pop("routing"), "routing"),
    (lambda d: d.update(surprise=1), "surprise"),
    (lambda d: d["setup"][0].pop("gpu_ids"), "gpu_ids"),
])
def test_bad_plans_are_named_errors(cli: Cli, shared_plan: Path, tmp_path: Path, edit: Any,
                                    message: str) -> None:
    plan = _copy_plan(shared_plan, tmp_path / "p", edit)
    res = cli(["simulate", plan, "--duration-s", "10"])
    assert res.exit_code == 1
    assert "".join(message.split()) in res.stderr_flat
    assert "Traceback" not in res.stderr


def test_missing_profiles_file(cli: Cli, shared_plan: Path, tmp_path: Path) -> None:
    plan = _copy_plan(shared_plan, tmp_path / "p")
    (plan.parent / "profiles.csv").unlink()
    res = cli(["simulate", plan, "--duration-s", "10"])
    assert res.exit_code == 1 and "profiles" in res.stderr_flat


@pytest.mark.parametrize(("args", "message"), [
    (["--duration-s", "0"], "--duration-s"),
    (["--duration-s", "-5"], "--duration-s"),
    (["--duration-s", "nan"], "--duration-s"),
    (["--duration-s", "10", "--rate-rps", "0"], "--rate-rps"),
    (["--duration-s", "10", "--warmup-s", "10"], "--warmup-s"),
    (["--duration-s", "10", "--replications", "0"], "--replications"),
    (["--duration-s", "10", "--arrivals", "weibull"], "unknown process"),
    (["--duration-s", "10", "--interference", "bandwidth:speed=2"], "KEY=VALUE"),
    (["--duration-s", "10", "--baseline", "nope"], "no baseline 'nope'"),
])
def test_bad_options(cli: Cli, shared_plan: Path, args: list[str], message: str) -> None:
    res = cli(["simulate", shared_plan, *args])
    assert res.exit_code == 1
    assert "".join(message.split()) in res.stderr_flat


def test_bad_trace_row_exits_1(cli: Cli, shared_plan: Path, tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("arrival_s\n0\n1\noops\n", encoding="utf-8")
    res = cli(["simulate", shared_plan, "--duration-s", "10", "--arrivals", f"trace:{trace}"])
    assert res.exit_code == 1
    assert "line4:'oops'isnotanumber" in res.stderr_flat


def test_missing_plan_and_bad_out(cli: Cli, shared_plan: Path, tmp_path: Path) -> None:
    res = cli(["simulate", tmp_path / "nowhere", "--duration-s", "10"])
    assert res.exit_code == 1 and "doesnotexist" in res.stderr_flat
    res = cli(["simulate", shared_plan, "--duration-s", "10", "--out", tmp_path / "r.txt"])
    assert res.exit_code == 1 and ".json" in res.stderr_flat


def test_infeasible_plan_has_nothing_to_simulate(cli: Cli, shared_plan: Path,
                                                 tmp_path: Path) -> None:
    def infeasible(d: dict[str, Any]) -> None:
        d.update(feasible=False, setup=[], deployments=[],
                 infeasible={"message": "no", "lowest_ttft_mean_ms": None,
                             "max_rate_rps": None})

    plan = _copy_plan(shared_plan, tmp_path / "p", infeasible)
    res = cli(["simulate", plan, "--duration-s", "10"])
    assert res.exit_code == 1 and "infeasible" in res.stderr_flat


def test_find_max_rate_brackets_what_the_setup_sustains(cli: Cli, shared_plan: Path) -> None:
    res = cli(["simulate", shared_plan, "--duration-s", "60", "--rate-rps", "400",
               "--find-max-rate", "--json"])
    assert res.exit_code == 0, res.stderr
    payload = json.loads(res.stdout)
    assert payload["fidelity"]["unstable"] is True
    rate = payload["corrections"]["sustainable_rate_rps"]
    assert 6.0 < rate < 400.0
    assert any("sustain" in w for w in payload["warnings"])
    ok = json.loads(cli(["simulate", shared_plan, "--duration-s", "60", "--rate-rps",
                         str(0.8 * rate), "--json"]).stdout)
    assert ok["fidelity"]["unstable"] is False
    assert ok["ttft_mean_ms"] <= ok["slo"]["target_ms"]
