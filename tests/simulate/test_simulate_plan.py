"""Simulating a (small, real) plan: routing as planned, predictions met at low load,
determinism, confidence intervals, warm-up, baselines and replicas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from routerwise.simulate.diagnose import diagnose
from routerwise.simulate.inputs import load_target
from routerwise.simulate.interference import NoInterference
from routerwise.simulate.report import report_dict
from routerwise.simulate.run import SimOptions, simulate_target

CONTRACT_KEYS = {"quality", "ttft_mean_ms", "ttft_p50_ms", "ttft_p90_ms", "ttft_p99_ms",
                 "tpot_mean_ms", "e2e_mean_ms", "slo", "slo_attainment", "per_model",
                 "requests", "completed", "predicted", "errors", "ci95", "corrections",
                 "warnings", "fidelity", "interference", "warmup_s", "seed", "arrivals"}


def _report(plan: Path, **options: object) -> dict[str, object]:
    target = load_target(plan, options.pop("baseline", None))  # type: ignore[arg-type]
    rep = simulate_target(target, SimOptions(**options))  # type: ignore[arg-type]
    return report_dict(rep, diagnose(rep))


def _numbers(payload: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in payload.items() if k not in ("wall_s",)}


def test_contract_keys_and_the_plans_routing(shared_plan: Path) -> None:
    out = _report(shared_plan, duration_s=200.0)
    assert set(out) >= CONTRACT_KEYS
    assert out["requests"] == out["completed"] > 0
    per = out["per_model"]
    assert isinstance(per, dict) and set(per) == {"a", "b"}
    for m in ("a", "b"):  # the router sends each model its planned share of requests
        assert per[m]["error"]["rate"] == pytest.approx(0.0, abs=0.15)
    quality = out["quality"]
    assert isinstance(quality, dict) and quality["score_source"] == "predicted"
    assert quality["truth"] is not None
    assert abs(out["errors"]["quality"]) < 0.03  # type: ignore[index]


def test_low_load_meets_the_plans_prediction(shared_plan: Path) -> None:
    """The engine model is the estimator's, and the estimator charges a shape below a whole
    GPU the contention of one busy co-runner: at low load the prediction is met within 10%
    with the default interference; without it the simulation is faster than planned."""
    out = _report(shared_plan, duration_s=400.0)
    assert abs(out["errors"]["ttft_mean"]) < 0.10  # type: ignore[index]
    alone = _report(shared_plan, duration_s=400.0, interference=NoInterference())
    assert alone["errors"]["ttft_mean"] < 0  # type: ignore[index]
    for m in ("a", "b"):
        assert alone["per_model"][m]["interference_slowdown"] == 1.0  # type: ignore[index]


def test_co_located_instances_interfere_and_say_so(shared_plan: Path) -> None:
    with_itf = _report(shared_plan, duration_s=200.0)
    without = _report(shared_plan, duration_s=200.0, interference=NoInterference())
    for m in ("a", "b"):
        slow = with_itf["per_model"][m]["interference_slowdown"]  # type: ignore[index]
        assert slow > 1.02
        assert with_itf["per_model"][m]["tpot_mean_ms"] > \
            without["per_model"][m]["tpot_mean_ms"]  # type: ignore[index]
    assert with_itf["interference"]["params"] == {"bandwidth": 0.28, "compute": 0.0}  # type: ignore[index]


def test_same_seed_same_numbers_other_seed_other_numbers(shared_plan: Path) -> None:
    a = _report(shared_plan, duration_s=60.0, seed=3)
    b = _report(shared_plan, duration_s=60.0, seed=3)
    c = _report(shared_plan, duration_s=60.0, seed=4)
    assert _numbers(a) == _numbers(b)
    assert a["ttft_mean_ms"] != c["ttft_mean_ms"]


def test_replications_give_intervals_around_the_mean(shared_plan: Path) -> None:
    out = _report(shared_plan, duration_s=60.0, replications=3)
    ci = out["ci95"]
    assert isinstance(ci, dict) and ci["method"] == "3 replications"
    lo, hi = ci["ttft_mean_ms"]
    assert lo < out["ttft_mean_ms"] < hi  # type: ignore[operator]
    single = _report(shared_plan, duration_s=60.0)
    assert single["ci95"]["method"].startswith("batch means")  # type: ignore[index]


def test_warm_up_is_excluded(shared_plan: Path) -> None:
    target = load_target(shared_plan)
    rep = simulate_target(target, SimOptions(duration_s=100.0, warmup_s=50.0))
    full = simulate_target(target, SimOptions(duration_s=100.0, warmup_s=0.0))
    assert rep.fleet.requests < 0.7 * full.fleet.requests
    assert rep.fleet.requests == pytest.approx(full.fleet.requests / 2, rel=0.25)


def test_baseline_is_simulated_from_the_same_plan(shared_plan: Path) -> None:
    out = _report(shared_plan, duration_s=100.0, baseline="isolated")
    assert out["simulated"] == "baseline isolated"
    assert "1×tp1@100%" in str(out["setup"])
    for m in ("a", "b"):  # whole GPUs: nothing to interfere with
        assert out["per_model"][m]["interference_slowdown"] == 1.0  # type: ignore[index]


def test_replicas_share_their_models_traffic(replica_plan: Path) -> None:
    target = load_target(replica_plan)
    rep = simulate_target(target, SimOptions(duration_s=120.0))
    run = rep.runs[0]
    assert run.per_model["a"].metrics.requests > 0
    out = report_dict(rep, diagnose(rep))
    assert out["per_model"]["a"]["deployment"] == "2×tp1@100%"  # type: ignore[index]


def test_overload_is_flagged_unstable_with_a_correction(shared_plan: Path) -> None:
    out = _report(shared_plan, duration_s=120.0, rate_rps=400.0)
    assert out["fidelity"]["unstable"] is True  # type: ignore[index]
    assert any("UNSTABLE" in w for w in out["warnings"])  # type: ignore[union-attr]
    assert out["slo"]["met"] is False  # type: ignore[index]
    assert out["predicted"]["ttft_mean_ms"] is None  # beyond the curves: no prediction  # type: ignore[index]


def test_prediction_follows_the_rate(shared_plan: Path) -> None:
    target = load_target(shared_plan)
    low, high = target.predicted_at(2.0), target.predicted_at(12.0)
    assert low.ttft_mean_ms is not None and high.ttft_mean_ms is not None
    assert low.ttft_mean_ms <= high.ttft_mean_ms
    assert target.predicted_at(target.planned.rate_rps) is target.planned
    np.testing.assert_allclose(target.rule.fractions(),
                               [target.planned.fractions[m] for m in target.models])


def test_routed_lengths_follow_the_routing(shared_plan: Path) -> None:
    """The diagnosis's length mix is the prompts the router sends a model (weighted by its
    routing probability), not the pool."""
    from routerwise.simulate.diagnose import routed_lengths

    target = load_target(shared_plan)
    for k, m in enumerate(target.models):
        w = np.asarray(target.rule.probabilities[:, k])
        isl, osl = routed_lengths(target, m, n=20_000)
        expected = float(np.sum(w * target.input_tokens) / w.sum())
        assert float(np.mean(isl)) == pytest.approx(expected, rel=0.05)
        expected_out = float(np.sum(w * target.output_tokens[:, k]) / w.sum())
        assert float(np.mean(osl)) == pytest.approx(expected_out, rel=0.05)


def test_the_reference_uses_what_each_curve_was_estimated_with(shared_plan: Path,
                                                               tmp_path: Path) -> None:
    """A curve the plan's length fixed point re-estimated (``lengths.basis`` routed) is
    checked against steady state with the routed lengths and its balanced replicas; one
    without ``lengths`` (an older plan) against the workload's pool and one instance."""
    import json
    import shutil

    from routerwise.simulate.diagnose import curve_assumptions

    target = load_target(shared_plan)
    isl, _, group = curve_assumptions(target, "a")
    assert group == 1 and isl is target.input_tokens
    doc = json.loads(shared_plan.read_text())
    doc["predicted"]["per_model"]["a"]["lengths"] = {
        "basis": "routed", "curve_input_tokens_mean": 1.0, "curve_output_tokens_mean": 1.0,
        "routed_input_tokens_mean": 1.0, "routed_output_tokens_mean": 1.0, "curve_replicas": 2}
    (tmp_path / "plan.json").write_text(json.dumps(doc))
    shutil.copy(shared_plan.parent / "profiles.csv", tmp_path / "profiles.csv")
    edited = load_target(tmp_path)
    isl, _, group = curve_assumptions(edited, "a")
    k = edited.models.index("a")
    w = np.asarray(edited.rule.probabilities[:, k])
    assert group == 2
    assert float(np.mean(isl)) == pytest.approx(
        float(np.sum(w * edited.input_tokens) / w.sum()), rel=0.05)
    assert curve_assumptions(edited, "b")[2] == 1
