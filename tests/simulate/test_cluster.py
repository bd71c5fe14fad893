"""The cluster event loop with synthetic step models: the same engine model as the estimator,
least-outstanding replicas, interference between co-runners, drain limits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from routerwise.profiles.engine_sim import EngineConfig, simulate
from routerwise.profiles.mps import DEFAULT_MPS
from routerwise.simulate.cluster import InstanceModel, Requests, run_cluster
from routerwise.simulate.interference import BandwidthContention, NoInterference
from tests.simulate.steps import FixedSteps, LinearSteps


def _instance(model: int, gpus: tuple[int, ...], steps: object = None,
              cap: int = 100_000) -> InstanceModel:
    return InstanceModel(model, gpus, cap, steps or LinearSteps(),  # type: ignore[arg-type]
                         ridge_tokens=300.0, mps=DEFAULT_MPS, config=EngineConfig())


def _requests(n: int, rate: float, models: int = 1, seed: int = 0) -> Requests:
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.exponential(1.0, n)) / rate
    return Requests(times, rng.integers(0, models, n).astype(np.int64),
                    rng.integers(20, 600, n).astype(np.int64),
                    rng.integers(1, 200, n).astype(np.int64))


@pytest.mark.parametrize("rate", [5.0, 80.0])
def test_one_instance_is_the_estimators_engine_bit_for_bit(rate: float) -> None:
    req = _requests(400, rate)
    res = run_cluster([_instance(0, (0,))], req, 1, NoInterference(), math.inf)
    ref = simulate(req.arrival_s, req.input_tokens.astype(float),
                   req.output_tokens.astype(float), 100_000, EngineConfig(), LinearSteps())
    np.testing.assert_array_equal(res.ttft_ms, ref.ttft_ms)
    np.testing.assert_array_equal(res.e2e_ms, ref.e2e_ms)
    assert np.all(res.instance == 0)


def test_least_outstanding_balances_replicas_and_beats_one_instance() -> None:
    req = _requests(2000, 60.0)
    two = run_cluster([_instance(0, (0,)), _instance(0, (1,))], req, 1, NoInterference(),
                      math.inf)
    counts = np.bincount(two.instance, minlength=2)
    assert abs(counts[0] - counts[1]) < 0.1 * len(req.arrival_s)
    one = run_cluster([_instance(0, (0,))], req, 1, NoInterference(), math.inf)
    assert np.nanmean(two.ttft_ms) < np.nanmean(one.ttft_ms)


def test_requests_go_only_to_their_models_instances() -> None:
    req = _requests(500, 20.0, models=2)
    res = run_cluster([_instance(0, (0,)), _instance(1, (1,)), _instance(1, (2,))], req, 2,
                      NoInterference(), math.inf)
    assert np.all(res.instance[req.model == 0] == 0)
    assert set(res.instance[req.model == 1].tolist()) == {1, 2}
    assert np.all(np.isfinite(res.e2e_ms))


def test_interference_slows_co_runners_only() -> None:
    req = _requests(600, 30.0, models=2)
    itf = BandwidthContention(bandwidth=0.5)
    shared = run_cluster([_instance(0, (0,), FixedSteps()), _instance(1, (0,), FixedSteps())],
                         req, 2, itf, math.inf)
    apart = run_cluster([_instance(0, (0,), FixedSteps()), _instance(1, (1,), FixedSteps())],
                        req, 2, itf, math.inf)
    none = run_cluster([_instance(0, (0,), FixedSteps()), _instance(1, (0,), FixedSteps())],
                       req, 2, NoInterference(), math.inf)
    assert np.all(apart.slowdown == 1.0) and np.all(none.slowdown == 1.0)
    assert np.all(shared.slowdown > 1.05)
    assert np.all(shared.slowdown < 1.5)  # bounded by 1 + bandwidth × one busy co-runner
    assert np.nanmean(shared.tpot_ms) > 1.05 * np.nanmean(apart.tpot_ms)
    np.testing.assert_allclose(apart.e2e_ms, none.e2e_ms)  # apart = no interference at all


def test_interference_factor_is_the_documented_formula() -> None:
    itf = BandwidthContention(bandwidth=0.3, compute=0.1)
    assert itf.factor(0.2, 1.5, 0.5) == pytest.approx(1 + 0.3 * 0.8 * 1.5 + 0.1 * 0.2 * 0.5)
    assert NoInterference().factor(0.2, 5.0, 5.0) == 1.0


def test_end_time_leaves_overload_unfinished() -> None:
    req = _requests(3000, 500.0)
    res = run_cluster([_instance(0, (0,), FixedSteps(decode=50.0, mixed=80.0))], req, 1,
                      NoInterference(), end_s=10.0)
    assert np.isnan(res.e2e_ms).any()
    assert res.end_s <= 10.0 + 1.0
