"""Measured shapes correct their neighbours' estimates: the time-scale fit, its application in
the planner's shape curves, and its note in plan.json."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from routerwise.cli.app import app
from routerwise.plan.shapes import PLAN_REQUESTS_PER_RATE, PLAN_SWEEP_POINTS, shape_profiles
from routerwise.profiles.correction import apply_time_scale, fit_time_scale
from routerwise.profiles.estimator import TokenLengths, estimate_profile_cached
from routerwise.profiles.table import ProfilePoints, validate_profile_frame
from routerwise.spec.catalog import get_gpu, get_model
from routerwise.spec.core import readonly
from routerwise.spec.deployment import InstanceShape


def mm1(rates: list[float], service_ms: float) -> ProfilePoints:
    """Mean sojourn of an M/M/1 queue: S / (1 − λS)."""
    r = np.asarray(rates)
    return ProfilePoints("m", readonly(r), readonly(service_ms / (1 - r * service_ms / 1e3)),
                         "ttft_mean_ms", tuple(range(len(r))), "t")


@pytest.mark.parametrize("factor", [0.5, 2.5, 40.0])
def test_fit_recovers_a_known_time_scale(factor: float) -> None:
    estimated = mm1([5, 20, 40, 60, 80, 90, 95], 10.0)  # capacity 100 req/s
    truth = mm1([5 / factor, 20 / factor, 50 / factor, 85 / factor], 10.0 * factor)
    scale = fit_time_scale([(truth, estimated)])
    assert scale is not None
    assert scale.factor == pytest.approx(factor, rel=0.02)
    assert scale.rms_log_error_after < 0.03
    assert scale.points == 4
    before = scale.rms_log_error_before  # NaN: at f = 1 the points lie past the estimate
    assert math.isnan(before) or before > scale.rms_log_error_after


def test_a_plain_factor_is_a_factor_on_ttft_at_low_load() -> None:
    estimated = mm1([1, 10, 50, 90], 10.0)
    # at 1-2 req/s the queue is tiny: 30 = f · 10 / (1 − f λ / 100) gives f ≈ 2.9
    measured = ProfilePoints("m", readonly([1.0, 2.0]), readonly([30.0, 30.6]), "ttft_mean_ms",
                             (0, 1), "t")
    scale = fit_time_scale([(measured, estimated)])
    assert scale is not None and scale.factor == pytest.approx(2.9, rel=0.02)
    assert fit_time_scale([]) is None


def test_applying_a_time_scale_moves_latency_and_capacity() -> None:
    p = apply_time_scale(mm1([10, 50, 90], 10.0), 2.0)
    np.testing.assert_allclose(p.rates_rps, [5, 25, 45])
    np.testing.assert_allclose(p.values_ms, 2 * mm1([10, 50, 90], 10.0).values_ms)


LENGTHS = {"small": TokenLengths.fixed(300, 150)}
SHAPES = [InstanceShape("small", "H100-SXM", 1, 1.0), InstanceShape("small", "H100-SXM", 1, 0.5),
          InstanceShape("small", "H100-SXM", 2, 1.0)]


def _measured_table(factor: float, cache: Path, beyond_rps: float | None = None) -> pd.DataFrame:
    """The estimator's own tp1@100% curve, run ``factor`` times slower, called measured."""
    est = estimate_profile_cached(get_model("llama-3.1-8b"), get_gpu("H100-SXM"), 1, 1.0, None,
                                  LENGTHS["small"], num_requests=PLAN_REQUESTS_PER_RATE,
                                  sweep_points=PLAN_SWEEP_POINTS, cache_dir=cache)
    slow = apply_time_scale(est.points("llama-3.1-8b"), factor)
    frame = pd.DataFrame({"model": "small", "rate_rps": slow.rates_rps,
                          "ttft_mean_ms": slow.values_ms, "gpu": "H100-SXM", "tp": 1,
                          "mps_share": 1.0, "provenance": "measured"})
    if beyond_rps is not None:
        frame["beyond_capacity"] = False
        extra = frame.iloc[[-1]].assign(rate_rps=beyond_rps, ttft_mean_ms=1e5,
                                        beyond_capacity=True)
        frame = pd.concat([frame, extra], ignore_index=True)
    return frame


@pytest.mark.usefixtures("profile_cache")
def test_one_measured_shape_corrects_the_models_other_shapes(profile_cache: Path) -> None:
    table = validate_profile_frame(_measured_table(2.0, profile_cache), "measured.csv")
    archs = {"small": get_model("llama-3.1-8b")}
    gpu = get_gpu("H100-SXM")
    plain = shape_profiles(archs, gpu, SHAPES, LENGTHS, cache_dir=profile_cache)
    fixed = shape_profiles(archs, gpu, SHAPES, LENGTHS, supplied=[table],
                           cache_dir=profile_cache)
    f = fixed.time_scales[("small", "H100-SXM")].factor
    assert f == pytest.approx(2.0, rel=0.002)
    assert fixed.provenance == {SHAPES[0]: "measured", SHAPES[1]: "derived",
                                SHAPES[2]: "derived"}
    assert any("time scale ×2" in n and "tp1@100%" in n for n in fixed.notes)
    for shape in SHAPES[1:]:
        before, after = plain.curves[shape], fixed.curves[shape]
        rate = float(after.rates_[1])
        assert float(after(rate)) == pytest.approx(f * float(before(f * rate)), rel=1e-6)
        assert fixed.saturation_rps[shape] == pytest.approx(plain.saturation_rps[shape] / f)
    off = shape_profiles(archs, gpu, SHAPES, LENGTHS, supplied=[table],
                         cache_dir=profile_cache, correct=False)
    assert off.provenance[SHAPES[1]] == "estimated" and not off.notes


@pytest.mark.usefixtures("profile_cache")
def test_beyond_capacity_rows_bound_the_measured_curve(profile_cache: Path) -> None:
    frame = _measured_table(1.0, profile_cache)
    last = float(frame["rate_rps"].iloc[-1])
    table = validate_profile_frame(_measured_table(1.0, profile_cache, beyond_rps=last * 1.01),
                                   "measured.csv")
    got = shape_profiles({"small": get_model("llama-3.1-8b")}, get_gpu("H100-SXM"),
                         SHAPES[:1], LENGTHS, supplied=[table], cache_dir=profile_cache)
    curve = got.curves[SHAPES[0]]
    assert float(curve.rates_[-1]) <= last  # the 1e5 ms point is not on the curve
    assert got.saturation_rps[SHAPES[0]] <= last * 1.01


SPEC = """\
name: tiny
cluster: {gpu_type: H100-SXM, num_gpus: 1, gpus_per_node: 8}
models:
  - {name: small, catalog_id: llama-3.1-8b}
workload: {path: scores.csv}
rate_rps: 2
slo: {metric: ttft, stat: mean, target_ms: 2000}
"""


@pytest.mark.usefixtures("profile_cache")
def test_plan_reports_measured_and_corrected_curves(tmp_path: Path, profile_cache: Path) -> None:
    pd.DataFrame({"prompt_id": [f"p{i}" for i in range(50)], "small": 0.5,
                  "input_tokens": 300, "output_tokens:small": 150}).to_csv(
        tmp_path / "scores.csv", index=False)
    (tmp_path / "spec.yaml").write_text(SPEC)
    _measured_table(3.0, profile_cache).to_csv(tmp_path / "measured.csv", index=False)
    res = CliRunner().invoke(app, ["plan", "--spec", str(tmp_path / "spec.yaml"), "--out",
                                   str(tmp_path / "o"), "--profiles",
                                   str(tmp_path / "measured.csv"), "--json", "--executor",
                                   "serial"])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    prov = doc["provenance"]
    assert prov["profiles"]["measured"] == 1 and prov["profiles"]["derived"] >= 1
    assert "estimated" not in prov["profiles"]  # every other shape of the model was corrected
    assert any("small on H100-SXM" in n and "time scale ×3" in n for n in prov["notes"])
    used = pd.read_csv(tmp_path / "o" / "profiles.csv")
    assert set(used["provenance"]) == {"measured", "derived"}


def test_estimated_rows_beyond_capacity_bound_the_estimated_curve(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Rates the estimator found unstable are not on the curve, and the first bounds the
    shape's capacity (below the sweep's last point / SWEEP_HIGH_FRACTION)."""
    rates = [1.0, 2.0, 3.0, 3.2, 5.0]
    frame = pd.DataFrame({"model": "llama-3.1-8b", "rate_rps": rates,
                          "ttft_mean_ms": [50.0, 52.0, 56.0, 70.0, 400.0],
                          "beyond_capacity": [False, False, False, True, True]})
    table = validate_profile_frame(frame, "estimated")
    monkeypatch.setattr("routerwise.plan.shapes.estimate_profile_cached",
                        lambda *a, **k: table)
    got = shape_profiles({"small": get_model("llama-3.1-8b")}, get_gpu("H100-SXM"),
                         SHAPES[:1], LENGTHS, cache_dir=tmp_path)
    assert got.curves[SHAPES[0]].rates_.tolist() == [1.0, 2.0, 3.0]
    assert got.saturation_rps[SHAPES[0]] == pytest.approx(3.2)  # < 3.0 / SWEEP_HIGH_FRACTION


def test_a_shape_with_no_stable_rates_is_unusable(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    frame = pd.DataFrame({"model": "llama-3.1-8b", "rate_rps": [1.0, 2.0, 3.0],
                          "ttft_mean_ms": [500.0, 900.0, 4000.0],
                          "beyond_capacity": [False, True, True]})
    table = validate_profile_frame(frame, "estimated")
    monkeypatch.setattr("routerwise.plan.shapes.estimate_profile_cached",
                        lambda *a, **k: table)
    got = shape_profiles({"small": get_model("llama-3.1-8b")}, get_gpu("H100-SXM"),
                         SHAPES[:1], LENGTHS, cache_dir=tmp_path)
    assert SHAPES[0] not in got.curves
    assert "1 stable rate(s)" in got.unusable[SHAPES[0]]
